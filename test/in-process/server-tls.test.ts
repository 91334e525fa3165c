// TLS on data connections, on both engines (tls/server-tls.ts): real Node TLS clients against the
// server side over loopback TCP. What must hold for each: the bytes arrive whole both ways, a TCP
// end without close_notify fails the upload, and a data connection resumes exactly the sessions of
// its own control connection (TLS 1.3 tickets, TLS 1.2 tickets and TLS 1.2 session ids).
import t from 'tap';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { constants, randomBytes, createHash } from 'node:crypto';
import { once } from 'node:events';
import { loadTlsMaterial, type TlsMaterial } from '../../src/tls/material.ts';
import { parseConfig } from '../../src/config.ts';
import { newSessionBinding } from '../../src/tls/context.ts';
import { ServerTls, type TlsEngine, type SecureSocket } from '../../src/tls/server-tls.ts';
import { nativeTlsAvailable, nativeTlsProblem } from '../../src/tls/native-engine.ts';
import { NativeTlsSocket } from '../../src/tls/native-socket.ts';
import type { TlsSessionRecord } from '../../src/tls/sessions.ts';

const engines: TlsEngine[] = ['node', 'native'];

t.test('the native engine is built (scripts/build-native.sh runs in make build)', async (t) => {
  t.ok(nativeTlsAvailable(), `native engine loads (${nativeTlsProblem ?? 'ok'})`);
});

interface Pair {
  server: SecureSocket;
  client: tls.TLSSocket;
  clientRaw: net.Socket;
}

let material: TlsMaterial;

/** One data connection: a TCP listener wrapped by `dataTls`, and a Node TLS client to it. */
async function connect(dataTls: ServerTls, binding: string, clientOptions: tls.ConnectionOptions, sessions: readonly TlsSessionRecord[] = []): Promise<Pair> {
  const listener = net.createServer({ allowHalfOpen: true });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as net.AddressInfo;
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const clientRaw = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const [raw] = await accepted;
  listener.close();
  const server = dataTls.data(raw, { binding, sessions, checkEof: true });
  server.on('error', () => undefined);
  // host as in controlSession(): Node sends SNI "localhost" for a bare socket, and a session is only
  // offered again under the name it was made with.
  const client = tls.connect({ socket: clientRaw, host: '127.0.0.1', rejectUnauthorized: false, ...clientOptions });
  client.on('error', () => undefined);
  await Promise.all([once(client, 'secureConnect'), once(server, 'secure')]);
  return { server, client, clientRaw };
}

function collect(stream: NodeJS.ReadableStream): Promise<{ digest: string; bytes: number; error: Error | undefined }> {
  const hash = createHash('sha256');
  let bytes = 0;
  return new Promise((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    stream.once('end', () => resolve({ digest: hash.digest('hex'), bytes, error: undefined }));
    stream.once('error', (error: Error) => resolve({ digest: '', bytes, error }));
    // Closed without an end or an error (a reset under Node's TLS): cut short all the same.
    stream.once('close', () => resolve({ digest: '', bytes, error: new Error('closed before the end') }));
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

t.before(async () => {
  material = await loadTlsMaterial(parseConfig(['--listen', '127.0.0.1:0'], {}));
});

for (const engine of engines) {
  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    t.test(`${engine} engine, ${version}: upload, download, truncation`, async (t) => {
      if (engine === 'native' && !nativeTlsAvailable()) return t.fail('native engine not built');
      const dataTls = new ServerTls(material, engine);
      t.equal(dataTls.engine, engine);
      const options = { maxVersion: version, minVersion: version };

      // Upload: 5 MiB in uneven writes, then close_notify: the server reads it whole and ends.
      const payload = randomBytes(5 * 1024 * 1024 + 123);
      const up = await connect(dataTls, newSessionBinding(), options);
      t.equal(up.server.getProtocol(), version);
      const received = collect(up.server);
      for (let offset = 0; offset < payload.length; offset += 70_001) up.client.write(payload.subarray(offset, offset + 70_001));
      up.client.end();
      const got = await received;
      t.equal(got.error, undefined, 'no error after close_notify');
      t.equal(got.bytes, payload.length);
      t.equal(got.digest, sha256(payload), 'upload byte-identical');
      up.server.end();
      up.server.destroySoon();

      // Download: the server writes and ends; the client reads everything, then the end.
      const down = await connect(dataTls, newSessionBinding(), options);
      const fetched = collect(down.client);
      for (let offset = 0; offset < payload.length; offset += 1_000_003) down.server.write(payload.subarray(offset, offset + 1_000_003));
      down.server.end();
      const back = await fetched;
      t.equal(back.error, undefined);
      t.equal(back.digest, sha256(payload), 'download byte-identical');
      down.client.end();

      // Truncation: bytes, then a bare TCP FIN under the client's TLS: the server must fail.
      const cut = await connect(dataTls, newSessionBinding(), options);
      const partial = collect(cut.server);
      cut.client.write(payload.subarray(0, 300_000));
      await new Promise((resolve) => setTimeout(resolve, 50));
      cut.clientRaw.end();
      const truncated = await partial;
      t.match(truncated.error?.message ?? '', /close_notify/, 'a TCP end without close_notify is an error');
      cut.clientRaw.destroy();

      // A reset mid-upload fails too.
      const reset = await connect(dataTls, newSessionBinding(), options);
      const resetRead = collect(reset.server);
      reset.client.write(payload.subarray(0, 100_000));
      await new Promise((resolve) => setTimeout(resolve, 50));
      reset.clientRaw.resetAndDestroy();
      t.ok((await resetRead).error, 'a reset is an error');
    });
  }
}

/** A control connection on `controlTls` under `binding`, as control/session.ts makes it; returns the client's session. */
async function controlSession(controlTls: ServerTls, binding: string, clientOptions: tls.ConnectionOptions): Promise<{ session: Buffer; records: TlsSessionRecord[] }> {
  const records: TlsSessionRecord[] = [];
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as net.AddressInfo;
  listener.on('connection', (raw: net.Socket) => {
    const secure = controlTls.control(raw, binding, (record) => {
      if (secure.getProtocol() === 'TLSv1.2') records.push(record);
    });
    secure.on('error', () => undefined);
    secure.on('data', () => undefined);
  });
  const client = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...clientOptions });
  const session = new Promise<Buffer>((resolve) => client.once('session', resolve));
  await once(client, 'secureConnect');
  // TLS 1.3 tickets come after the handshake: read a little so they arrive.
  client.write('x');
  const result = await session;
  client.destroy();
  listener.close();
  return { session: result, records };
}

// Control and data connections on either engine: a session made by one resumes on the other,
// under the same binding only (a gateway may mix them during a restart with --tls-engine changed).
for (const controlEngine of engines) {
  for (const dataEngine of engines) {
    const cases: Array<[string, tls.ConnectionOptions]> = [
      ['TLS 1.3 ticket', { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }],
      ['TLS 1.2 ticket', { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }],
      ['TLS 1.2 session id', { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET }],
    ];
    for (const [name, options] of cases) {
      t.test(`${dataEngine} data connection resumes a ${controlEngine} control connection's ${name}, and only its own`, async (t) => {
        if (!nativeTlsAvailable()) return t.fail('native engine not built');
        const controlTls = new ServerTls(material, controlEngine);
        const dataTls = new ServerTls(material, dataEngine);
        const binding = newSessionBinding();
        const control = await controlSession(controlTls, binding, options);
        if (name.endsWith('session id')) t.ok(control.records.length > 0, 'the control connection recorded its TLS 1.2 session');
        const own = await connect(dataTls, binding, { ...options, session: control.session }, control.records);
        t.equal(own.server.isSessionReused(), true, 'same binding: resumed');
        t.equal(own.client.isSessionReused(), true);
        own.client.destroy();
        own.server.destroy();
        const other = await connect(dataTls, newSessionBinding(), { ...options, session: control.session }, control.records);
        t.equal(other.server.isSessionReused(), false, 'another binding: full handshake');
        other.client.destroy();
        other.server.destroy();
        const otherKeys = new ServerTls({ ...material, ticketKeys: randomBytes(48) }, dataEngine);
        const foreign = await connect(otherKeys, binding, { ...options, session: control.session });
        t.equal(foreign.server.isSessionReused(), false, 'other ticket keys and no recorded session: full handshake');
        foreign.client.destroy();
        foreign.server.destroy();
      });
    }
  }
}

/** Reads a FillableBody (the native engine) as the S3 upload does: into fixed buffers, until 'end'. */
async function fillAll(body: NativeTlsSocket, partSize: number): Promise<{ digest: string; bytes: number; error: Error | undefined }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const part = Buffer.alloc(partSize);
  let filled = 0;
  return new Promise((resolve) => {
    let done = false;
    const finish = (error: Error | undefined): void => {
      if (done) return;
      done = true;
      hash.update(part.subarray(0, filled));
      resolve({ digest: error ? '' : hash.digest('hex'), bytes, error });
    };
    const step = (): void => {
      for (;;) {
        if (filled === part.length) {
          hash.update(part);
          filled = 0;
        }
        const n = body.fill(part, filled);
        filled += n;
        bytes += n;
        if (n > 0) continue;
        if (body.fillState() === 'end') return finish(undefined);
        return;
      }
    };
    body.on('fillable', step).once('error', (error: Error) => finish(error));
    step();
  });
}

t.test('native engine: an upload filled straight into part buffers, whole and cut', async (t) => {
  if (!nativeTlsAvailable()) return t.fail('native engine not built');
  const dataTls = new ServerTls(material, 'native');
  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    const payload = randomBytes(3 * 1024 * 1024 + 4097);
    // Part sizes that split records and TCP reads anywhere.
    for (const partSize of [1_000_003, 65_536, 7]) {
      const small = partSize === 7 ? payload.subarray(0, 40_000) : payload;
      const up = await connect(dataTls, newSessionBinding(), { minVersion: version, maxVersion: version });
      t.ok(up.server instanceof NativeTlsSocket);
      // Some bytes arrive before the reader starts filling: they come first.
      up.client.write(small.subarray(0, 1000));
      await new Promise((resolve) => setTimeout(resolve, 20));
      const filled = fillAll(up.server as NativeTlsSocket, partSize);
      for (let offset = 1000; offset < small.length; offset += 50_001) up.client.write(small.subarray(offset, offset + 50_001));
      up.client.end();
      const got = await filled;
      t.equal(got.error, undefined, `${version}, parts of ${partSize}: ends after close_notify`);
      t.equal(got.digest, sha256(small), `${version}, parts of ${partSize}: byte-identical`);
      up.server.destroy();
    }
    const cut = await connect(dataTls, newSessionBinding(), { minVersion: version, maxVersion: version });
    const cutFill = fillAll(cut.server as NativeTlsSocket, 65_536);
    cut.client.write(payload.subarray(0, 200_000));
    await new Promise((resolve) => setTimeout(resolve, 30));
    cut.clientRaw.end();
    t.match((await cutFill).error?.message ?? '', /close_notify/, `${version}: a TCP end without close_notify fails the fill`);
    cut.clientRaw.destroy();
  }
});
