// The README's backstop for resumable uploads nobody continues: a bucket lifecycle rule
// AbortIncompleteMultipartUpload. radosgw honours it (the test cluster runs with
// `rgw lc debug interval = 10`, so a lifecycle day lasts 10 s); the gateway then drops the record
// of the vanished upload and the file is gone from FTP.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { PutBucketLifecycleConfigurationCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { s3Env, s3ClientFor } from '../helpers/gateway.ts';
import { gatewayFor, newBucket, session, writeAll, eventually } from '../helpers/ftp-steps.ts';

const env = s3Env();
t.test('an AbortIncompleteMultipartUpload rule removes a resumable upload nobody continued', { skip: env ? false : 'needs radosgw' }, async (t) => {
  if (!env) return;
  const gw = await gatewayFor(t, 's3', { extraArgs: ['--part-size', '5MiB'] });
  const bucket = await newBucket(t, gw, 'lc');
  const s3 = s3ClientFor(env.accessKey, env.secretKey);
  await s3.send(
    new PutBucketLifecycleConfigurationCommand({
      Bucket: bucket,
      LifecycleConfiguration: {
        Rules: [{ ID: 'abort-incomplete', Status: 'Enabled', Filter: { Prefix: '' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }],
      },
    }),
  );
  const ftp = await session(t, gw);
  const port = await ftp.epsv();
  const data = await ftp.openData(port);
  t.equal((await ftp.send(`STOR /${bucket}/left.bin`)).code, 150);
  // Two whole 5 MiB parts and some more, then a reset: the upload stays resumable.
  await writeAll(data, randomBytes(11 * 1024 * 1024));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  // TCP FIN without a TLS close_notify: a cut, never a complete upload.
  data.destroy();
  t.equal((await ftp.read()).code, 426, 'the cut upload fails');
  t.equal((await ftp.send(`SIZE /${bucket}/left.bin`)).text, '213 10485760', 'and is resumable at two parts');
  const uploads = async (): Promise<number> => (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads?.length ?? 0;
  t.equal(await uploads(), 1, 'its multipart upload is in S3');
  t.ok(await eventually(async () => (await uploads()) === 0, 120_000), 'the lifecycle rule removes the multipart upload');
  t.equal((await ftp.send(`SIZE /${bucket}/left.bin`)).code, 550, 'the file is gone from FTP');
  t.same(await gw.probe.keys(bucket, '.s3ftpd-resume/'), [], 'and so is its record');
});
