// S3 and worker faults (issue 4, promises 6 and 7): a fault-injecting proxy between the gateway and
// radosgw answers 503 SlowDown, resets connections mid-body, delays, hangs or refuses; a failpoint
// kills a data worker mid-upload. Every failed upload must end in 451/426 with nothing committed
// and no multipart upload left, and every control session must go on.
import t from 'tap';
import type { Test as TapTest, BuiltPlugins, TestOpts } from '@tapjs/test';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { backends, s3Env, uniqueBucket, type StoreProbe } from '../helpers/gateway.ts';
import { RawFtp, type FtpReply } from '../helpers/raw-ftp.ts';
import { FaultProxy, S3Calls } from '../helpers/fault-proxy.ts';
import { gatewayFor, loginWhileStorageDown, newBucket } from '../helpers/ftp-steps.ts';

type Test = TapTest<BuiltPlugins, TestOpts> & BuiltPlugins;
const MiB = 1024 * 1024;
const FAILED_UPLOAD = [451, 426];
const STALL_S = 6;

/** Open multipart uploads, polled for up to `ms` to give the gateway's abort time to land. */
async function settledUploads(probe: Pick<StoreProbe, 'openUploads'>, bucket: string, ms = 3000): Promise<number> {
  let open = await probe.openUploads(bucket);
  for (let waited = 0; open > 0 && waited < ms; waited += 250) {
    await sleep(250);
    open = await probe.openUploads(bucket);
  }
  return open;
}

const s3 = s3Env();

// A write the store refuses before reading the body (no such bucket), whose data connection then
// closes: 550 (or 451/426) and the gateway, the session and every other session go on.
for (const backend of backends()) {
  t.test(`STOR into a missing bucket on ${backend} is answered cleanly, 20 times`, async (t) => {
    const gw = await gatewayFor(t, backend);
    const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
    const bystander = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
    t.teardown(() => Promise.all([ftp.quit(), bystander.quit()]));
    const finals = new Set<number>();
    for (let i = 0; i < 20 && !ftp.closed; i += 1) {
      const up = await ftp.transfer(`STOR /${uniqueBucket('missing')}/a.bin`, { upload: randomBytes(1000 + i) }).catch(() => undefined);
      finals.add(up === undefined ? -1 : up.first.code === 150 ? (up.final?.code ?? 0) : up.first.code);
      await sleep(50);
    }
    t.same([...finals], [550], 'every STOR answers 550 (at once or after 150); -1: the control connection was lost');
    t.equal((await ftp.send('NOOP')).code, 200, 'the session goes on');
    t.equal((await bystander.send('NOOP')).code, 200, 'another session goes on');
    const bucket = uniqueBucket('faults');
    t.teardown(() => gw.probe.removeBucket(bucket));
    t.equal((await ftp.send(`MKD /${bucket}`)).code, 257);
    const body = randomBytes(64 * 1024);
    t.equal((await ftp.transfer(`STOR /${bucket}/a.bin`, { upload: body })).final?.code, 226);
    t.ok((await gw.probe.get(bucket, 'a.bin'))?.equals(body), 'a later upload is stored whole');
  });
}

if (s3 && backends().includes('s3')) {
  t.test('S3 faults through a fault-injecting proxy', async (t) => {
    const proxy = await FaultProxy.start(s3.endpoint);
    t.teardown(() => proxy.close());
    const gw = await gatewayFor(t, 's3', {
      s3Endpoint: proxy.endpoint,
      // S3 requests that hang fail after --s3-timeout, so the hang cases end well inside the stall timeout.
      extraArgs: ['--part-size', String(8 * MiB), '--stall-timeout', String(STALL_S), '--s3-timeout', '3'],
    });
    /** Direct access to radosgw, bypassing gateway and proxy. */
    const direct = gw.probe;
    const bucket = uniqueBucket('faults');
    await direct.createBucket(bucket);
    t.teardown(() => direct.removeBucket(bucket));
    const login = (): Promise<RawFtp> => RawFtp.login(gw.host, gw.port, s3.accessKey, s3.secretKey);
    const ftp = await login();
    t.teardown(() => ftp.quit());
    t.beforeEach(() => proxy.passThrough());

    /** A failed upload over an existing object: 451/426, old bytes unchanged, no multipart upload left. */
    const failedUploadLeavesNothing = async (t: Test, key: string, size: number, arm: () => void): Promise<void> => {
      const old = Buffer.from(`previous ${key}`);
      await direct.put(bucket, key, old);
      arm();
      const up = await ftp.transfer(`STOR /${bucket}/${key}`, { upload: randomBytes(size) });
      proxy.passThrough();
      t.equal(up.first.code, 150, up.first.text);
      t.ok(FAILED_UPLOAD.includes(up.final?.code ?? 0), `STOR answers 451 or 426: ${up.final?.text ?? 'no reply'}`);
      t.ok((await direct.get(bucket, key))?.equals(old), 'the previous object is unchanged');
      t.equal(await settledUploads(direct, bucket), 0, 'no multipart upload left');
      t.equal((await ftp.send('NOOP')).code, 200, 'the control session goes on');
      const after = randomBytes(100 * 1024);
      t.equal((await ftp.transfer(`STOR /${bucket}/${key}`, { upload: after })).final?.code, 226, 'a later STOR succeeds');
      t.ok((await direct.get(bucket, key))?.equals(after), 'and is stored whole');
    };

    t.test('503 SlowDown on idempotent calls is retried: SIZE, LIST and RETR succeed', async (t) => {
      const body = randomBytes(300 * 1024);
      await direct.put(bucket, 'idem/file.bin', body);
      const before = proxy.counts.slowdowns;
      proxy.slowDown(2, S3Calls.headObject);
      t.equal((await ftp.send(`SIZE /${bucket}/idem/file.bin`)).text, `213 ${body.length}`);
      proxy.slowDown(2, S3Calls.listObjectsV2);
      const names = await ftp.list(`NLST /${bucket}/idem`);
      t.same(names, ['file.bin'], 'LIST 226 with the entry');
      proxy.slowDown(2, { method: 'GET', target: /\/idem\/file\.bin(?:\?|$)/ });
      const down = await ftp.transfer(`RETR /${bucket}/idem/file.bin`);
      t.equal(down.final?.code, 226, down.final?.text ?? 'no reply');
      t.ok(down.data.equals(body), 'RETR bytes equal');
      t.equal(proxy.counts.slowdowns - before, 6, 'every SlowDown was served and retried past');
    });

    t.test('503 SlowDown on every UploadPart of a 20 MiB upload', (t) =>
      failedUploadLeavesNothing(t, 'slow-parts.bin', 20 * MiB, () => proxy.slowDown(Infinity, S3Calls.uploadPart)));

    t.test('a reset mid-PutObject is retried once and the upload arrives whole', async (t) => {
      const body = randomBytes(200 * 1024);
      const before = proxy.counts.resets;
      proxy.reset(1, { method: 'PUT', target: /\/retried\.bin(?:\?|$)/ }, 50 * 1024);
      const up = await ftp.transfer(`STOR /${bucket}/retried.bin`, { upload: body });
      t.equal(up.final?.code, 226, up.final?.text ?? 'no reply');
      t.equal(proxy.counts.resets - before, 1, 'the first attempt was reset');
      t.ok((await direct.get(bucket, 'retried.bin'))?.equals(body), 'bytes in S3 equal');
    });

    t.test('resets on every attempt of a small PutObject', (t) =>
      failedUploadLeavesNothing(t, 'reset-put.bin', 200 * 1024, () =>
        proxy.reset(Infinity, { method: 'PUT', target: /\/reset-put\.bin(?:\?|$)/ }, 50 * 1024)));

    t.test('resets on every attempt of an UploadPart mid-body', (t) =>
      failedUploadLeavesNothing(t, 'reset-part.bin', 20 * MiB, () => proxy.reset(Infinity, S3Calls.uploadPart, MiB)));

    t.test('a failing CompleteMultipartUpload', (t) =>
      failedUploadLeavesNothing(t, 'slow-complete.bin', 12 * MiB, () => proxy.slowDown(Infinity, S3Calls.completeMultipartUpload)));

    t.test('slow S3 (300 ms per request): transfers still complete', async (t) => {
      proxy.delay(300);
      const body = randomBytes(10 * MiB);
      const up = await ftp.transfer(`STOR /${bucket}/slow.bin`, { upload: body });
      t.equal(up.final?.code, 226, up.final?.text ?? 'no reply');
      const down = await ftp.transfer(`RETR /${bucket}/slow.bin`);
      t.equal(down.final?.code, 226, down.final?.text ?? 'no reply');
      t.ok(down.data.equals(body), 'downloaded bytes equal');
      proxy.passThrough();
      t.ok((await direct.get(bucket, 'slow.bin'))?.equals(body), 'bytes in S3 equal');
    });

    const loginWhileDown = (t: Test, label: string): Promise<void> => loginWhileStorageDown(t, gw, s3.accessKey, s3.secretKey, label);

    /** On a session of its own: a transfer whose S3 calls hang ends in 451/426 within the stall timeout plus slack. */
    const hungTransfer = async (t: Test, command: string, upload?: Buffer): Promise<void> => {
      const session = await login();
      t.teardown(() => session.destroy());
      const data = await session.openData(await session.epsv());
      data.on('data', () => undefined);
      const started = Date.now();
      t.equal((await session.send(command)).code, 150);
      if (upload) data.end(upload);
      const limit = STALL_S * 1000 + 10_000;
      const final = await session.read(limit).catch(() => ({ code: -1, text: `no reply within ${limit} ms` }));
      t.ok(FAILED_UPLOAD.includes(final.code), `${command.split(' ')[0]} answers 451 or 426: ${final.text}`);
      t.ok(Date.now() - started < limit, `answered in ${Date.now() - started} ms (stall timeout ${STALL_S} s)`);
    };

    t.test('S3 down at login: PASS answers 421 promptly; a login works once S3 is back', async (t) => {
      proxy.refuse();
      await loginWhileDown(t, 'connections closed at once');
      t.equal((await ftp.send('NOOP')).code, 200, 'an existing session stays up');
      proxy.passThrough();
      const again = await login();
      t.equal((await again.send('PWD')).code, 257, 'a login works after S3 came back');
      await again.quit();
    });

    t.test('S3 hangs at login: PASS still answers promptly', async (t) => {
      proxy.swallow(Infinity);
      await loginWhileDown(t, 'requests never answered');
      proxy.passThrough();
      const again = await login();
      t.equal((await again.send('NOOP')).code, 200, 'a login works after S3 came back');
      await again.quit();
    });

    t.test('S3 hangs on every UploadPart: STOR ends within the stall timeout, nothing left', async (t) => {
      const old = Buffer.from('previous hung');
      await direct.put(bucket, 'hung-part.bin', old);
      proxy.swallow(Infinity, S3Calls.uploadPart);
      await hungTransfer(t, `STOR /${bucket}/hung-part.bin`, randomBytes(20 * MiB));
      proxy.passThrough();
      t.ok((await direct.get(bucket, 'hung-part.bin'))?.equals(old), 'the previous object is unchanged');
      t.equal(await settledUploads(direct, bucket, 5000), 0, 'no multipart upload left');
    });

    t.test('S3 hangs on GetObject: RETR ends within the stall timeout', async (t) => {
      await direct.put(bucket, 'hung-get.bin', randomBytes(1000));
      proxy.swallow(Infinity, { method: 'GET', target: /\/hung-get\.bin(?:\?|$)/ });
      await hungTransfer(t, `RETR /${bucket}/hung-get.bin`);
    });

    t.test('S3 goes down mid-upload and comes back: 451/426, old object kept, upload aborted', async (t) => {
      const old = Buffer.from('previous down');
      await direct.put(bucket, 'down-mid.bin', old);
      const session = await login();
      t.teardown(() => session.destroy());
      const data = await session.openData(await session.epsv());
      t.equal((await session.send(`STOR /${bucket}/down-mid.bin`)).code, 150);
      data.end(randomBytes(40 * MiB));
      const partSeen = (): boolean => proxy.seen.some((r) => r.method === 'PUT' && /down-mid\.bin\?partNumber=/.test(r.target));
      for (let i = 0; i < 100 && !partSeen(); i += 1) await sleep(100);
      t.ok(partSeen(), 'an UploadPart was under way');
      proxy.refuse();
      const final = await session.read(20_000).catch(() => ({ code: -1, text: 'no reply within 20 s' }));
      t.ok(FAILED_UPLOAD.includes(final.code), `STOR answers 451 or 426: ${final.text}`);
      await sleep(1000);
      proxy.passThrough();
      t.ok((await direct.get(bucket, 'down-mid.bin'))?.equals(old), 'the previous object is unchanged');
      t.equal(await settledUploads(direct, bucket, 10_000), 0, 'the multipart upload is aborted once S3 is back');
      t.equal((await ftp.send('NOOP')).code, 200, 'other sessions go on');
    });
  });
}

/** Starts a download and holds it (data socket paused); `finish` lets it run and returns the outcome. */
async function heldDownload(ftp: RawFtp, command: string): Promise<{ finish(): Promise<{ reply: FtpReply; data: Buffer }> }> {
  const data = await ftp.openData(await ftp.epsv());
  const chunks: Buffer[] = [];
  data.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<void>((resolve) => data.once('close', () => resolve()));
  const first = await ftp.send(command);
  if (first.code !== 150) throw new Error(`${command}: ${first.text}`);
  data.pause();
  return {
    async finish() {
      data.resume();
      await Promise.race([closed, sleep(20_000)]);
      return { reply: await ftp.read(), data: Buffer.concat(chunks) };
    },
  };
}

/** A data worker that dies mid-upload (failpoint) fails only its own transfers; every session stays up. */
for (const backend of backends()) {
  t.test(`worker crash mid-upload on ${backend}`, async (t) => {
    // The embedded store sweeps a dead upload's temp file once it has been idle for twice the
    // stall timeout; a short one keeps this test quick (held downloads may then end in 426).
    const extraArgs = ['--workers', '2', ...(backend === 'local' ? ['--stall-timeout', '2'] : [])];
    const gw = await gatewayFor(t, backend, { extraArgs, env: { S3FTPD_FAILPOINT: 'worker-exit' } });
    const { probe, user, password } = gw;
    const bucket = await newBucket(t, gw, 'crash');

    const big = randomBytes(24 * MiB);
    await probe.put(bucket, 'big.bin', big);
    const old = Buffer.from('previous object');
    await probe.put(bucket, 'failpoint-worker-exit.bin', old);
    const [a, b, c, idle] = await Promise.all([1, 2, 3, 4].map(() => RawFtp.login(gw.host, gw.port, user, password)));
    t.teardown(() => Promise.all([a, b, c, idle].filter((s) => s !== undefined).map((s) => s.quit())));
    if (!a || !b || !c || !idle) throw new Error('login failed');

    // B and C: downloads held mid-way (data sockets paused), one on each worker; the crashing upload
    // shares a worker with one of them.
    const held = await Promise.all([b, c].map((s) => heldDownload(s, `RETR /${bucket}/big.bin`)));
    const crash = await a.transfer(`STOR /${bucket}/failpoint-worker-exit.bin`, { upload: randomBytes(4 * MiB) });
    t.equal(crash.first.code, 150, crash.first.text);
    t.equal(crash.final?.code, 426, `the crashed upload answers 426: ${crash.final?.text ?? 'no reply'}`);
    t.ok((await probe.get(bucket, 'failpoint-worker-exit.bin'))?.equals(old), 'nothing committed: the old object is unchanged');
    t.equal(await settledUploads(probe, bucket, backend === 's3' ? 3000 : 10_000), 0, `no ${backend === 's3' ? 'multipart upload' : 'temp file'} left`);
    for (const [i, download] of held.entries()) {
      const { reply, data } = await download.finish();
      t.ok(
        (reply.code === 226 && data.equals(big)) || reply.code === 426,
        `concurrent download ${i + 1} completed whole or failed with 426: ${reply.text} (${data.length} bytes)`,
      );
    }
    for (const [name, session] of [['crashed', a], ['downloading', b], ['downloading', c], ['idle', idle]] as const) {
      t.notOk(session.closed, `the ${name} session's control connection stays open`);
      t.equal((await session.send('NOOP')).code, 200, `the ${name} session answers NOOP`);
    }
    t.notOk(gw.hasExited(), 'the gateway process is still running');

    // The pool replaced the worker: transfers work on the same session and on a new one.
    for (const [name, session] of [['same', a], ['new', await RawFtp.login(gw.host, gw.port, user, password)]] as const) {
      const body = randomBytes(3 * MiB + 5);
      for (let i = 0; i < 4; i += 1) {
        // Several rounds, so both workers (the replacement too) serve some of them.
        const up = await session.transfer(`STOR /${bucket}/after-${name}-${i}.bin`, { upload: body });
        t.equal(up.final?.code, 226, `${name} session STOR ${i}: ${up.final?.text ?? ''}`);
        const down = await session.transfer(`RETR /${bucket}/after-${name}-${i}.bin`);
        t.equal(down.final?.code, 226, `${name} session RETR ${i}`);
        t.ok(down.data.equals(body), `${name} session round ${i}: bytes equal`);
      }
      if (name === 'new') await session.quit();
    }
  });
}
