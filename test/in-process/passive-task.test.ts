// The passive task's phases name their failures (data/messages.ts ConnectionFailure), so the
// control connection's reply and log say what went wrong.
import t from 'tap';
import { MessageChannel } from 'node:worker_threads';
import { ServerTls } from '../../src/tls/server-tls.ts';
import { runPassiveTask } from '../../src/data/passive-task.ts';
import type { PassiveTask, ToMain } from '../../src/data/messages.ts';

function task(overrides: Partial<PassiveTask>): { task: PassiveTask; main: MessageChannel['port1'] } {
  const { port1, port2 } = new MessageChannel();
  const low = 30_000 + 200 * Math.floor(Math.random() * 100);
  return {
    main: port1,
    task: {
      port: port2,
      bindAddress: '127.0.0.1',
      low,
      high: low + 199,
      firstPort: low,
      controlAddress: '127.0.0.1',
      proxyProtocolFrom: '',
      tls: false,
      tlsBinding: 'test',
      tlsSessions: [],
      requireSessionReuse: false,
      acceptTimeoutMs: 300,
      stallTimeoutMs: 1000,
      target: { kind: 'memory', name: 'passive-task-test' },
      ...overrides,
    },
  };
}

// These tasks never reach TLS (plain data connections).
const env = { tls: new ServerTls({ cert: '', key: '', ticketKeys: new Uint8Array(48) }, 'node') };

t.test('each phase names its own failure', async (t) => {
  // 192.0.2.1 (TEST-NET-1) is on no interface here: listening fails with EADDRNOTAVAIL.
  const cases: Array<[string, Partial<PassiveTask>, string]> = [
    ['an address the port cannot be bound to', { bindAddress: '192.0.2.1' }, 'no-port'],
    ['no data connection before the accept timeout', {}, 'accept-timeout'],
  ];
  for (const [name, overrides, failure] of cases) {
    const { task: passive, main } = task(overrides);
    const result = await runPassiveTask(passive, env);
    main.close();
    t.equal(result.type === 'failed' ? result.failure : result.type, failure, name);
  }
});

t.test('a cancel before the command arrives reports cancelled', async (t) => {
  const { task: passive, main } = task({ acceptTimeoutMs: 5000 });
  main.on('message', (message: ToMain) => {
    if (message.type === 'listening') main.postMessage({ type: 'cancel' });
  });
  const result = await runPassiveTask(passive, env);
  main.close();
  t.equal(result.type === 'failed' ? result.failure : result.type, 'cancelled');
  t.equal(result.started, false, 'no 150 is owed');
});
