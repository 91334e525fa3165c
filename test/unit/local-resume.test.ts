// The embedded store's partial files: what the sweeper removes (older than the window, anywhere
// in the store) and what it keeps.
import t from 'tap';
import { mkdtemp, mkdir, writeFile, utimes, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { sweepExpiredPartials, partialPoint } from '../../src/storage/local-resume.ts';

t.test('partial files older than the window go, wherever they are; the rest stay', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-partials-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'box', 'deep', 'er'), { recursive: true });
  const now = Date.now();
  const hourAgo = new Date(now - 3600_000);
  // [file, modified an hour ago, kept by a 10-minute window]
  const cases: Array<[string, boolean, boolean]> = [
    ['box/.s3ftpd-partial-old.bin', true, false],
    ['box/deep/er/.s3ftpd-partial-old-deep.bin', true, false],
    ['box/.s3ftpd-partial-fresh.bin', false, true],
    ['box/old-but-ordinary.bin', true, true],
  ];
  for (const [file, old] of cases) {
    await writeFile(path.join(dir, file), 'x');
    if (old) await utimes(path.join(dir, file), hourAgo, hourAgo);
  }
  const removed = await sweepExpiredPartials(dir, 600_000, now);
  t.equal(removed, 2);
  const left = new Set((await readdir(dir, { recursive: true })).map((n) => n.split(path.sep).join('/')));
  for (const [file, , kept] of cases) t.equal(left.has(file), kept, `${file} ${kept ? 'kept' : 'removed'}`);
});

t.test('a partial file is the resume point of its file: offset = its size, expired = none', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-partials-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, '.s3ftpd-partial-a.bin'), Buffer.alloc(1234));
  const point = await partialPoint(path.join(dir, 'a.bin'), 600_000, Date.now());
  t.equal(point?.offset, 1234);
  t.same(point?.continuation, { kind: 'partial-file', size: 1234 });
  t.equal(await partialPoint(path.join(dir, 'a.bin'), 600_000, Date.now() + 3600_000), undefined, 'past the window: gone');
  t.same(await readdir(dir), [], 'and removed');
});
