// A login's key check is made by the driver that then serves the key (storage/index.ts
// verifyS3Login): the second login with the same pair makes no new driver, a refused pair leaves
// none behind, and a key scoped away from ListBuckets (AccessDenied) still counts as genuine.
import t from 'tap';
import { backends, s3Env } from '../helpers/gateway.ts';
import { cachedDriverCount, closeAllDrivers, verifyS3Login } from '../../src/storage/index.ts';
import type { StorageTarget } from '../../src/storage/driver.ts';

const env = s3Env();

if (backends().includes('s3') && env) {
  t.test('logins on radosgw share one driver per key pair', async (t) => {
    t.teardown(closeAllDrivers);
    const target = (accessKeyId: string, secretAccessKey: string): Extract<StorageTarget, { kind: 's3' }> => ({
      kind: 's3',
      endpoint: env.endpoint,
      region: env.region,
      pathStyle: true,
      accessKeyId,
      secretAccessKey,
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
      requestTimeoutMs: 10_000,
      unsignedPayload: false,
      http: 'undici',
      resumeWindowMs: undefined,
    });
    closeAllDrivers();
    t.equal(await verifyS3Login(target(env.accessKey, env.secretKey)), true, 'the genuine pair logs in');
    t.equal(cachedDriverCount(), 1, 'its driver is kept for the session');
    t.equal(await verifyS3Login(target(env.accessKey, env.secretKey)), true, 'and again');
    t.equal(cachedDriverCount(), 1, 'with the same driver');
    t.equal(await verifyS3Login(target(env.accessKey, `${env.secretKey}x`)), false, 'a wrong secret is refused');
    t.equal(await verifyS3Login(target('NOSUCHKEY0000000000', 'nothing')), false, 'an unknown key is refused');
    t.equal(cachedDriverCount(), 1, 'refused pairs leave no driver behind');
    if (env.scopedAccessKey !== '') {
      t.equal(await verifyS3Login(target(env.scopedAccessKey, env.scopedSecretKey)), true, 'a key denied ListBuckets is genuine');
      t.equal(cachedDriverCount(), 2);
    }
  });
} else {
  // Without S3 (make test always has radosgw: S3FTPD_TEST_REQUIRE_S3=1 makes its absence fail),
  // a refused pair is still refused and kept nowhere: the endpoint is not even reachable.
  t.test('without S3: a login check against no endpoint fails and keeps no driver', async (t) => {
    const before = cachedDriverCount();
    const target: Extract<StorageTarget, { kind: 's3' }> = {
      kind: 's3',
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      pathStyle: true,
      accessKeyId: 'NOSUCHKEY0000000000',
      secretAccessKey: 'nothing',
      partSize: 8 * 1024 * 1024,
      queueSize: 2,
      requestTimeoutMs: 2000,
      unsignedPayload: false,
      http: 'undici',
      resumeWindowMs: undefined,
    };
    await t.rejects(verifyS3Login(target), 'S3 unreachable is an error, not a refused login');
    t.equal(cachedDriverCount(), before);
  });
}
