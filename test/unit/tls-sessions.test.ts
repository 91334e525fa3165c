// The TLS 1.2 session store: a few sessions per binding (newest kept), bounded in bindings (least
// recently recorded goes first), forgotten on request; and the events a TLSSocket raises on it.
import t from 'tap';
import { sessionEvents, TlsSessionStore, type TlsSessionRecord } from '../../src/tls/sessions.ts';

const rec = (n: number): TlsSessionRecord => ({ id: new Uint8Array([n]), data: new Uint8Array([n, n]) });
const ids = (records: readonly TlsSessionRecord[]): number[] => records.map((r) => r.id[0] ?? -1);

t.test('per binding: the newest sessions, at most the limit', async (t) => {
  const cases: Array<[recorded: number, kept: number[]]> = [
    [1, [0]],
    [3, [0, 1, 2]],
    [5, [2, 3, 4]],
  ];
  for (const [recorded, kept] of cases) {
    const store = new TlsSessionStore(3, 10);
    for (let n = 0; n < recorded; n += 1) store.record('a', rec(n));
    t.same(ids(store.sessionsOf('a')), kept, `${recorded} recorded, ${kept.length} kept`);
    t.same(store.sessionsOf('b'), [], 'another binding sees none of them');
  }
});

t.test('bounded in bindings; forget drops one', async (t) => {
  const store = new TlsSessionStore(2, 2);
  store.record('a', rec(1));
  store.record('b', rec(2));
  store.record('a', rec(3));
  store.record('c', rec(4));
  t.equal(store.size, 2);
  t.same(store.sessionsOf('b'), [], 'the least recently recorded binding went');
  t.same(ids(store.sessionsOf('a')), [1, 3]);
  store.forget('a');
  t.same(store.sessionsOf('a'), []);
  t.equal(store.size, 1);
});

t.test('the events: new sessions are recorded, only known ids resume', async (t) => {
  const recorded: TlsSessionRecord[] = [];
  const events = sessionEvents({ onNew: (r) => recorded.push(r), known: [rec(7)] });
  let done = 0;
  events.emit('newSession', Buffer.from([9]), Buffer.from([9, 9]), () => (done += 1));
  t.same(ids(recorded), [9]);
  t.equal(done, 1, 'the handshake is let go on');
  const lookup = (id: number): Promise<Buffer | null> =>
    new Promise((resolve) => events.emit('resumeSession', Buffer.from([id]), (_error: Error | null, data: Buffer | null) => resolve(data)));
  t.same(await lookup(7), Buffer.from([7, 7]), 'a known id gives its session');
  t.equal(await lookup(8), null, 'an unknown id gives none (a full handshake)');
  t.equal(sessionEvents({}).listenerCount('resumeSession'), 0, 'no hooks, no listeners: Node keeps its default');
});
