// Real FTPS clients (curl, lftp, Python ftplib, basic-ftp) against the gateway on every backend;
// every outcome is checked in the store itself.
import t from 'tap';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import type { Test as TapTest, BuiltPlugins, TestOpts } from '@tapjs/test';
import { backends, type BackendName, type Gateway } from '../helpers/gateway.ts';
import { gatewayFor, newBucket } from '../helpers/ftp-steps.ts';
import { curl, curlBody, curlCode, describe, ftpUrl, ftplib, lftp, lftpQuote, rclone, type FtplibOutput } from '../helpers/clients.ts';

type Test = TapTest<BuiltPlugins, TestOpts> & BuiltPlugins;

const MiB = 1024 * 1024;

async function scratch(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-clients-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function same(t: Test, actual: Buffer | undefined, expected: Buffer, message: string): void {
  t.ok(actual !== undefined && actual.equals(expected), `${message} (${actual?.length ?? 'missing'} vs ${expected.length} bytes)`);
}

/** The reply code that ended an ftplib run: its exception's, or the one read after a broken data connection. */
function ftplibCode(output: FtplibOutput | undefined): number | undefined {
  const error = output?.error;
  if (!error) return undefined;
  const text = error.code !== null ? String(error.code) : (error.lastReply ?? '');
  return /^\d{3}/.test(text) ? Number(text.slice(0, 3)) : undefined;
}

async function curlClient(t: Test, gw: Gateway): Promise<void> {
  const bucket = await newBucket(t, gw, 'curl');
  const dir = await scratch(t);
  const small = randomBytes(3000 + randomInt(1000));
  const big = randomBytes(20 * MiB + 4321);
  await writeFile(path.join(dir, 'small.bin'), small);
  await writeFile(path.join(dir, 'big.bin'), big);

  for (const [name, body] of [['small.bin', small], ['big.bin', big]] as const) {
    const up = await curl(gw, ['-T', path.join(dir, name), ftpUrl(gw, `/${bucket}/${name}`)], { timeoutMs: 90_000 });
    t.equal(up.code, 0, `curl -T ${name}: ${describe(up)}`);
    t.equal(curlCode(up), 226, `226 after uploading ${name}`);
    same(t, await gw.probe.get(bucket, name), body, `${name} in the store equals what curl sent`);
  }
  t.equal(await gw.probe.openUploads(bucket), 0, 'no multipart upload left open');

  const down = await curl(gw, ['-o', path.join(dir, 'down.bin'), ftpUrl(gw, `/${bucket}/big.bin`)], { timeoutMs: 90_000 });
  t.equal(down.code, 0, `curl download: ${describe(down)}`);
  same(t, await readFile(path.join(dir, 'down.bin')), big, 'downloaded bytes equal');

  const partial = path.join(dir, 'partial.bin');
  await writeFile(partial, big.subarray(0, 7 * MiB + 11));
  const resumed = await curl(gw, ['-C', '-', '-o', partial, ftpUrl(gw, `/${bucket}/big.bin`)], { timeoutMs: 90_000 });
  t.equal(resumed.code, 0, `curl -C - download: ${describe(resumed)}`);
  same(t, await readFile(partial), big, 'the resumed download completes the partial file exactly');

  const listing = await curl(gw, [ftpUrl(gw, `/${bucket}/`)], { timeoutMs: 30_000 });
  t.equal(listing.code, 0, `curl LIST: ${describe(listing)}`);
  t.match(curlBody(listing), new RegExp(`^-rw-r--r-- +1 \\S+ +\\S+ +${small.length} .* small\\.bin\\r?$`, 'm'), 'LIST shows small.bin in ls -l form');
  t.match(curlBody(listing), new RegExp(`^-\\S+ .* ${big.length} .* big\\.bin\\r?$`, 'm'), 'LIST shows big.bin with its size');
  const names = await curl(gw, ['-l', ftpUrl(gw, `/${bucket}/`)], { timeoutMs: 30_000 });
  t.equal(names.code, 0, `curl -l (NLST): ${describe(names)}`);
  t.same(curlBody(names).split(/\r?\n/).filter(Boolean).sort(), ['big.bin', 'small.bin'], 'NLST gives the names only');

  const created = await curl(gw, ['--ftp-create-dirs', '-T', path.join(dir, 'small.bin'), ftpUrl(gw, `/${bucket}/made/deeper/n.bin`)], {
    timeoutMs: 30_000,
  });
  t.equal(created.code, 0, `curl --ftp-create-dirs: ${describe(created)}`);
  same(t, await gw.probe.get(bucket, 'made/deeper/n.bin'), small, 'upload into new directories lands at the full key');

  const renamed = await curl(gw, ['-Q', `RNFR /${bucket}/small.bin`, '-Q', `RNTO /${bucket}/renamed.bin`, ftpUrl(gw, `/${bucket}/`)], {
    timeoutMs: 30_000,
  });
  t.equal(renamed.code, 0, `curl -Q RNFR/RNTO: ${describe(renamed)}`);
  t.equal(await gw.probe.get(bucket, 'small.bin'), undefined, 'the old name is gone');
  same(t, await gw.probe.get(bucket, 'renamed.bin'), small, 'the new name holds the bytes');
  t.match(curlBody(renamed), /renamed\.bin/, 'the listing after the rename shows the new name');

  const deleted = await curl(gw, ['-l', '-Q', `DELE /${bucket}/renamed.bin`, ftpUrl(gw, `/${bucket}/`)], { timeoutMs: 30_000 });
  t.equal(deleted.code, 0, `curl -Q DELE: ${describe(deleted)}`);
  t.equal(await gw.probe.get(bucket, 'renamed.bin'), undefined, 'the deleted object is gone from the store');
  t.notOk(curlBody(deleted).split(/\r?\n/).includes('renamed.bin'), 'the listing after DELE no longer shows it');

  await writeFile(path.join(dir, 'empty.bin'), '');
  const empty = await curl(gw, ['-T', path.join(dir, 'empty.bin'), ftpUrl(gw, `/${bucket}/empty.bin`)], { timeoutMs: 30_000 });
  t.equal(empty.code, 0, `curl -T of an empty file: ${describe(empty)}`);
  same(t, await gw.probe.get(bucket, 'empty.bin'), Buffer.alloc(0), 'the empty file is stored as a 0-byte object');

  const missing = await curl(gw, ['-Q', `DELE /${bucket}/nothing-here`, ftpUrl(gw, `/${bucket}/`)], { timeoutMs: 30_000 });
  t.equal(missing.code, 21, 'curl reports the failed quote command (exit 21)');
  t.match(missing.stderr, /550/, 'DELE of a missing file answers 550');
}

/**
 * curl on TLS 1.2 resumes by session id only (it turns tickets off), so the data connections need
 * the control connection's session kept by the server; two URLs in one run reuse one control
 * connection for two data connections.
 */
async function curlTls12(t: Test, gw: Gateway): Promise<void> {
  const bucket = await newBucket(t, gw, 'curl12');
  const dir = await scratch(t);
  const body = randomBytes(5 * MiB + 99);
  await writeFile(path.join(dir, 'up.bin'), body);
  const tls12 = ['--tls-max', '1.2'];
  const up = await curl(gw, [...tls12, '-T', path.join(dir, 'up.bin'), ftpUrl(gw, `/${bucket}/up.bin`)], { timeoutMs: 60_000 });
  t.equal(up.code, 0, `curl --tls-max 1.2 -T: ${describe(up)}`);
  same(t, await gw.probe.get(bucket, 'up.bin'), body, 'the store holds what curl sent over TLS 1.2');
  const down = await curl(gw, [...tls12, '-o', path.join(dir, 'down.bin'), ftpUrl(gw, `/${bucket}/up.bin`)], { timeoutMs: 60_000 });
  t.equal(down.code, 0, `curl --tls-max 1.2 download: ${describe(down)}`);
  same(t, await readFile(path.join(dir, 'down.bin')).catch(() => undefined), body, 'the download over TLS 1.2 equals');
  const twice = await curl(gw, [...tls12, '-v', ftpUrl(gw, `/${bucket}/`), ftpUrl(gw, `/${bucket}/`)], { timeoutMs: 30_000 });
  t.equal(twice.code, 0, `two listings in one curl run: ${describe(twice)}`);
  t.equal(curlBody(twice).split(/\r?\n/).filter((line) => line.endsWith(' up.bin')).length, 2, 'both listings show the file');
  t.match(twice.stderr, /SSL connection using TLSv1\.2/, 'the connection used TLS 1.2');
  const names = ['m1.txt', 'm2.txt', 'm3.txt'];
  for (const name of names) await writeFile(path.join(dir, name), `${name}\n`);
  const several = await curl(gw, [...tls12, '--ftp-create-dirs', '-T', `{${names.join(',')}}`, ftpUrl(gw, `/${bucket}/multi/`)], { timeoutMs: 30_000, cwd: dir });
  t.equal(several.code, 0, `curl -T '{m1,m2,m3}' in one run: ${describe(several)}`);
  for (const name of names) t.equal((await gw.probe.get(bucket, `multi/${name}`))?.toString(), `${name}\n`, `${name} arrived`);
}

/** Many small uploads, one curl per file (TLS 1.3, resumed session): each 226 must mean the whole file. */
async function curlManySmall(t: Test, gw: Gateway): Promise<void> {
  const bucket = await newBucket(t, gw, 'curl-many');
  const dir = await scratch(t);
  const COUNT = 50;
  const deadline = Date.now() + 150_000;
  const failures: string[] = [];
  let done = 0;
  for (let i = 0; i < COUNT && Date.now() < deadline; i += 1) {
    const body = randomBytes(randomInt(1024, 64 * 1024 + 1));
    const file = path.join(dir, `f${i}.bin`);
    await writeFile(file, body);
    const up = await curl(gw, ['-T', file, ftpUrl(gw, `/${bucket}/f${i}.bin`)], { timeoutMs: 20_000 });
    const stored = await gw.probe.get(bucket, `f${i}.bin`);
    if (up.code !== 0 || curlCode(up) !== 226) failures.push(`f${i} (${body.length} B): ${describe(up)}`);
    else if (!stored?.equals(body)) failures.push(`f${i}: 226 but the store holds ${stored?.length ?? 'nothing'} of ${body.length} bytes`);
    done += 1;
  }
  t.equal(done, COUNT, `all ${COUNT} uploads ran within the time bound`);
  t.same(failures, [], 'every upload answered 226 with the whole file in the store');
  t.equal(await gw.probe.openUploads(bucket), 0, 'no upload left open');
}

async function lftpClient(t: Test, gw: Gateway): Promise<void> {
  const bucket = await newBucket(t, gw, 'lftp');
  const dir = await scratch(t);
  const local = (name: string): string => lftpQuote(path.join(dir, name));
  const body = randomBytes(150_000);
  await writeFile(path.join(dir, 'a.bin'), body);
  // lftp waits for the 150 reply (ftp:waiting-150-timeout, 5 s) before it starts TLS on the data
  // connection. The functional checks below do not wait; the latency test checks the default.
  const extra = ['set ftp:waiting-150-timeout 0'];
  const lf = (commands: string[]): ReturnType<typeof lftp> => lftp(gw, [`cd /${bucket}`, ...commands], { timeoutMs: 60_000, extra });

  const first = await lf(['put ' + local('a.bin') + ' -o la.bin', 'get la.bin -o ' + local('lget.bin'), 'echo ==ls', 'ls', 'echo ==cls', 'cls -1', 'echo ==nlist', 'nlist']);
  t.equal(first.code, 0, `lftp put/get/ls: ${describe(first)}`);
  same(t, await gw.probe.get(bucket, 'la.bin'), body, 'put: the store holds the bytes');
  same(t, await readFile(path.join(dir, 'lget.bin')).catch(() => undefined), body, 'get: the local copy equals');
  const [, ls = '', cls = '', nlist = ''] = first.stdout.split(/==ls\n|==cls\n|==nlist\n/);
  t.match(ls, new RegExp(`^-rw-r--r-- .* ${body.length} .* la\\.bin$`, 'm'), 'ls shows the file in ls -l form');
  t.same(cls.trim().split('\n'), ['la.bin'], 'cls -1 shows the name');
  t.same(nlist.trim().split('\n'), ['la.bin'], 'nlist shows the name');

  await writeFile(path.join(dir, 'empty.txt'), '');
  const empty = await lf(['put ' + local('empty.txt') + ' -o empty.txt']);
  t.equal(empty.code, 0, `lftp put of an empty file: ${describe(empty)}`);
  same(t, await gw.probe.get(bucket, 'empty.txt'), Buffer.alloc(0), 'the empty file is stored as a 0-byte object');

  const moved = await lf(['mkdir ldir', 'mv la.bin ldir/lb.bin', 'echo ==cls', 'cls -1 ldir']);
  t.equal(moved.code, 0, `lftp mkdir/mv: ${describe(moved)}`);
  t.equal(await gw.probe.get(bucket, 'la.bin'), undefined, 'mv: the old key is gone');
  same(t, await gw.probe.get(bucket, 'ldir/lb.bin'), body, 'mv: the new key holds the bytes');
  t.match(moved.stdout, /lb\.bin/, 'the moved file is listed in its directory');

  const removed = await lf(['rm ldir/lb.bin', 'rmdir ldir', 'echo ==cls', 'cls -1']);
  t.equal(removed.code, 0, `lftp rm/rmdir: ${describe(removed)}`);
  t.same(await gw.probe.keys(bucket, 'ldir'), [], 'rm and rmdir leave nothing under ldir');
  t.notMatch(removed.stdout.split('==cls')[1] ?? '', /ldir/, 'the directory is no longer listed');

  const tree: Array<[string, Buffer]> = [
    ['top.bin', randomBytes(5000)],
    ['sub/s.bin', randomBytes(70_000)],
    ['sub/deeper/d.txt', Buffer.from('hello, deep\n')],
    ['ünï cödé/fïle €.bin', randomBytes(1234)],
    ['ünï cödé/日本語/空.txt', Buffer.alloc(0)],
  ];
  for (const [name, data] of tree) {
    await mkdir(path.dirname(path.join(dir, 'tree', name)), { recursive: true });
    await writeFile(path.join(dir, 'tree', name), data);
  }
  const up = await lf([`mirror -R ${local('tree')} rtree`]);
  t.equal(up.code, 0, `lftp mirror -R: ${describe(up)}`);
  for (const [name, data] of tree) same(t, await gw.probe.get(bucket, `rtree/${name}`), data, `mirror -R stored rtree/${name}`);
  const back = await lf([`mirror rtree ${local('back')}`]);
  t.equal(back.code, 0, `lftp mirror: ${describe(back)}`);
  for (const [name, data] of tree) {
    same(t, await readFile(path.join(dir, 'back', name)).catch(() => undefined), data, `mirror brought back ${name}`);
  }
  t.equal(await gw.probe.openUploads(bucket), 0, 'no upload left open');
}

/** lftp with its default settings: it sends STOR, then waits up to 5 s for 150 before starting TLS. */
async function lftpLatency(t: Test, gw: Gateway): Promise<void> {
  const bucket = await newBucket(t, gw, 'lftp-wait');
  const dir = await scratch(t);
  const body = randomBytes(10_000);
  await writeFile(path.join(dir, 'w.bin'), body);
  const put = await lftp(gw, [`cd /${bucket}`, `put ${lftpQuote(path.join(dir, 'w.bin'))} -o w.bin`], { timeoutMs: 30_000 });
  t.equal(put.code, 0, `lftp put with default settings: ${describe(put)}`);
  same(t, await gw.probe.get(bucket, 'w.bin'), body, 'the upload arrived');
  t.ok(put.ms < 4000, `one small put takes well under lftp's 5 s wait for 150 (took ${put.ms} ms): the gateway must send 150 without waiting for the data TLS handshake`);
}

async function ftplibClient(t: Test, gw: Gateway): Promise<void> {
  const bucket = await newBucket(t, gw, 'ftplib');
  const dir = await scratch(t);
  const body = randomBytes(300 * 1024 + 7);
  const offset = 100_000;
  await writeFile(path.join(dir, 'up.bin'), body);
  await writeFile(path.join(dir, 'resumed.bin'), body.subarray(0, offset));
  const { run, output } = await ftplib(
    gw,
    [
      { op: 'stor', path: `/${bucket}/py/data.bin`, file: path.join(dir, 'up.bin') },
      { op: 'size', path: `/${bucket}/py/data.bin` },
      { op: 'retr', path: `/${bucket}/py/data.bin`, file: path.join(dir, 'down.bin') },
      { op: 'mlsd', path: `/${bucket}/py` },
      { op: 'nlst', path: `/${bucket}/py` },
      { op: 'retr', path: `/${bucket}/py/data.bin`, file: path.join(dir, 'resumed.bin'), rest: offset },
    ],
    { timeoutMs: 60_000 },
  );
  t.ok(output?.ok, `ftplib (resuming the session) runs every step: ${JSON.stringify(output?.error)} ${describe(run)}`);
  const results = output?.results ?? [];
  t.match(results[0]?.reply ?? '', /^226/, 'storbinary ends with 226');
  same(t, await gw.probe.get(bucket, 'py/data.bin'), body, 'storbinary: the store holds the bytes');
  t.equal(results[1]?.size, body.length, 'SIZE reports the stored size');
  same(t, await readFile(path.join(dir, 'down.bin')).catch(() => undefined), body, 'retrbinary: downloaded bytes equal');
  const facts = results[3]?.entries?.find(([name]) => name === 'data.bin')?.[1];
  t.equal(facts?.type, 'file', 'MLSD lists data.bin as a file');
  t.equal(facts?.size, String(body.length), 'MLSD gives its size');
  t.match(facts?.modify ?? '', /^\d{14}$/, 'MLSD gives modify as YYYYMMDDHHMMSS');
  t.same((results[4]?.names ?? []).map((n) => n.split('/').pop()), ['data.bin'], 'NLST lists the file');
  same(t, await readFile(path.join(dir, 'resumed.bin')), body, 'REST + retrbinary completes the partial file');

  const refused = await ftplib(gw, [{ op: 'stor', path: `/${bucket}/py/refused.bin`, file: path.join(dir, 'up.bin') }], {
    timeoutMs: 40_000,
    reuse: false,
  });
  t.equal(refused.output?.ok, false, `an unmodified FTP_TLS is refused: ${describe(refused.run)}`);
  t.equal(ftplibCode(refused.output), 522, `the refusal is 522: ${JSON.stringify(refused.output?.error)}`);
  t.equal(await gw.probe.get(bucket, 'py/refused.bin'), undefined, 'nothing was stored for the refused upload');
  t.equal(await gw.probe.openUploads(bucket), 0, 'no upload left open');
}

async function ftplibOptionalReuse(t: Test, backend: BackendName): Promise<void> {
  const gw = await gatewayFor(t, backend, { extraArgs: ['--tls-session-reuse', 'optional'] });
  const bucket = await newBucket(t, gw, 'ftplib-opt');
  const dir = await scratch(t);
  const body = randomBytes(64 * 1024 + 3);
  await writeFile(path.join(dir, 'up.bin'), body);
  const { run, output } = await ftplib(
    gw,
    [
      { op: 'stor', path: `/${bucket}/plain.bin`, file: path.join(dir, 'up.bin') },
      { op: 'retr', path: `/${bucket}/plain.bin`, file: path.join(dir, 'down.bin') },
      { op: 'nlst', path: `/${bucket}` },
    ],
    { timeoutMs: 60_000, reuse: false },
  );
  t.ok(output?.ok, `an unmodified FTP_TLS works with --tls-session-reuse optional: ${JSON.stringify(output?.error)} ${describe(run)}`);
  same(t, await gw.probe.get(bucket, 'plain.bin'), body, 'the store holds the bytes');
  same(t, await readFile(path.join(dir, 'down.bin')).catch(() => undefined), body, 'the download equals');
  t.same(output?.results[2]?.names?.map((n) => n.split('/').pop()), ['plain.bin'], 'NLST lists the file');
}

/**
 * rclone shares one TLS session cache among its parallel control connections, so a data connection
 * often resumes a session that another of its control connections made: it needs
 * --tls-session-reuse address (the default, required, answers 522 to such data connections).
 */
async function rcloneClient(t: Test, backend: BackendName): Promise<void> {
  const gw = await gatewayFor(t, backend, { extraArgs: ['--tls-session-reuse', 'address'] });
  const bucket = await newBucket(t, gw, 'rclone');
  const dir = await scratch(t);
  const files: Array<[string, Buffer]> = [
    ['a.bin', randomBytes(3 * MiB + 17)],
    ['sub/b.txt', Buffer.from('hello from rclone\n')],
    ['sub/ü €.bin', randomBytes(100)],
    ...Array.from({ length: 12 }, (_, i): [string, Buffer] => [`many/f${i}.bin`, randomBytes(randomInt(1, 40_000))]),
  ];
  for (const [name, body] of files) {
    await mkdir(path.dirname(path.join(dir, 'src', name)), { recursive: true });
    await writeFile(path.join(dir, 'src', name), body);
  }
  const rc = (args: string[]): ReturnType<typeof rclone> => rclone(gw, args, { timeoutMs: 90_000 });

  const copied = await rc(['copy', path.join(dir, 'src'), `:ftp:${bucket}/dir`]);
  t.equal(copied.code, 0, `rclone copy (4 transfers, 8 checkers in parallel): ${describe(copied)}`);
  for (const [name, body] of files) same(t, await gw.probe.get(bucket, `dir/${name}`), body, `rclone copy stored dir/${name}`);

  const checked = await rc(['check', '--download', path.join(dir, 'src'), `:ftp:${bucket}/dir`]);
  t.equal(checked.code, 0, `rclone check --download: ${describe(checked)}`);
  t.match(checked.stderr, /: 0 differences found/, 'rclone check finds no difference');
  t.match(checked.stderr, new RegExp(`: ${files.length} matching files`), 'every file matches byte for byte');

  const moved = await rc(['moveto', `:ftp:${bucket}/dir/a.bin`, `:ftp:${bucket}/moved/a2.bin`]);
  t.equal(moved.code, 0, `rclone moveto: ${describe(moved)}`);
  t.equal(await gw.probe.get(bucket, 'dir/a.bin'), undefined, 'moveto: the old key is gone');
  same(t, await gw.probe.get(bucket, 'moved/a2.bin'), files[0]?.[1] ?? Buffer.alloc(0), 'moveto: the new key holds the bytes');

  const listed = await rc(['lsf', '-R', `:ftp:${bucket}`]);
  t.equal(listed.code, 0, `rclone lsf -R: ${describe(listed)}`);
  t.ok(listed.stdout.split('\n').includes('dir/sub/ü €.bin'), 'lsf -R lists the UTF-8 name');
  t.ok(listed.stdout.split('\n').includes('moved/a2.bin'), 'lsf -R lists the moved file');

  const back = await rc(['copy', `:ftp:${bucket}`, path.join(dir, 'back')]);
  t.equal(back.code, 0, `rclone copy back: ${describe(back)}`);
  for (const [name, body] of files.slice(1)) {
    same(t, await readFile(path.join(dir, 'back', 'dir', name)).catch(() => undefined), body, `copied back dir/${name}`);
  }

  const purged = await rc(['purge', `:ftp:${bucket}/dir`]);
  t.equal(purged.code, 0, `rclone purge: ${describe(purged)}`);
  t.same(await gw.probe.keys(bucket, 'dir'), [], 'purge removes everything under dir');
  t.equal(await gw.probe.openUploads(bucket), 0, 'no upload left open');
  t.notMatch(gw.logs(), /"code":522/, 'no data connection was refused for its TLS session');
}

async function basicFtpClient(t: Test, gw: Gateway): Promise<void> {
  const bucket = await newBucket(t, gw, 'basicftp');
  const client = new Client(30_000);
  t.teardown(() => client.close());
  await client.access({ host: gw.host, port: gw.port, user: gw.user, password: gw.password, secure: true, secureOptions: { rejectUnauthorized: false } });
  await client.ensureDir(`/${bucket}/bf/nested`);
  t.equal(await client.pwd(), `/${bucket}/bf/nested`, 'ensureDir leaves the client in the new directory');
  t.ok((await gw.probe.keys(bucket)).includes('bf/nested/'), 'ensureDir made the directory in the store');

  const body = randomBytes(2 * MiB + 1);
  const up = await client.uploadFrom(Readable.from([body.subarray(0, MiB), body.subarray(MiB)]), 'up.bin');
  t.equal(up.code, 226, 'uploadFrom ends with 226');
  same(t, await gw.probe.get(bucket, 'bf/nested/up.bin'), body, 'uploadFrom: the store holds the bytes');

  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  const down = await client.downloadTo(sink, 'up.bin');
  t.equal(down.code, 226, 'downloadTo ends with 226');
  same(t, Buffer.concat(chunks), body, 'downloadTo: bytes equal');

  const entries = await client.list();
  t.same(entries.map((e) => [e.name, e.size, e.isFile]), [['up.bin', body.length, true]], 'list shows the file with its size');
  t.same((await client.list(`/${bucket}/bf`)).map((e) => [e.name, e.isDirectory]), [['nested', true]], 'list shows the directory');

  await client.rename('up.bin', 'moved.bin');
  t.equal(await gw.probe.get(bucket, 'bf/nested/up.bin'), undefined, 'rename: the old key is gone');
  same(t, await gw.probe.get(bucket, 'bf/nested/moved.bin'), body, 'rename: the new key holds the bytes');

  await client.remove('moved.bin');
  t.equal(await gw.probe.get(bucket, 'bf/nested/moved.bin'), undefined, 'remove deletes the object');

  await client.uploadFrom(Readable.from([Buffer.from('x')]), 'again.bin');
  await client.removeDir(`/${bucket}/bf`);
  t.same(await gw.probe.keys(bucket, 'bf'), [], 'removeDir removes the files and directories under bf');
  t.equal(await gw.probe.openUploads(bucket), 0, 'no upload left open');
}

for (const backend of backends()) {
  t.test(`real FTPS clients on ${backend}`, async (t) => {
    const gw = await gatewayFor(t, backend);
    await t.test('curl: upload, download, resume, list, names, create dirs, rename, delete', (t) => curlClient(t, gw));
    await t.test('curl: 50 small uploads each arrive whole', (t) => curlManySmall(t, gw));
    await t.test('curl on TLS 1.2 (session ids, no tickets): upload, download, two listings in one run', (t) => curlTls12(t, gw));
    await t.test('lftp: put, get, ls, cls, nlist, mkdir, mv, rm, rmdir, mirror both ways', (t) => lftpClient(t, gw));
    await t.test('lftp: a transfer does not stall on the wait for 150', (t) => lftpLatency(t, gw));
    await t.test('Python ftplib: session-resuming FTP_TLS works; an unmodified one gets 522', (t) => ftplibClient(t, gw));
    await t.test('Python ftplib: an unmodified FTP_TLS works with --tls-session-reuse optional', (t) => ftplibOptionalReuse(t, backend));
    await t.test('basic-ftp: ensureDir, uploadFrom, downloadTo, list, rename, remove, removeDir', (t) => basicFtpClient(t, gw));
    await t.test('rclone: copy, check --download, moveto, lsf, copy back, purge (--tls-session-reuse address)', (t) => rcloneClient(t, backend));
  });
}
