// The upload part buffers: the shared budget binds across acquirers, a waiter gets the next
// released buffer, a cancelled waiter stops waiting, and the part size grows every 900 parts.
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBudgetShare, PartBuffers } from '../../src/storage/part-buffers.ts';
import { partSizeFor, MAX_PARTS } from '../../src/storage/s3-upload.ts';

const MiB = 1024 * 1024;

t.test('part size: base for 900 parts, then doubling, capped at 5 GiB', async (t) => {
  const cases: Array<[partNumber: number, base: number, expected: number]> = [
    [1, 8 * MiB, 8 * MiB],
    [900, 8 * MiB, 8 * MiB],
    [901, 8 * MiB, 16 * MiB],
    [1801, 8 * MiB, 32 * MiB],
    [MAX_PARTS, 5 * MiB, 5 * 1024 * MiB],
    [MAX_PARTS, 64 * MiB, 5 * 1024 * MiB],
  ];
  for (const [partNumber, base, expected] of cases) t.equal(partSizeFor(partNumber, base), expected, `part ${partNumber} of base ${base / MiB} MiB`);
  let total = 0;
  for (let n = 1; n <= MAX_PARTS; n += 1) total += partSizeFor(n, 5 * MiB);
  t.ok(total >= 5 * 1024 ** 4, `10,000 parts from a 5 MiB base reach 5 TiB (${(total / 1024 ** 4).toFixed(1)} TiB)`);
});

t.test('the budget makes a third part wait until one is released', async (t) => {
  const buffers = new PartBuffers(createBudgetShare(12 * MiB));
  const signal = new AbortController().signal;
  const first = await buffers.acquire(5 * MiB, signal);
  const second = await buffers.acquire(5 * MiB, signal);
  t.equal(buffers.usedBytes, 10 * MiB);
  let third: Buffer | undefined;
  const waiting = buffers.acquire(5 * MiB, signal).then((b) => (third = b));
  await sleep(100);
  t.equal(third, undefined, 'still waiting while 10 of 12 MiB are in use');
  buffers.release(first);
  await waiting;
  t.equal(third, first, 'the released buffer is reused, not a new one');
  t.equal(buffers.usedBytes, 10 * MiB, 'reuse keeps the count');
  buffers.release(second);
  buffers.release(third ?? second);
});

t.test('a cancelled waiter stops waiting; a part larger than the budget is granted when alone', async (t) => {
  const buffers = new PartBuffers(createBudgetShare(6 * MiB));
  const held = await buffers.acquire(5 * MiB, new AbortController().signal);
  const cancel = new AbortController();
  const waiting = buffers.acquire(5 * MiB + 1, cancel.signal);
  setTimeout(() => cancel.abort(), 50);
  await t.rejects(waiting, { name: 'AbortError' }, 'the cancelled acquire rejects');
  buffers.release(held);
  const big = await buffers.acquire(8 * MiB, new AbortController().signal);
  t.equal(big.length, 8 * MiB, 'granted: the idle 5 MiB buffer was given back first');
  t.equal(buffers.usedBytes, 8 * MiB);
});

t.test('the budget is shared with another thread', async (t) => {
  const share = createBudgetShare(10 * MiB);
  const here = new PartBuffers(share);
  const mine = await here.acquire(6 * MiB, new AbortController().signal);
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const counters = new Int32Array(workerData.counters);
    // The other thread sees our reservation in the shared count (KiB).
    parentPort.postMessage(Atomics.load(counters, 0));
  `;
  const worker = new Worker(code, { eval: true, workerData: share });
  const [seenKib] = (await once(worker, 'message')) as [number];
  t.equal(seenKib * 1024, 6 * MiB, 'another thread sees the 6 MiB reserved here');
  await worker.terminate();
  const other = new PartBuffers(share);
  let granted = false;
  const waiting = other.acquire(6 * MiB, new AbortController().signal).then(() => (granted = true));
  await sleep(100);
  t.notOk(granted, 'a second PartBuffers on the same share waits');
  here.release(mine);
  // An idle buffer stays with its thread for reuse and goes back to the shared budget after 5 s.
  // The budget's own timers do not hold the process open (in the gateway, sockets do).
  const keepAlive = setTimeout(() => undefined, 10_000);
  t.teardown(() => clearTimeout(keepAlive));
  await sleep(500);
  t.notOk(granted, 'not yet: the released buffer is kept for reuse in its own thread');
  await waiting;
  t.ok(granted, 'granted once the idle buffer was given back');
});
