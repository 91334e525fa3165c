// PROXY protocol on the in-process gateway: what follows the header in the same packet (an
// implicit-TLS client's ClientHello, pipelined commands) must reach the session intact.
import t from 'tap';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Duplex } from 'node:stream';
import { once } from 'node:events';
import { startInProcess } from '../helpers/in-process.ts';

/** A TCP connection whose first write carries `header` in front of the first bytes written to it. */
function prefixedConnection(port: number, header: string): Promise<Duplex> {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
  let pending: string | undefined = header;
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      const out = pending === undefined ? chunk : Buffer.concat([Buffer.from(pending, 'latin1'), chunk]);
      pending = undefined;
      socket.write(out, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(error, callback) {
      socket.destroy();
      callback(error);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('error', (error) => duplex.destroy(error));
  return once(socket, 'connect').then(() => duplex);
}

t.test('implicit TLS: a ClientHello in the same packet as the PROXY header is not lost', async (t) => {
  const gw = await startInProcess({ args: ['--proxy-protocol-from', '127.0.0.1', '--implicit-tls-listen', '127.0.0.1:0'] });
  t.teardown(() => gw.close());
  const port = gw.server.implicitAddress?.port ?? 0;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const carrier = await prefixedConnection(port, 'PROXY TCP4 198.51.100.9 127.0.0.1 50000 990\r\n');
    const secure = tls.connect({ socket: carrier, rejectUnauthorized: false });
    const greeting = await Promise.race([
      once(secure, 'data').then(([chunk]) => String(chunk)),
      new Promise<string>((resolve) => setTimeout(() => resolve('(no greeting in 5 s)'), 5000)),
    ]);
    t.match(greeting, /^220 /, `attempt ${attempt + 1}: TLS and the greeting`);
    secure.destroy();
  }
});

t.test('explicit FTPS: commands in the same packet as the PROXY header are read', async (t) => {
  const gw = await startInProcess({ args: ['--proxy-protocol-from', '127.0.0.1'] });
  t.teardown(() => gw.close());
  const socket = net.connect({ host: '127.0.0.1', port: gw.port });
  await once(socket, 'connect');
  socket.write('PROXY TCP4 198.51.100.9 127.0.0.1 50000 21\r\nSYST\r\n');
  let text = '';
  for (let i = 0; i < 50 && !/215 /.test(text); i += 1) text += String((await once(socket, 'data'))[0]);
  t.match(text, /^220 [^]*215 UNIX/, 'greeting, then the pipelined SYST answered');
  socket.destroy();
});
