import t from 'tap';
import { FailedLoginGuard, type LoginGuardOptions } from '../../src/control/login-guard.ts';

function guardAt(overrides: Partial<LoginGuardOptions> = {}): { guard: FailedLoginGuard; clock: { now: number }; bans: string[] } {
  const clock = { now: 1_000_000 };
  const bans: string[] = [];
  const guard = new FailedLoginGuard({
    maxFailures: 3,
    banMs: 60_000,
    delayStepMs: 500,
    allowList: ['10.0.0.9'],
    now: () => clock.now,
    onBan: (address) => bans.push(address),
    ...overrides,
  });
  return { guard, clock, bans };
}

t.test('failures ban only when they come within the window', async (t) => {
  // [case, milliseconds after the first failure of each further failure, banned after the last]
  const cases: Array<[string, number[], boolean]> = [
    ['three quick failures', [0, 1_000, 2_000], true],
    ['three failures inside the window (60 s)', [0, 30_000, 59_000], true],
    ['typos weeks apart', [0, 14 * 86_400_000, 28 * 86_400_000], false],
    ['each failure just past the window of the one before', [0, 60_001, 120_002], false],
    ['an old failure, then two fresh ones', [0, 90_000, 91_000], false],
    ['an old failure, then three fresh ones', [0, 90_000, 91_000, 92_000], true],
  ];
  for (const [name, offsets, banned] of cases) {
    const { guard, clock } = guardAt();
    const start = clock.now;
    for (const offset of offsets) {
      clock.now = start + offset;
      guard.failed('192.0.2.1');
    }
    t.equal(guard.isBanned('192.0.2.1'), banned, name);
  }
});

t.test('a ban lasts the ban time, counts once, and spares the allow-list', async (t) => {
  const { guard, clock, bans } = guardAt();
  for (let i = 0; i < 3; i += 1) guard.failed('192.0.2.1');
  for (let i = 0; i < 5; i += 1) guard.failed('10.0.0.9');
  t.same(bans, ['192.0.2.1'], 'one ban event; the allow-listed address is never banned');
  t.equal(guard.isBanned('10.0.0.9'), false);
  guard.succeeded('192.0.2.1');
  t.equal(guard.isBanned('192.0.2.1'), true, 'a success elsewhere does not lift a ban');
  clock.now += 60_001;
  t.equal(guard.isBanned('192.0.2.1'), false, 'the ban ends after the ban time');
  guard.failed('192.0.2.1');
  t.equal(guard.isBanned('192.0.2.1'), false, 'and the count starts again');
});

t.test('a success forgets the failures before it', async (t) => {
  const { guard } = guardAt();
  guard.failed('192.0.2.1');
  guard.failed('192.0.2.1');
  guard.succeeded('192.0.2.1');
  guard.failed('192.0.2.1');
  t.equal(guard.isBanned('192.0.2.1'), false);
});

t.test('delays grow by one step per failure, up to 5 s', async (t) => {
  const { guard } = guardAt({ maxFailures: 100 });
  const delays = Array.from({ length: 12 }, () => guard.failed('192.0.2.1'));
  t.same(delays, [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5000, 5000]);
});

t.test('a scan from many addresses keeps memory bounded', async (t) => {
  const { guard, clock } = guardAt({ maxTracked: 100 });
  for (let i = 0; i < 5_000; i += 1) {
    clock.now += 1;
    guard.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  }
  t.ok(guard.trackedAddresses <= 100, `at most 100 addresses remembered (${guard.trackedAddresses})`);
  for (let i = 0; i < 500; i += 1) {
    for (let k = 0; k < 3; k += 1) guard.failed(`172.16.${(i >> 8) & 255}.${i & 255}`);
  }
  t.ok(guard.trackedAddresses <= 200, `bans bounded too (${guard.trackedAddresses})`);
  t.equal(guard.isBanned('172.16.1.243'), true, 'the most recent bans are kept');
});

t.test('failures expire without any further login, so the map empties', async (t) => {
  const { guard, clock } = guardAt();
  for (let i = 0; i < 50; i += 1) guard.failed(`198.51.100.${i}`);
  clock.now += 60_001;
  guard.failed('203.0.113.1');
  t.equal(guard.trackedAddresses, 1, 'only the fresh failure is remembered');
});
