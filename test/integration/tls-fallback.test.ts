// Without the native addon (not built, or failing to load) the gateway serves control and data
// connections on Node's TLS, says so once in the log, and every transfer still works: whole bytes
// both ways, and an upload cut without close_notify is still not committed.
import t from 'tap';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { uniqueBucket } from '../helpers/gateway.ts';
import { gatewayFor } from '../helpers/ftp-steps.ts';
import { RawFtp } from '../helpers/raw-ftp.ts';

t.test('no native addon: Node TLS serves, the log says so once', async (t) => {
  const gw = await gatewayFor(t, 'local', { env: { S3FTPD_NATIVE_ADDON: '/nonexistent/s3ftpd_tls.node' } });
  const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
  t.teardown(() => ftp.quit());
  const bucket = uniqueBucket('fallback');
  t.teardown(() => gw.probe.removeBucket(bucket));
  t.equal((await ftp.send(`MKD /${bucket}`)).code, 257);
  const body = randomBytes(3 * 1024 * 1024 + 5);
  const up = await ftp.transfer(`STOR /${bucket}/whole.bin`, { upload: body });
  t.equal(up.final?.code, 226, up.final?.text ?? 'no final reply');
  const down = await ftp.transfer(`RETR /${bucket}/whole.bin`);
  t.ok(down.data.equals(body), 'downloaded bytes equal');

  // A cut upload: bytes, then a TCP FIN under TLS without close_notify.
  const port = await ftp.epsv();
  const raw = net.connect({ host: gw.host, port });
  await once(raw, 'connect');
  // host: no SNI, as on the control connection, so the control session is offered again.
  const secure = tls.connect({ socket: raw, host: gw.host, rejectUnauthorized: false, session: ftp.tlsSession });
  secure.on('error', () => undefined);
  await once(secure, 'secureConnect');
  t.equal((await ftp.send(`STOR /${bucket}/cut.bin`)).code, 150);
  secure.write(body.subarray(0, 1024 * 1024));
  await new Promise((resolve) => setTimeout(resolve, 200));
  raw.end();
  const final = await ftp.read(20_000);
  t.ok(final.code >= 400, `a cut upload fails: ${final.code} ${final.text}`);
  t.equal(await gw.probe.get(bucket, 'cut.bin'), undefined, 'nothing committed');
  raw.destroy();

  const warnings = gw.logs().split('\n').filter((line) => line.includes('native TLS engine not available'));
  t.equal(warnings.length, 1, 'the fallback is logged once, by the main thread; workers that serve data connections do not repeat it');
});
