// The driver cache: one driver per target while it is in use, bounded in count (least recently
// used goes first) and in idle time, so a gateway that sees many keys does not keep them all.
import t from 'tap';
import { driverFor, cachedDriverCount, closeAllDrivers, MAX_CACHED_DRIVERS, DRIVER_IDLE_MS } from '../../src/storage/index.ts';
import type { StorageTarget } from '../../src/storage/driver.ts';

const local = (n: number): StorageTarget => ({ kind: 'local', dataDir: `/nonexistent/driver-cache-${n}`, resumeWindowMs: undefined });

t.beforeEach(() => closeAllDrivers());

t.test('the same target gets the same driver; another target another one', async (t) => {
  const a = driverFor(local(1), 0);
  t.equal(driverFor(local(1), 1000), a);
  t.not(driverFor(local(2), 1000), a);
  t.equal(cachedDriverCount(), 2);
});

t.test('past the bound, the least recently used driver is forgotten, not the one just used', async (t) => {
  const first = driverFor(local(0), 0);
  const second = driverFor(local(1), 0);
  for (let n = 2; n < MAX_CACHED_DRIVERS; n += 1) driverFor(local(n), 0);
  t.equal(cachedDriverCount(), MAX_CACHED_DRIVERS);
  t.equal(driverFor(local(0), 1), first, 'using the oldest makes it the newest');
  driverFor(local(MAX_CACHED_DRIVERS), 2);
  t.equal(cachedDriverCount(), MAX_CACHED_DRIVERS, 'the count stays at the bound');
  t.equal(driverFor(local(0), 3), first, 'the recently used one is kept');
  t.equal(cachedDriverCount(), MAX_CACHED_DRIVERS);
  t.not(driverFor(local(1), 4), second, 'the least recently used one was forgotten: a new driver');
});

t.test('drivers idle for longer than the limit are forgotten at the next use of any driver', async (t) => {
  const cases: Array<[idleMs: number, kept: boolean]> = [
    [0, true],
    [DRIVER_IDLE_MS, true],
    [DRIVER_IDLE_MS + 1, false],
  ];
  for (const [idleMs, kept] of cases) {
    closeAllDrivers();
    const old = driverFor(local(1), 0);
    driverFor(local(2), idleMs);
    t.equal(cachedDriverCount(), kept ? 2 : 1, `idle ${idleMs} ms: ${kept ? 'kept' : 'forgotten'}`);
    t.equal(driverFor(local(1), idleMs) === old, kept);
  }
});
