// Several listen addresses and IPv6: control on [::1], EPSV data on IPv6, PASV refused there.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { uniqueBucket } from '../helpers/gateway.ts';
import { RawFtp } from '../helpers/raw-ftp.ts';
import { eventually, gatewayFor } from '../helpers/ftp-steps.ts';

t.test('IPv4 and IPv6 control addresses on one gateway (embedded store)', async (t) => {
  const gw = await gatewayFor(t, 'local', { extraArgs: ['--listen', '127.0.0.1:0,[::1]:0'] });
  const readyLines = (): Array<{ host: string; port: number }> =>
    [...gw.logs().matchAll(/s3ftpd listening on (\S+):(\d+)/g)].map((m) => ({ host: m[1] ?? '', port: Number(m[2]) }));
  // The gateway counts as started at its first ready line; the second may arrive a moment later.
  await eventually(async () => readyLines().length >= 2, 5000);
  const ports = readyLines();
  t.equal(ports.length, 2, 'one ready line per address');
  t.equal(ports[1]?.host, '[::1]');
  const v6 = await RawFtp.login('::1', ports[1]?.port ?? 0, gw.user, gw.password);
  t.teardown(() => v6.quit());
  const bucket = uniqueBucket('ipv6');
  t.teardown(() => gw.probe.removeBucket(bucket));
  t.equal((await v6.send(`MKD /${bucket}`)).code, 257);
  t.equal((await v6.send('EPSV 1')).code, 522, 'EPSV 1 on an IPv6 connection names the right protocol');
  t.equal((await v6.send('PASV')).code, 425, 'PASV cannot announce an IPv6 address');
  const body = randomBytes(300_000);
  const up = await v6.transfer(`STOR /${bucket}/v6.bin`, { upload: body });
  t.equal(up.final?.code, 226, 'STOR over an IPv6 data connection');
  t.ok((await gw.probe.get(bucket, 'v6.bin'))?.equals(body), 'bytes in the store');
  const down = await v6.transfer(`RETR /${bucket}/v6.bin`);
  t.ok(down.data.equals(body), 'RETR over IPv6');
  const v4 = await RawFtp.login('127.0.0.1', ports[0]?.port ?? 0, gw.user, gw.password);
  t.teardown(() => v4.quit());
  t.same(await v4.list(`NLST /${bucket}`), ['v6.bin'], 'the IPv4 address serves the same store');
});

t.test('--pasv-address may be a host name, resolved at start', async (t) => {
  const gw = await gatewayFor(t, 'local', { extraArgs: ['--pasv-address', 'localhost'] });
  const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
  t.teardown(() => ftp.quit());
  const reply = await ftp.send('PASV');
  t.match(reply.text, /^227 .*\(127,0,0,1,\d+,\d+\)/, 'localhost announced as 127.0.0.1');
});
