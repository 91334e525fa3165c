import t from 'tap';
import { formatXferLine } from '../../src/xferlog.ts';
import { humanLine } from '../../src/log.ts';

t.test('xferlog lines', async (t) => {
  const finished = new Date(Date.UTC(2026, 10, 29, 9, 5, 7));
  const cases: Array<[Parameters<typeof formatXferLine>[0], string]> = [
    [
      { finished, seconds: 2.4, remote: '127.0.0.1', bytes: 1234, path: '/b/a.txt', direction: 'i', user: 'KEY', complete: true },
      'Sun Nov 29 09:05:07 2026 2 127.0.0.1 1234 /b/a.txt b _ i r KEY ftp 1 KEY c\n',
    ],
    [
      { finished, seconds: 0.01, remote: '::1', bytes: 0, path: '/b/with space.bin', direction: 'o', user: 'K', complete: false },
      'Sun Nov 29 09:05:07 2026 1 ::1 0 /b/with_space.bin b _ o r K ftp 1 K i\n',
    ],
  ];
  for (const [record, line] of cases) t.equal(formatXferLine(record), line);
});

t.test('terminal log lines are readable', async (t) => {
  const line = humanLine(JSON.stringify({ level: 'info', time: '2026-11-29T09:05:07.123Z', msg: 'login', user: 'KEY', note: 'two words' }));
  t.equal(line, '09:05:07.123 INFO  login user=KEY note="two words"\n');
});
