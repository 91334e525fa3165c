// Part buffers from native/ (huge-page mappings): exactly the size asked, writable end to end,
// separate from each other; PartBuffers hands them out and reuses them.
import t from 'tap';
import { nativeAddon, nativeAddonProblem } from '../../src/native.ts';
import { PartBuffers } from '../../src/storage/part-buffers.ts';

t.test('allocateHugeBuffer', async (t) => {
  if (!nativeAddon) return t.fail(`native addon not built: ${nativeAddonProblem ?? ''}`);
  const cases = [1, 4096, 5 * 1024 * 1024 + 3, 8 * 1024 * 1024];
  const buffers = cases.map((size) => nativeAddon?.allocateHugeBuffer(size));
  cases.forEach((size, i) => {
    const buffer = buffers[i];
    t.ok(Buffer.isBuffer(buffer), `${size}: a Buffer`);
    if (!buffer) return;
    t.equal(buffer.length, size, `${size}: exact length`);
    buffer.fill(i + 1);
    t.equal(buffer[0], i + 1);
    t.equal(buffer[size - 1], i + 1, `${size}: last byte writable`);
  });
  t.equal(buffers[2]?.[0], 3, 'buffers do not overlap');
  t.equal(nativeAddon.allocateHugeBuffer(0), null, 'nothing for size 0');
});

t.test('PartBuffers: parts of the size asked, reused after release', async (t) => {
  const buffers = new PartBuffers(undefined);
  const signal = new AbortController().signal;
  const part = await buffers.acquire(8 * 1024 * 1024, signal);
  t.equal(part.length, 8 * 1024 * 1024);
  part.fill(7);
  buffers.release(part);
  t.equal(await buffers.acquire(8 * 1024 * 1024, signal), part, 'the released buffer comes back');
});
