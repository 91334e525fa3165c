import t from 'tap';
import { randomBytes } from 'node:crypto';
import { backends, uniqueBucket } from '../helpers/gateway.ts';
import { gatewayFor } from '../helpers/ftp-steps.ts';
import { RawFtp } from '../helpers/raw-ftp.ts';

for (const backend of backends()) {
  t.test(`smoke on ${backend}`, async (t) => {
    const gw = await gatewayFor(t, backend);
    const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
    t.teardown(() => ftp.quit());
    const bucket = uniqueBucket('smoke');
    t.teardown(() => gw.probe.removeBucket(bucket));
    t.equal((await ftp.send(`MKD /${bucket}`)).code, 257);
    const body = randomBytes(12 * 1024 * 1024 + 17);
    const up = await ftp.transfer(`STOR /${bucket}/dir/big.bin`, { upload: body });
    t.equal(up.final?.code, 226, up.final?.text ?? 'no final reply');
    t.ok((await gw.probe.get(bucket, 'dir/big.bin'))?.equals(body), 'bytes in the store equal');
    t.equal(await gw.probe.openUploads(bucket), 0, 'no multipart upload left');
    const down = await ftp.transfer(`RETR /${bucket}/dir/big.bin`);
    t.equal(down.final?.code, 226);
    t.ok(down.data.equals(body), 'downloaded bytes equal');
    t.same(await ftp.list(`NLST /${bucket}`), ['dir']);
  });
}
