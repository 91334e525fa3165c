// SPEC §2/§3: a key scoped by bucket policy logs in, sees no foreign buckets at `/`, works in the
// bucket it was granted and is refused everywhere else, with nothing written. S3 (radosgw) only:
// the embedded store has a single key, so without S3 the test checks that a second key is refused.
import t from 'tap';
import { randomBytes, createHash } from 'node:crypto';
import { ListBucketsCommand, ListObjectsV2Command, PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import { backends, s3ClientFor, s3Env, uniqueBucket, type Gateway } from '../helpers/gateway.ts';
import { gatewayFor } from '../helpers/ftp-steps.ts';
import { RawFtp, type FtpReply } from '../helpers/raw-ftp.ts';

const SCOPED_UID = 's3ftpd-scoped';

/** AUTH TLS, USER, PASS with the given key; returns the PASS reply and the client. */
async function tryLogin(gw: Gateway, user: string, password: string): Promise<{ ftp: RawFtp; pass: FtpReply }> {
  const { client } = await RawFtp.connect(gw.host, gw.port);
  await client.expect('AUTH TLS', 234);
  await client.upgrade();
  await client.expect(`USER ${user}`, 331);
  return { ftp: client, pass: await client.send(`PASS ${password}`) };
}

function isFailure(code: number): boolean {
  return code >= 400 && code < 600;
}

const env = s3Env();

if (backends().includes('s3') && env) {
  t.test('bucket-scoped user on s3', async (t) => {
    t.ok(env.scopedAccessKey !== '' && env.scopedSecretKey !== '', 'S3FTPD_TEST_SCOPED_ACCESS_KEY/SECRET_KEY are set');
    const admin = s3ClientFor(env.accessKey, env.secretKey);
    t.teardown(() => admin.destroy());
    const gw = await gatewayFor(t, 's3', { s3User: { accessKey: env.scopedAccessKey, secretKey: env.scopedSecretKey } });
    const granted = uniqueBucket('scoped');
    const other = uniqueBucket('private');
    for (const name of [granted, other]) {
      await gw.probe.createBucket(name);
      t.teardown(() => gw.probe.removeBucket(name));
    }
    const owner = (await admin.send(new ListBucketsCommand({}))).Owner?.ID ?? '';
    t.ok(owner !== '', `the main user's id is known (${owner})`);
    // radosgw (pacific) keeps the writer as an object's owner and has no BucketOwnerEnforced, so the
    // bucket owner is granted GetObject too: the main user's probe must read what the scoped key wrote.
    const policy = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: [`arn:aws:iam:::user/${SCOPED_UID}`] },
          Action: ['s3:ListBucket', 's3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
          Resource: [`arn:aws:s3:::${granted}`, `arn:aws:s3:::${granted}/*`],
        },
        { Effect: 'Allow', Principal: { AWS: [`arn:aws:iam:::user/${owner}`] }, Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${granted}/*`] },
      ],
    };
    await admin.send(new PutBucketPolicyCommand({ Bucket: granted, Policy: JSON.stringify(policy) }));
    const secret = Buffer.from('only the main user may read this');
    await gw.probe.put(other, 'private.txt', secret);

    const { ftp, pass } = await tryLogin(gw, env.scopedAccessKey, env.scopedSecretKey);
    t.teardown(() => ftp.quit());
    t.equal(pass.code, 230, `the scoped key logs in: ${pass.text}`);
    await ftp.expect('PBSZ 0', 200);
    await ftp.expect('PROT P', 200);
    const noop = async (): Promise<number> => (await ftp.send('NOOP')).code;

    await t.test('/ lists nothing the scoped user does not own', async (t) => {
      const names = await ftp.list('NLST /');
      const mainBuckets = ((await admin.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name ?? '');
      t.ok(mainBuckets.includes(granted) && mainBuckets.includes(other), 'both buckets exist for the main user');
      t.same(names.filter((n) => mainBuckets.includes(n)), [], `no bucket of the main user is listed: ${names.join(', ')}`);
      const list = await ftp.transfer('LIST /');
      t.equal(list.final?.code, 226, 'LIST / completes');
      t.notMatch(list.data.toString(), granted, 'LIST / does not show the granted bucket either (the key does not own it)');
    });

    await t.test('in the granted bucket CWD, STOR, RETR, LIST and DELE work', async (t) => {
      t.equal((await ftp.send(`CWD /${granted}`)).code, 250);
      t.match((await ftp.send('PWD')).text, new RegExp(`^257 "/${granted}"`), 'PWD shows the bucket');
      const body = randomBytes(200 * 1024 + 7);
      const up = await ftp.transfer('STOR up.bin', { upload: body });
      t.equal(up.final?.code, 226, `STOR: ${up.first.text} / ${up.final?.text}`);
      t.ok((await gw.probe.get(granted, 'up.bin'))?.equals(body), 'the main user reads the same bytes');
      const listed = await admin.send(new ListObjectsV2Command({ Bucket: granted }));
      const entry = listed.Contents?.find((o) => o.Key === 'up.bin');
      t.equal(entry?.Size, body.length, 'size in the main user\'s listing');
      t.equal(entry?.ETag?.replace(/"/g, ''), createHash('md5').update(body).digest('hex'), 'ETag is the MD5 of the body');
      const down = await ftp.transfer('RETR up.bin');
      t.equal(down.final?.code, 226);
      t.ok(down.data.equals(body), 'RETR bytes equal');
      t.same(await ftp.list('NLST'), ['up.bin'], 'NLST in the granted bucket');
      const long = await ftp.list('LIST');
      t.equal(long.length, 1);
      t.match(long[0] ?? '', new RegExp(`^-.* ${body.length} .* up\\.bin$`), 'LIST line with the size');
      t.equal((await ftp.send('DELE up.bin')).code, 250);
      t.same(await gw.probe.keys(granted), [], 'the object is gone');
      t.equal(await gw.probe.openUploads(granted), 0);
    });

    await t.test('in a bucket without a grant every operation is refused and nothing is written', async (t) => {
      t.equal((await ftp.send(`CWD /${other}`)).code, 550, 'CWD');
      t.equal(await noop(), 200, 'the session goes on after CWD');
      t.equal((await ftp.send('CWD /')).code, 250);
      const up = await ftp.transfer(`STOR /${other}/intruder.bin`, { upload: Buffer.from('should not land') });
      const storCode = up.final?.code ?? up.first.code;
      t.ok(isFailure(storCode) && storCode !== 426, `STOR refused with a failure code: ${up.first.text} / ${up.final?.text}`);
      t.ok([550, 553, 451].includes(storCode), `STOR answers 550/553/451: ${storCode}`);
      t.equal(await noop(), 200, 'the session goes on after STOR');
      const down = await ftp.transfer(`RETR /${other}/private.txt`);
      t.equal(down.first.code, 550, `RETR: ${down.first.text}`);
      t.equal(down.data.length, 0, 'no byte of the object was sent');
      t.equal(await noop(), 200, 'the session goes on after RETR');
      t.equal((await ftp.send(`MKD /${other}/newdir`)).code, 550, 'MKD');
      t.equal(await noop(), 200, 'the session goes on after MKD');
      t.equal((await ftp.send(`DELE /${other}/private.txt`)).code, 550, 'DELE');
      t.equal((await ftp.send(`RNFR /${other}/private.txt`)).code, 550, 'RNFR');
      t.equal((await ftp.send(`SIZE /${other}/private.txt`)).code, 550, 'SIZE');
      const list = await ftp.transfer(`LIST /${other}`);
      t.equal(list.first.code, 550, `LIST: ${list.first.text}`);
      t.equal(await noop(), 200, 'the session goes on after the refusals');
      t.same(await gw.probe.keys(other), ['private.txt'], 'nothing was written or deleted in the other bucket');
      t.same(await gw.probe.get(other, 'private.txt'), secret, 'the private object is unchanged');
      t.equal(await gw.probe.openUploads(other), 0, 'no multipart upload left');
      const after = await ftp.transfer(`STOR /${granted}/after.txt`, { upload: Buffer.from('still here') });
      t.equal(after.final?.code, 226, 'the granted bucket still works after the refusals');
      t.equal((await gw.probe.get(granted, 'after.txt'))?.toString(), 'still here');
    });
  });
} else {
  t.test('local backend: a second, random key is rejected', async (t) => {
    const gw = await gatewayFor(t, 'local');
    const key = `SCOPED${randomBytes(7).toString('hex').toUpperCase()}`;
    const { ftp, pass } = await tryLogin(gw, key, randomBytes(30).toString('base64url'));
    t.teardown(() => ftp.quit());
    t.equal(pass.code, 530, `an unknown key pair: ${pass.text}`);
    t.equal((await ftp.send(`USER ${key}`)).code, 331);
    t.equal((await ftp.send(`PASS ${gw.password}`)).code, 530, 'the real secret under another access key');
    t.equal((await ftp.send(`USER ${gw.user}`)).code, 331);
    t.equal((await ftp.send(`PASS ${gw.password}`)).code, 230, 'the one real key still logs in');
  });
}
