import t from 'tap';
import { formatListLine, formatMlsdLine, formatTimeval, formatPage, splitListArgument, type Entry } from '../../src/listing.ts';

const now = new Date(Date.UTC(2026, 10, 29, 12, 0, 0));

t.test('LIST lines in ls -l form, time for recent entries and year for old ones', async (t) => {
  const cases: Array<[Entry, string]> = [
    [{ name: 'dir', type: 'dir', size: 0, modified: new Date(Date.UTC(2026, 10, 29, 10, 24)) }, 'drwxr-xr-x 1 ftp ftp            0 Nov 29 10:24 dir'],
    [{ name: 'a.txt', type: 'file', size: 1234, modified: new Date(Date.UTC(2025, 10, 29, 9, 0)) }, '-rw-r--r-- 1 ftp ftp         1234 Nov 29  2025 a.txt'],
    [{ name: 'x y', type: 'file', size: 5, modified: new Date(Date.UTC(2026, 5, 1, 0, 5)) }, '-rw-r--r-- 1 ftp ftp            5 Jun  1 00:05 x y'],
    [{ name: '-dash', type: 'file', size: 0, modified: new Date(Date.UTC(2026, 0, 3, 1, 2)) }, '-rw-r--r-- 1 ftp ftp            0 Jan  3  2026 -dash'],
    [{ name: 'prefix', type: 'dir', size: 0 }, 'drwxr-xr-x 1 ftp ftp            0 Nov 29 12:00 prefix'],
  ];
  for (const [entry, line] of cases) t.equal(formatListLine(entry, now), line, entry.name);
});

t.test('MLSD facts', async (t) => {
  t.equal(
    formatMlsdLine({ name: 'a b.txt', type: 'file', size: 1234, modified: new Date(Date.UTC(2026, 10, 29, 10, 24, 0)) }),
    'type=file;size=1234;modify=20261129102400;perm=adfrw; a b.txt',
  );
  t.equal(formatMlsdLine({ name: 'd', type: 'dir', size: 0 }), 'type=dir;perm=flcdmpe; d');
  t.equal(formatTimeval(new Date(Date.UTC(2001, 0, 2, 3, 4, 5))), '20010102030405');
});

t.test('pages leave out names that would break line framing', async (t) => {
  const entries: Entry[] = [
    { name: 'ok', type: 'file', size: 1 },
    { name: 'bad\nname', type: 'file', size: 1 },
    { name: 'ünï', type: 'dir', size: 0 },
  ];
  t.equal(formatPage('nlst', entries, now), 'ok\r\nünï\r\n');
});

t.test('LIST arguments: ls options are split from the path', async (t) => {
  const cases: Array<[string, string]> = [
    ['', ''],
    ['-la', ''],
    ['-a', ''],
    ['-l dir', 'dir'],
    ['-la /b/some dir', '/b/some dir'],
    ['dir', 'dir'],
    ['-foo.txt', '-foo.txt'],
    ['-la.txt', '-la.txt'],
    ['-la -a', ''],
    ['-l  two  spaces', 'two  spaces'],
    ['name with spaces', 'name with spaces'],
  ];
  for (const [arg, path] of cases) t.equal(splitListArgument(arg).path, path, arg);
});
