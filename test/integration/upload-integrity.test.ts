// Every 226 matches the bytes in the store: many small and some multipart-sized uploads from lftp
// (one mput session) and basic-ftp (one control connection), on every backend. Together with the
// 50 curl uploads in clients.test.ts this covers the TLS 1.3 truncation seen with other servers.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { Readable } from 'node:stream';
import { Client } from 'basic-ftp';
import { backends, type Gateway } from '../helpers/gateway.ts';
import { gatewayFor, newBucket } from '../helpers/ftp-steps.ts';
import { describe, lftp, lftpQuote } from '../helpers/clients.ts';
import type { Test as TapTest, BuiltPlugins, TestOpts } from '@tapjs/test';

type Test = TapTest<BuiltPlugins, TestOpts> & BuiltPlugins;

const SMALL = 120;
const LARGE = 3;
const MiB = 1024 * 1024;

function bodies(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (let i = 0; i < SMALL; i += 1) files.set(`s${String(i).padStart(3, '0')}.bin`, randomBytes(randomInt(0, 256 * 1024)));
  for (let i = 0; i < LARGE; i += 1) files.set(`l${i}.bin`, randomBytes(9 * MiB + randomInt(0, MiB)));
  return files;
}

async function verify(t: Test, gw: Gateway, bucket: string, prefix: string, files: Map<string, Buffer>): Promise<void> {
  let whole = 0;
  for (const [name, body] of files) {
    const stored = await gw.probe.get(bucket, `${prefix}${name}`);
    if (stored?.equals(body)) whole += 1;
    else t.fail(`${prefix}${name}: ${stored?.length ?? 'missing'} bytes stored, ${body.length} sent`);
  }
  t.equal(whole, files.size, `${files.size} uploads (${SMALL} up to 256 KiB, ${LARGE} over 9 MiB) arrived whole`);
  t.equal(await gw.probe.openUploads(bucket), 0, 'no upload left open');
}

for (const backend of backends()) {
  t.test(`upload integrity on ${backend}`, async (t) => {
    const gw = await gatewayFor(t, backend);
    const bucket = await newBucket(t, gw, 'integrity');

    await t.test('lftp mput', async (t) => {
      const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-integrity-'));
      t.teardown(() => rm(dir, { recursive: true, force: true }));
      const files = bodies();
      for (const [name, body] of files) await writeFile(path.join(dir, name), body);
      const result = await lftp(gw, [`mkdir -p /${bucket}/lftp`, `cd /${bucket}/lftp`, `lcd ${lftpQuote(dir)}`, 'mput *.bin'], {
        timeoutMs: 240_000,
        extra: ['set ftp:waiting-150-timeout 0'],
      });
      t.equal(result.code, 0, `lftp mput: ${describe(result)}`);
      await verify(t, gw, bucket, 'lftp/', files);
    });

    await t.test('basic-ftp, one connection', async (t) => {
      const files = bodies();
      const client = new Client(60_000);
      t.teardown(() => client.close());
      await client.access({ host: gw.host, port: gw.port, user: gw.user, password: gw.password, secure: true, secureOptions: { rejectUnauthorized: false } });
      await client.ensureDir(`/${bucket}/basic`);
      for (const [name, body] of files) {
        const reply = await client.uploadFrom(Readable.from([body]), name);
        if (reply.code !== 226) t.fail(`${name}: ${reply.code} ${reply.message}`);
      }
      await verify(t, gw, bucket, 'basic/', files);
    });
  });
}
