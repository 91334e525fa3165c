// Resumable uploads (SPEC §7) against a real store and real clients: an upload of a new key cut by
// the network (client killed, RST, FIN without close_notify, ABOR, gateway shutdown or crash) keeps
// the whole parts S3 stored; SIZE/LIST/NLST/MLSD/MDTM show it, RETR refuses it, DELE removes it, and
// REST n + STOR, APPE (curl -C -, basic-ftp appendFrom), lftp put -c and ftplib storbinary(rest=)
// continue it on this or another gateway instance into a byte-identical object. Also: the window,
// racing continuations, foreign multipart uploads, --upload-resume off and interrupted overwrites.
import t from 'tap';
import type { Test as TapTest, BuiltPlugins, TestOpts } from '@tapjs/test';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'basic-ftp';
import fc from 'fast-check';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { backends, s3ClientFor, s3Env, type BackendName, type Gateway } from '../helpers/gateway.ts';
import { RawFtp, type FtpReply } from '../helpers/raw-ftp.ts';
import { gatewayFor, newBucket, openDataPair, parseFacts, parseListLine, parseTimeval, session, stor, writeAll, writePaced } from '../helpers/ftp-steps.ts';
import { curl, curlCode, describe, ftplib, ftpUrl, lftp, lftpQuote, run } from '../helpers/clients.ts';

type Test = TapTest<BuiltPlugins, TestOpts> & BuiltPlugins;

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const GW_ARGS = ['--part-size', '5MiB'];
/** Files the real clients upload and cut. */
const CLIENT_FILE = 64 * MiB;
/** Rate the real clients are held to while they get cut (curl and lftp read `10M` as 10 MiB/s). */
const CUT_RATE = 10 * MiB;
/** The backends whose gateway keeps a cut upload resumable: both (S3 multipart, the embedded store's partial files). */
const RESUMABLE_BACKENDS: readonly BackendName[] = ['s3', 'local'];
/** Where the S3 backend records its resumable uploads, and how the embedded store names a partial file. */
const RECORD_PREFIX = '.s3ftpd-resume/';
const PARTIAL_PREFIX = '.s3ftpd-partial-';

/** What a resumable offset is made of: S3 keeps whole parts, the embedded store every byte it received. */
const GRANULE: Readonly<Record<BackendName, number>> = { s3: PART, local: 1 };

/** The offset a cut after `sent` bytes (all read by the gateway) leaves. */
function kept(backend: BackendName, sent: number): number {
  return Math.floor(sent / GRANULE[backend]) * GRANULE[backend];
}

/** Resumable uploads left open: multipart uploads on S3, partial files in the embedded store. */
function openResumables(backend: BackendName, left: Leftovers): number {
  return backend === 's3' ? left.uploads : left.records.filter((r) => path.posix.basename(r).startsWith(PARTIAL_PREFIX)).length;
}

function resumeSkip(backend: BackendName): string | false {
  return RESUMABLE_BACKENDS.includes(backend) ? false : `the ${backend} backend does not keep cut uploads resumable yet (RESUMABLE_BACKENDS)`;
}

async function tempFile(t: Test, size: number): Promise<{ file: string; body: Buffer }> {
  const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-resume-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const body = randomBytes(size);
  const file = path.join(dir, 'upload.bin');
  await writeFile(file, body);
  return { file, body };
}

interface Leftovers {
  /** Open multipart uploads (the embedded store: temporary files). */
  readonly uploads: number;
  /** Resume records (S3) or partial files (embedded store). */
  readonly records: string[];
}

async function leftovers(gw: Gateway, bucket: string): Promise<Leftovers> {
  const keys = await gw.probe.keys(bucket);
  const records = keys.filter((k) => (k.startsWith(RECORD_PREFIX) && !k.endsWith('/')) || path.posix.basename(k).startsWith(PARTIAL_PREFIX));
  return { uploads: await gw.probe.openUploads(bucket), records };
}

/** Leftovers polled for up to `ms` (aborts and record removals may land after the reply). */
async function settledLeftovers(gw: Gateway, bucket: string, ms = 10_000): Promise<Leftovers> {
  const deadline = Date.now() + ms;
  let left = await leftovers(gw, bucket);
  for (let i = 0; i < 100 && (left.uploads > 0 || left.records.length > 0) && Date.now() < deadline; i += 1) {
    await sleep(250);
    left = await leftovers(gw, bucket);
  }
  return left;
}

async function assertClean(t: Test, gw: Gateway, bucket: string, label: string): Promise<void> {
  const left = await settledLeftovers(gw, bucket);
  t.equal(left.uploads, 0, `${label}: no multipart upload left`);
  t.same(left.records, [], `${label}: no resume record left`);
}

/** SIZE, polled until it answers 213 (the cut upload is recorded) or `ms` passed; the last reply. */
async function sizeOnceRecorded(ftp: RawFtp, remote: string, ms = 20_000): Promise<FtpReply> {
  const deadline = Date.now() + ms;
  let reply = await ftp.send(`SIZE ${remote}`);
  for (let i = 0; i < 200 && reply.code !== 213 && Date.now() < deadline; i += 1) {
    await sleep(250);
    reply = await ftp.send(`SIZE ${remote}`);
  }
  return reply;
}

/** Checks SIZE's answer is a resumable offset (on S3 whole 5 MiB parts, at least one; at most `sent`). */
function offsetOf(t: Test, backend: BackendName, reply: FtpReply, sent: number, label: string): number {
  t.equal(reply.code, 213, `${label}: SIZE answers 213 (${reply.text})`);
  const offset = Number(reply.text.slice(4));
  t.equal(offset % GRANULE[backend], 0, `${label}: offset ${offset} is whole ${GRANULE[backend]}-byte units`);
  t.ok(offset >= PART, `${label}: offset ${offset} keeps at least 5 MiB`);
  t.ok(offset <= sent, `${label}: offset ${offset} <= ${sent} bytes sent`);
  return offset;
}

/** A session on `gw` with `owner`'s credentials (a second embedded-store gateway on the same directory prints none). */
async function sessionAs(t: Test, gw: Gateway, owner: Gateway): Promise<RawFtp> {
  const ftp = await RawFtp.login(gw.host, gw.port, owner.user, owner.password);
  t.teardown(() => ftp.quit());
  return ftp;
}

type Cut = 'rst' | 'fin' | 'destroy' | 'abor';

interface CutResult {
  readonly first: FtpReply;
  /** The transfer's reply after the cut (426 expected). */
  readonly final: FtpReply;
  /** ABOR's own reply after the transfer's. */
  readonly abor?: FtpReply;
}

/**
 * `command` (STOR by default), sends `bytes`, waits for the gateway to store the whole parts, then
 * cuts: RST, FIN without close_notify, close of the TLS socket (destroy) or ABOR on the control
 * connection. Resolves with the replies.
 */
async function cutUpload(ftp: RawFtp, command: string, bytes: Buffer, how: Cut, settleMs = 1500): Promise<CutResult> {
  const port = await ftp.epsv();
  const { raw, secure } = await openDataPair(ftp, port);
  const first = await ftp.send(command);
  if (first.code !== 150) {
    secure.destroy();
    return { first, final: first };
  }
  await writeAll(secure, bytes);
  await sleep(settleMs);
  if (how === 'abor') {
    const final = await ftp.send('ABOR');
    const abor = await ftp.read();
    secure.destroy();
    return { first, final, abor };
  }
  if (how === 'rst') raw.resetAndDestroy();
  else if (how === 'fin') raw.end();
  else secure.destroy();
  const final = await ftp.read();
  secure.destroy();
  return { first, final };
}

/** Bytes sent before a cut: whole parts plus part of another, well inside `total`. */
function cutPoint(total: number, parts = 2): number {
  return Math.min(total - 1, parts * PART + randomInt(1, PART));
}

/** REST offset + STOR of the rest of `body`; the final reply (or the first when it was not 150). */
async function continueUpload(ftp: RawFtp, remote: string, body: Buffer, offset: number): Promise<FtpReply> {
  await ftp.expect(`REST ${offset}`, 350);
  const result = await ftp.transfer(`STOR ${remote}`, { upload: body.subarray(offset) });
  return result.final ?? result.first;
}

async function storedWhole(t: Test, gw: Gateway, bucket: string, key: string, body: Buffer, label: string): Promise<void> {
  const stored = await gw.probe.get(bucket, key);
  t.equal(stored?.length, body.length, `${label}: the object has the file's size`);
  t.ok(stored?.equals(body), `${label}: the object is byte-identical to the file`);
}

interface ForeignUpload {
  readonly key: string;
  readonly uploadId: string;
}

async function foreignUpload(client: S3Client, bucket: string, key: string): Promise<ForeignUpload> {
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const uploadId = created.UploadId ?? '';
  await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 1, Body: randomBytes(PART) }));
  return { key, uploadId };
}

async function openUploadIds(client: S3Client, bucket: string): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map((u) => `${u.Key ?? ''} ${u.UploadId ?? ''}`).sort();
}

for (const backend of backends()) {
  const skip = resumeSkip(backend);

  t.test(`resumable uploads on ${backend}`, async (t) => {
    const gw = await gatewayFor(t, backend, { extraArgs: GW_ARGS });

    await t.test('curl -T killed mid-upload, then curl -C - -T (APPE) completes it', { skip }, async (t) => {
      const bucket = await newBucket(t, gw, 'resume-curl');
      const { file, body } = await tempFile(t, CLIENT_FILE + randomInt(0, MiB));
      const url = ftpUrl(gw, `/${bucket}/curl.bin`);
      const delay = randomInt(2000, 4500);
      // `run` kills curl by its own PID (SIGKILL) after `delay`: no close_notify, no QUIT.
      const cut = await run(
        'curl',
        ['--ssl-reqd', '-k', '-sS', '--ftp-pasv', '-u', `${gw.user}:${gw.password}`, '--limit-rate', '10M', '-T', file, url],
        { timeoutMs: delay },
      );
      t.ok(cut.timedOut, `curl was killed mid-upload after ${delay} ms: ${describe(cut)}`);
      const ftp = await session(t, gw);
      const sent = Math.ceil((CUT_RATE * delay) / 1000) + 4 * MiB;
      const offset = offsetOf(t, backend, await sizeOnceRecorded(ftp, `/${bucket}/curl.bin`), Math.min(sent, body.length - 1), 'curl cut');
      t.equal(await gw.probe.get(bucket, 'curl.bin'), undefined, 'no object before the upload is complete');
      const again = await curl(gw, ['-C', '-', '-T', file, url], { timeoutMs: 180_000 });
      t.equal(again.code, 0, `curl -C - -T: ${describe(again)}`);
      t.equal(curlCode(again), 226, `226 after the whole object (continued at ${offset})`);
      await storedWhole(t, gw, bucket, 'curl.bin', body, 'curl');
      await assertClean(t, gw, bucket, 'curl');
    });

    await t.test('lftp put killed mid-upload, then put -c (SIZE, REST n, STOR) completes it', { skip }, async (t) => {
      const bucket = await newBucket(t, gw, 'resume-lftp');
      const { file, body } = await tempFile(t, CLIENT_FILE + randomInt(0, MiB));
      const put = (continued: boolean): string => `put ${continued ? '-c ' : ''}${lftpQuote(file)} -o ${lftpQuote(`/${bucket}/lftp.bin`)}`;
      const delay = randomInt(2500, 5000);
      const cut = await lftp(gw, [put(false)], { timeoutMs: delay, extra: ['set net:limit-rate 10M'] });
      t.ok(cut.timedOut, `lftp was killed mid-upload after ${delay} ms: ${describe(cut)}`);
      const ftp = await session(t, gw);
      // lftp's net:limit-rate lets bursts through, so the bytes it sent are only known to be under the file's size.
      const offset = offsetOf(t, backend, await sizeOnceRecorded(ftp, `/${bucket}/lftp.bin`), body.length - 1, 'lftp cut');
      const again = await lftp(gw, ['debug 5', put(true)], { timeoutMs: 180_000 });
      t.equal(again.code, 0, `lftp put -c: ${describe(again)}`);
      t.match(again.stderr, new RegExp(`REST ${offset}\\b`), `lftp continued with REST ${offset}`);
      await storedWhole(t, gw, bucket, 'lftp.bin', body, 'lftp');
      await assertClean(t, gw, bucket, 'lftp');
    });

    await t.test('Python ftplib: SIZE, then storbinary(rest=offset) completes a cut upload', { skip }, async (t) => {
      const bucket = await newBucket(t, gw, 'resume-ftplib');
      const { file, body } = await tempFile(t, CLIENT_FILE);
      const ftp = await session(t, gw);
      const sent = cutPoint(body.length, 3);
      const cut = await cutUpload(ftp, `STOR /${bucket}/py.bin`, body.subarray(0, sent), 'rst');
      t.equal(cut.final.code, 426, `the cut upload answers 426 (${cut.final.text})`);
      const offset = offsetOf(t, backend, await sizeOnceRecorded(ftp, `/${bucket}/py.bin`), sent, 'ftplib');
      const { run: result, output } = await ftplib(
        gw,
        [
          { op: 'size', path: `/${bucket}/py.bin` },
          { op: 'stor', path: `/${bucket}/py.bin`, file, rest: offset },
        ],
        { timeoutMs: 180_000, socketTimeout: 60 },
      );
      t.ok(output?.ok, `ftplib ran every step: ${JSON.stringify(output?.error)} ${describe(result)}`);
      t.equal(output?.results[0]?.size, offset, 'ftplib SIZE reads the offset');
      t.match(output?.results[1]?.reply ?? '', /^226/, 'storbinary(rest=) ends in 226');
      await storedWhole(t, gw, bucket, 'py.bin', body, 'ftplib');
      await assertClean(t, gw, bucket, 'ftplib');
    });

    await t.test('basic-ftp: size(), then appendFrom (APPE) completes an upload cut by a socket destroy', { skip }, async (t) => {
      const bucket = await newBucket(t, gw, 'resume-basic');
      const { file, body } = await tempFile(t, CLIENT_FILE);
      const ftp = await session(t, gw);
      const sent = cutPoint(body.length, 2);
      const cut = await cutUpload(ftp, `STOR /${bucket}/basic.bin`, body.subarray(0, sent), 'destroy');
      t.equal(cut.final.code, 426, `the cut upload answers 426 (${cut.final.text})`);
      const client = new Client(120_000);
      t.teardown(() => client.close());
      await client.access({ host: gw.host, port: gw.port, user: gw.user, password: gw.password, secure: true, secureOptions: { rejectUnauthorized: false } });
      const offset = await client.size(`/${bucket}/basic.bin`);
      t.equal(offset % GRANULE[backend], 0, `basic-ftp size() reads a whole-unit offset (${offset})`);
      t.ok(offset >= PART && offset <= sent, `offset ${offset} within 5 MiB..${sent}`);
      const reply = await client.appendFrom(createReadStream(file, { start: offset }), `/${bucket}/basic.bin`);
      t.equal(reply.code, 226, `appendFrom: ${reply.code} ${reply.message}`);
      await storedWhole(t, gw, bucket, 'basic.bin', body, 'basic-ftp');
      await assertClean(t, gw, bucket, 'basic-ftp');
    });

    for (const how of ['rst', 'fin', 'abor'] as const) {
      const what = { rst: 'a TCP reset', fin: 'FIN without close_notify', abor: 'ABOR' }[how];
      await t.test(`an upload cut by ${what} answers 426, keeps its whole parts and continues with REST + STOR`, { skip }, async (t) => {
        const bucket = await newBucket(t, gw, `resume-${how}`);
        const body = randomBytes(4 * PART + randomInt(0, PART));
        const ftp = await session(t, gw);
        const sent = cutPoint(body.length, 2);
        const cut = await cutUpload(ftp, `STOR /${bucket}/cut.bin`, body.subarray(0, sent), how);
        t.equal(cut.first.code, 150, 'STOR started');
        t.equal(cut.final.code, 426, `the transfer answers 426 (${cut.final.text})`);
        if (how === 'abor') t.equal(cut.abor?.code, 226, 'then ABOR answers 226');
        const size = await ftp.send(`SIZE /${bucket}/cut.bin`);
        t.equal(size.text, `213 ${kept(backend, sent)}`, `SIZE right after the 426: what is kept of ${sent} bytes sent`);
        t.equal(await gw.probe.get(bucket, 'cut.bin'), undefined, 'no object yet');
        const offset = Number(size.text.slice(4));
        t.equal((await continueUpload(ftp, `/${bucket}/cut.bin`, body, offset)).code, 226, `REST ${offset} + STOR completes it`);
        await storedWhole(t, gw, bucket, 'cut.bin', body, how);
        await assertClean(t, gw, bucket, how);
      });
    }

    await t.test('SIZE, LIST, NLST, MLSD, MLST, MDTM, RETR, REST and DELE of a resumable upload', { skip }, async (t) => {
      const bucket = await newBucket(t, gw, 'resume-views');
      await gw.probe.put(bucket, 'other.txt', 'a finished file');
      const body = randomBytes(4 * PART);
      const ftp = await session(t, gw);
      const storAt = Date.now();
      // Sent slowly (~4 s) so that the upload's start and its cut are seconds apart.
      const port = await ftp.epsv();
      const { raw, secure } = await openDataPair(ftp, port);
      t.equal((await ftp.send(`STOR /${bucket}/part.bin`)).code, 150);
      const sent = 2 * PART + MiB;
      await writePaced(secure, body.subarray(0, sent), { spreadOverMs: 4000, slices: 20, end: false });
      await sleep(1500);
      raw.resetAndDestroy();
      t.equal((await ftp.read()).code, 426, 'the cut upload answers 426');
      const cutAt = Date.now();
      const offset = kept(backend, sent);

      t.equal((await ftp.send(`SIZE /${bucket}/part.bin`)).text, `213 ${offset}`, 'SIZE answers the offset');
      const mdtm = await ftp.send(`MDTM /${bucket}/part.bin`);
      t.equal(mdtm.code, 213, `MDTM answers (${mdtm.text})`);
      const started = parseTimeval(mdtm.text.slice(4))?.getTime() ?? 0;
      t.ok(
        started >= Math.floor(storAt / 1000) * 1000 - 1000 && started <= storAt + 1500,
        `MDTM is the upload's start (${new Date(started).toISOString()}; STOR at ${new Date(storAt).toISOString()}, cut at ${new Date(cutAt).toISOString()})`,
      );

      const list = await ftp.list(`LIST /${bucket}`);
      const listed = list.map(parseListLine);
      t.same(
        listed.map((l) => l && [l.type, l.name, l.size]).sort(),
        [['file', 'other.txt', 15], ['file', 'part.bin', offset]],
        `LIST shows the upload as a file of its offset and nothing of the records: ${list.join(' | ')}`,
      );
      t.same((await ftp.list(`NLST /${bucket}`)).map((n) => path.posix.basename(n)).sort(), ['other.txt', 'part.bin'], 'NLST lists it, and no record');
      const mlsd = (await ftp.list(`MLSD /${bucket}`)).map(parseFacts);
      const entry = mlsd.find((e) => e?.name === 'part.bin');
      t.equal(entry?.facts.type, 'file', 'MLSD: type=file');
      t.equal(entry?.facts.size, String(offset), 'MLSD: size is the offset');
      t.equal(entry?.facts['x.resumable'], '1', 'MLSD: x.resumable=1');
      t.equal(entry?.facts.perm, 'adw', 'MLSD: perm=adw');
      t.equal(mlsd.find((e) => e?.name === 'other.txt')?.facts['x.resumable'], undefined, 'a finished file has no x.resumable');
      t.equal(mlsd.length, 2, 'MLSD shows no record');
      const mlst = await ftp.send(`MLST /${bucket}/part.bin`);
      t.equal(mlst.code, 250, 'MLST answers 250');
      t.match(mlst.text, /x\.resumable=1/, 'MLST has x.resumable=1');

      const retr = await ftp.transfer(`RETR /${bucket}/part.bin`);
      t.equal(retr.first.code, 550, `RETR answers 550 (${retr.first.text})`);
      await ftp.expect(`REST ${offset + 1}`, 350);
      const wrong = await ftp.transfer(`STOR /${bucket}/part.bin`, { upload: body.subarray(offset + 1) });
      t.equal(wrong.first.code, 554, `REST ${offset + 1} + STOR answers 554 (${wrong.first.text})`);
      t.match(wrong.first.text, new RegExp(`\\b${offset}\\b`), 'the 554 names the offset');
      await ftp.expect(`REST ${offset - PART}`, 350);
      t.equal((await ftp.transfer(`STOR /${bucket}/part.bin`, { upload: body.subarray(offset - PART) })).first.code, 554, 'REST before the offset: 554 too');
      t.equal((await ftp.send(`SIZE /${bucket}/part.bin`)).text, `213 ${offset}`, 'the refused REST left the upload as it was');

      t.equal((await ftp.send(`DELE /${bucket}/part.bin`)).code, 250, 'DELE answers 250');
      t.equal((await ftp.send(`SIZE /${bucket}/part.bin`)).code, 550, 'then SIZE answers 550');
      t.same((await ftp.list(`NLST /${bucket}`)).map((n) => path.posix.basename(n)), ['other.txt'], 'and NLST no longer lists it');
      await assertClean(t, gw, bucket, 'DELE');
      t.equal((await gw.probe.get(bucket, 'other.txt'))?.toString(), 'a finished file', 'the other file is untouched');
    });

    await t.test('STOR without REST starts afresh: the new file, and the old upload is dropped', { skip }, async (t) => {
      const bucket = await newBucket(t, gw, 'resume-fresh');
      const old = randomBytes(3 * PART);
      const ftp = await session(t, gw);
      const sent = cutPoint(old.length);
      const cut = await cutUpload(ftp, `STOR /${bucket}/f.bin`, old.subarray(0, sent), 'rst');
      t.equal(cut.final.code, 426);
      t.equal((await ftp.send(`SIZE /${bucket}/f.bin`)).text, `213 ${kept(backend, sent)}`, 'a resumable upload');
      const fresh = randomBytes(PART + 12345);
      t.equal((await ftp.transfer(`STOR /${bucket}/f.bin`, { upload: fresh })).final?.code, 226, 'STOR without REST: 226');
      await storedWhole(t, gw, bucket, 'f.bin', fresh, 'fresh STOR');
      // Checked in the store only: a listing through the gateway would clean up on its own.
      await assertClean(t, gw, bucket, 'after the fresh STOR completed');
      t.equal((await ftp.send(`SIZE /${bucket}/f.bin`)).text, `213 ${fresh.length}`, 'SIZE is the new file');
    });

    await t.test('a fresh STOR that is itself cut replaces the older resumable upload', { skip }, async (t) => {
      const bucket = await newBucket(t, gw, 'resume-recut');
      const body = randomBytes(4 * PART);
      const ftp = await session(t, gw);
      t.equal((await cutUpload(ftp, `STOR /${bucket}/r.bin`, body.subarray(0, 3 * PART + 100), 'rst')).final.code, 426);
      t.equal((await ftp.send(`SIZE /${bucket}/r.bin`)).text, `213 ${kept(backend, 3 * PART + 100)}`, 'first attempt: 15 MiB and more');
      t.equal((await cutUpload(ftp, `STOR /${bucket}/r.bin`, body.subarray(0, PART + 100), 'rst')).final.code, 426);
      const second = kept(backend, PART + 100);
      t.equal((await ftp.send(`SIZE /${bucket}/r.bin`)).text, `213 ${second}`, 'second attempt (STOR without REST): 5 MiB and less');
      let open = openResumables(backend, await leftovers(gw, bucket));
      for (let i = 0; i < 40 && open > 1; i += 1) {
        await sleep(250);
        open = openResumables(backend, await leftovers(gw, bucket));
      }
      t.equal(open, 1, 'only the newer resumable upload is left');
      t.equal((await continueUpload(ftp, `/${bucket}/r.bin`, body, second)).code, 226, 'REST + STOR completes the newer one');
      await storedWhole(t, gw, bucket, 'r.bin', body, 'recut');
      await assertClean(t, gw, bucket, 'recut');
    });

    await t.test('two sessions race to continue the same upload: one 226, the other 450/451, never a mix', { skip }, async (t) => {
      const bucket = await newBucket(t, gw, 'resume-race');
      const first = randomBytes(2 * PART + MiB);
      const head = first.subarray(0, kept(backend, first.length));
      const a = await session(t, gw);
      const b = await session(t, gw);
      t.equal((await cutUpload(a, `STOR /${bucket}/race.bin`, first, 'rst')).final.code, 426);
      t.equal((await a.send(`SIZE /${bucket}/race.bin`)).text, `213 ${head.length}`);
      // Tails under one part: each session uploads one more part and completes, so exactly one can win.
      const tails = [randomBytes(2 * MiB + 17), randomBytes(3 * MiB + 29)];
      const race = async (ftp: RawFtp, tail: Buffer): Promise<number> => {
        await ftp.expect(`REST ${head.length}`, 350);
        const port = await ftp.epsv();
        const data = await ftp.openData(port);
        const first = await ftp.send(`STOR /${bucket}/race.bin`);
        if (first.code !== 150) {
          data.destroy();
          return first.code;
        }
        await writePaced(data, tail, { spreadOverMs: 2000, slices: 10 });
        return (await ftp.read(120_000)).code;
      };
      const codes = await Promise.all([race(a, tails[0] ?? Buffer.alloc(0)), race(b, tails[1] ?? Buffer.alloc(0))]);
      t.equal(codes.filter((c) => c === 226).length, 1, `exactly one session wins (${codes.join(', ')})`);
      t.ok(codes.every((c) => c === 226 || c === 450 || c === 451), `the other answers 450 or 451 (${codes.join(', ')})`);
      const winner = codes.indexOf(226);
      const stored = await gw.probe.get(bucket, 'race.bin');
      const full = tails.map((tail) => Buffer.concat([head, tail]));
      t.ok(stored !== undefined && full.some((f) => f.equals(stored)), `the object is one of the two files exactly (${stored?.length} bytes)`);
      if (winner >= 0) t.ok(stored?.equals(full[winner] ?? Buffer.alloc(0)), 'the winner\'s file');
      await assertClean(t, gw, bucket, 'race');
    });

    await t.test('fast-check: cut at a random point then continue always gives the original bytes', { skip }, async (t) => {
      const bucket = await newBucket(t, gw, 'resume-prop');
      const ftp = await session(t, gw);
      let runs = 0;
      const property = fc.asyncProperty(fc.integer({ min: 6 * MiB, max: 30 * MiB }), fc.double({ min: 0, max: 1, noNaN: true }), async (size, at) => {
        runs += 1;
        const key = `p${runs}.bin`;
        const body = randomBytes(size);
        const cut = Math.min(size - 1, Math.floor(size * at));
        const first = await cutUpload(ftp, `STOR /${bucket}/${key}`, body.subarray(0, cut), 'rst', 1000);
        if (first.final.code !== 426) throw new Error(`cut at ${cut} of ${size}: ${first.final.text}`);
        const size1 = await ftp.send(`SIZE /${bucket}/${key}`);
        const whole = kept(backend, cut);
        // Under one part nothing is stored: no resumable upload, SIZE 550, and the client starts afresh.
        const expected = whole === 0 ? '550' : `213 ${whole}`;
        if (!size1.text.startsWith(expected)) throw new Error(`cut at ${cut} of ${size}: SIZE ${size1.text}, expected ${expected}`);
        const offset = whole;
        const code = offset > 0 ? (await continueUpload(ftp, `/${bucket}/${key}`, body, offset)).code : await stor(ftp, `/${bucket}/${key}`, body);
        if (code !== 226) throw new Error(`continue at ${offset} of ${size}: ${code}`);
        const stored = await gw.probe.get(bucket, key);
        return stored?.equals(body) ?? false;
      });
      const failure = await fc.assert(property, { numRuns: 4 }).then(
        () => undefined,
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
      t.equal(failure, undefined, `${runs} random (size, cut) pairs continued into the original bytes`);
      await assertClean(t, gw, bucket, 'property');
    });

    // Not resume-specific: these hold on every backend (the old contract for overwrites).
    await t.test('uploads cut as their first part goes to S3 leave no unrecorded multipart upload', async (t) => {
      const bucket = await newBucket(t, gw, 'resume-early');
      const ftp = await session(t, gw);
      const body = randomBytes(PART + 2 * MiB);
      for (let i = 0; i < 6; i += 1) {
        // Closed (without close_notify; the kernel still delivers what was written) at once after
        // the first part filled: the gateway is cut while S3 is still creating the multipart upload.
        const overwrite = i % 2 === 0;
        const key = overwrite ? 'old.bin' : `new${i}.bin`;
        if (overwrite) await gw.probe.put(bucket, key, 'old');
        const cut = await cutUpload(ftp, `STOR /${bucket}/${key}`, body, 'destroy', 0);
        t.equal(cut.final.code, 426, `${key}: 426 (${cut.final.text})`);
      }
      t.equal((await gw.probe.get(bucket, 'old.bin'))?.toString(), 'old', 'the overwritten object is intact');
      const left = await settledLeftovers(gw, bucket, 3000);
      const recorded = left.records.filter((r) => r.startsWith(RECORD_PREFIX)).length;
      t.equal(left.uploads, recorded, `every open multipart upload is a recorded resumable one (${left.uploads} open, records: ${left.records.join(', ')})`);
    });

    await t.test('an interrupted overwrite leaves the old object intact and nothing else', async (t) => {
      const bucket = await newBucket(t, gw, 'resume-overwrite');
      const old = Buffer.from('the old object, which must survive');
      await gw.probe.put(bucket, 'o.bin', old);
      const ftp = await session(t, gw);
      const body = randomBytes(4 * PART);
      const cut = await cutUpload(ftp, `STOR /${bucket}/o.bin`, body.subarray(0, cutPoint(body.length)), 'rst');
      t.equal(cut.final.code, 426, `426 (${cut.final.text})`);
      t.ok((await gw.probe.get(bucket, 'o.bin'))?.equals(old), 'the old object is intact');
      t.equal((await ftp.send(`SIZE /${bucket}/o.bin`)).text, `213 ${old.length}`, 'SIZE is the old object\'s');
      await assertClean(t, gw, bucket, 'interrupted overwrite');
      await ftp.expect(`REST ${2 * PART}`, 350);
      t.equal((await ftp.transfer(`STOR /${bucket}/o.bin`, { upload: body.subarray(2 * PART) })).first.code, 554, 'and nothing to continue: REST + STOR 554');
      t.ok((await gw.probe.get(bucket, 'o.bin'))?.equals(old), 'still the old object');
    });
  });

  t.test(`--upload-resume off on ${backend}: the old behaviour`, async (t) => {
    const gw = await gatewayFor(t, backend, { extraArgs: [...GW_ARGS, '--upload-resume', 'off'] });
    const bucket = await newBucket(t, gw, 'resume-off');
    const ftp = await session(t, gw);
    const body = randomBytes(4 * PART);
    const cut = await cutUpload(ftp, `STOR /${bucket}/x.bin`, body.subarray(0, cutPoint(body.length)), 'rst');
    t.equal(cut.final.code, 426, `a cut upload answers 426 (${cut.final.text})`);
    await assertClean(t, gw, bucket, 'resume off');
    t.equal(await gw.probe.get(bucket, 'x.bin'), undefined, 'no object');
    t.equal((await ftp.send(`SIZE /${bucket}/x.bin`)).code, 550, 'SIZE 550');
    t.same(await ftp.list(`NLST /${bucket}`).catch(() => []), [], 'nothing listed');
    await ftp.expect(`REST ${2 * PART}`, 350);
    t.equal((await ftp.transfer(`STOR /${bucket}/x.bin`, { upload: body.subarray(2 * PART) })).first.code, 554, 'REST n + STOR answers 554');
    const appe = await ftp.transfer(`APPE /${bucket}/x.bin`, { upload: body });
    t.equal(appe.final?.code, 226, 'APPE of a missing file stores it as STOR');
    await storedWhole(t, gw, bucket, 'x.bin', body, 'APPE');
  });

  t.test(`resume across gateway instances on ${backend}`, { skip }, async (t) => {
    await t.test('a second gateway on the same store continues the upload', async (t) => {
      const one = await gatewayFor(t, backend, { extraArgs: GW_ARGS });
      const two = await gatewayFor(t, backend, { extraArgs: GW_ARGS, dataDir: one.dataDir });
      t.not(one.port, two.port, 'two gateways on different ports');
      const bucket = await newBucket(t, one, 'resume-second');
      const body = randomBytes(4 * PART + 999);
      const a = await session(t, one);
      const sent = cutPoint(body.length);
      t.equal((await cutUpload(a, `STOR /${bucket}/s.bin`, body.subarray(0, sent), 'fin')).final.code, 426);
      const b = await sessionAs(t, two, one);
      const offset = kept(backend, sent);
      t.equal((await b.send(`SIZE /${bucket}/s.bin`)).text, `213 ${offset}`, 'the second gateway sees the offset');
      t.equal((await continueUpload(b, `/${bucket}/s.bin`, body, offset)).code, 226, 'and completes it');
      await storedWhole(t, one, bucket, 's.bin', body, 'second gateway');
      t.equal((await a.send(`SIZE /${bucket}/s.bin`)).text, `213 ${body.length}`, 'the first gateway sees the finished object');
      await assertClean(t, one, bucket, 'second gateway');
    });

    await t.test('after a shutdown (SIGTERM, --drain-timeout 1) a restarted gateway continues the upload', async (t) => {
      const one = await gatewayFor(t, backend, { extraArgs: [...GW_ARGS, '--drain-timeout', '1'] });
      const bucket = await newBucket(t, one, 'resume-term');
      const body = randomBytes(5 * PART);
      const a = await RawFtp.login(one.host, one.port, one.user, one.password);
      t.teardown(() => a.destroy());
      const port = await a.epsv();
      const data = await a.openData(port);
      t.equal((await a.send(`STOR /${bucket}/t.bin`)).code, 150);
      const sending = writePaced(data, body, { spreadOverMs: 12_000, slices: 60, end: false });
      await sleep(4000);
      process.kill(one.pid, 'SIGTERM');
      t.equal(await one.exited, 0, 'the gateway drained and exited 0');
      data.destroy();
      await sending;
      const two = await gatewayFor(t, backend, { extraArgs: GW_ARGS, dataDir: one.dataDir });
      const b = await sessionAs(t, two, one);
      const offset = offsetOf(t, backend, await b.send(`SIZE /${bucket}/t.bin`), body.length, 'after shutdown');
      t.equal((await continueUpload(b, `/${bucket}/t.bin`, body, offset)).code, 226, `the restarted gateway continues at ${offset}`);
      await storedWhole(t, two, bucket, 't.bin', body, 'after shutdown');
      await assertClean(t, two, bucket, 'after shutdown');
    });

    await t.test('after a gateway crash (SIGKILL) a new gateway continues the upload', async (t) => {
      const one = await gatewayFor(t, backend, { extraArgs: GW_ARGS });
      const bucket = await newBucket(t, one, 'resume-kill');
      const body = randomBytes(4 * PART);
      const a = await RawFtp.login(one.host, one.port, one.user, one.password);
      t.teardown(() => a.destroy());
      const port = await a.epsv();
      const data = await a.openData(port);
      t.equal((await a.send(`STOR /${bucket}/k.bin`)).code, 150);
      const sent = 2 * PART + MiB;
      await writeAll(data, body.subarray(0, sent));
      await sleep(2000);
      process.kill(one.pid, 'SIGKILL');
      t.equal(await one.exited, null, 'the gateway was killed');
      data.destroy();
      const two = await gatewayFor(t, backend, { extraArgs: GW_ARGS, dataDir: one.dataDir });
      const b = await sessionAs(t, two, one);
      const size = await b.send(`SIZE /${bucket}/k.bin`);
      t.equal(size.text, `213 ${kept(backend, sent)}`, 'the new gateway sees what the killed one stored');
      if (size.code === 213) {
        t.equal((await continueUpload(b, `/${bucket}/k.bin`, body, kept(backend, sent))).code, 226, 'and continues the upload');
        await storedWhole(t, two, bucket, 'k.bin', body, 'after a crash');
      }
      await assertClean(t, two, bucket, 'after a crash');
    });
  });

  t.test(`--upload-resume-window 2 on ${backend}: an older resumable upload is removed when seen`, { skip }, async (t) => {
    const gw = await gatewayFor(t, backend, { extraArgs: [...GW_ARGS, '--upload-resume-window', '2'] });
    const bucket = await newBucket(t, gw, 'resume-window');
    const ftp = await session(t, gw);
    const body = randomBytes(3 * PART);
    t.equal((await cutUpload(ftp, `STOR /${bucket}/w.bin`, body.subarray(0, PART + 10), 'rst', 500)).final.code, 426);
    const fresh = await ftp.send(`SIZE /${bucket}/w.bin`);
    t.equal(fresh.text, `213 ${kept(backend, PART + 10)}`, 'resumable inside the window');
    t.equal(openResumables(backend, await leftovers(gw, bucket)), 1, 'it is open in the store');
    await sleep(3000);
    t.equal((await ftp.send(`SIZE /${bucket}/w.bin`)).code, 550, 'after the window SIZE answers 550');
    await assertClean(t, gw, bucket, 'after the window');
    await ftp.expect(`REST ${PART}`, 350);
    t.equal((await ftp.transfer(`STOR /${bucket}/w.bin`, { upload: body.subarray(PART) })).first.code, 554, 'and REST + STOR answers 554');
  });
}

const s3 = s3Env();
if (s3 && backends().includes('s3')) {
  t.test('multipart uploads of other S3 tools are never shown, counted, continued or aborted', async (t) => {
    const gw = await gatewayFor(t, 's3', { extraArgs: GW_ARGS });
    const bucket = await newBucket(t, gw, 'resume-foreign');
    const client = s3ClientFor(s3.accessKey, s3.secretKey);
    t.teardown(() => client.destroy());
    const shared = await foreignUpload(client, bucket, 'shared.bin');
    const only = await foreignUpload(client, bucket, 'foreign-only.bin');
    const foreign = [`${only.key} ${only.uploadId}`, `${shared.key} ${shared.uploadId}`].sort();
    const stillThere = async (label: string): Promise<void> => {
      const ids = await openUploadIds(client, bucket);
      t.ok(foreign.every((f) => ids.includes(f)), `${label}: both foreign uploads still open (${ids.length} open)`);
    };
    const ftp = await session(t, gw);
    t.same(await ftp.list(`NLST /${bucket}`).catch(() => []), [], 'NLST shows none of them');
    t.same(await ftp.list(`LIST /${bucket}`).catch(() => []), [], 'LIST shows none of them');
    t.same(await ftp.list(`MLSD /${bucket}`).catch(() => []), [], 'MLSD shows none of them');
    t.equal((await ftp.send(`SIZE /${bucket}/shared.bin`)).code, 550, 'SIZE does not count a foreign upload');
    t.equal((await ftp.send(`MDTM /${bucket}/foreign-only.bin`)).code, 550, 'MDTM neither');
    t.equal((await ftp.send(`DELE /${bucket}/foreign-only.bin`)).code, 550, 'DELE of a foreign upload\'s key: 550');
    await ftp.expect(`REST ${PART}`, 350);
    t.equal((await ftp.transfer(`STOR /${bucket}/shared.bin`, { upload: randomBytes(MiB) })).first.code, 554, 'REST + STOR cannot continue a foreign upload');
    const appe = await ftp.transfer(`APPE /${bucket}/foreign-only.bin`, { upload: Buffer.from('appended') });
    t.equal(appe.final?.code, 226, 'APPE of the key stores a new file, not a continuation');
    t.equal((await gw.probe.get(bucket, 'foreign-only.bin'))?.toString(), 'appended', 'with only the appended bytes');
    await stillThere('after listings, SIZE, DELE and APPE');

    const body = randomBytes(3 * PART);
    t.equal((await cutUpload(ftp, `STOR /${bucket}/shared.bin`, body.subarray(0, PART + 77), 'rst')).final.code, 426);
    t.equal((await ftp.send(`SIZE /${bucket}/shared.bin`)).text, `213 ${PART}`, 'the gateway\'s own resumable upload of the same key counts only its parts');
    t.equal((await ftp.send(`DELE /${bucket}/shared.bin`)).code, 250, 'DELE removes the gateway\'s own upload');
    await stillThere('after DELE of the gateway\'s upload of the same key');
    t.equal((await ftp.transfer(`STOR /${bucket}/shared.bin`, { upload: body })).final?.code, 226, 'a full upload of the key');
    await storedWhole(t, gw, bucket, 'shared.bin', body, 'foreign key');
    t.same((await ftp.list(`NLST /${bucket}`)).map((n) => path.posix.basename(n)).sort(), ['foreign-only.bin', 'shared.bin'], 'the listing shows the two objects only');
    await stillThere('after a successful upload of that key and a listing');
    t.same((await settledLeftovers(gw, bucket, 3000)).records, [], 'no record of the gateway\'s left');
    t.same(await openUploadIds(client, bucket), foreign, 'exactly the two foreign uploads are open');
  });
}
