import t from 'tap';
import { resolvePath, locate, keyFits, markerFits, isValidBucketName, directoryPrefix, baseName } from '../../src/paths.ts';

t.test('resolvePath normalises and never climbs above /', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['/', 'a/b/../..', '/'],
    ['/', '../../..', '/'],
    ['/bucket', 'x', '/bucket/x'],
    ['/bucket/dir', '..', '/bucket'],
    ['/bucket/dir', '/other//a///b', '/other/a/b'],
    ['/bucket', './a/./b/', '/bucket/a/b'],
    ['/bucket', 'name with spaces', '/bucket/name with spaces'],
    ['/bucket', '"quoted"', '/bucket/"quoted"'],
    ['/bucket', '-leading-dash', '/bucket/-leading-dash'],
    ['/bucket', 'ünïcödé/日本語.txt', '/bucket/ünïcödé/日本語.txt'],
    ['/bucket', '%2f..%2fetc', '/bucket/%2f..%2fetc'],
    ['/bucket', '..a/b..', '/bucket/..a/b..'],
    ['/b/c', '../../../../x', '/x'],
    ['/b', '', '/b'],
  ];
  for (const [cwd, arg, expected] of cases) t.equal(resolvePath(cwd, arg), expected, `${cwd} + ${arg}`);
});

t.test('locate maps paths to root, bucket or key', async (t) => {
  t.same(locate('/'), { kind: 'root' });
  t.same(locate('/b'), { kind: 'bucket', bucket: 'b' });
  t.same(locate('/b/a/c.txt'), { kind: 'object', bucket: 'b', key: 'a/c.txt' });
  t.same(locate('/b/ü x'), { kind: 'object', bucket: 'b', key: 'ü x' });
  t.equal(directoryPrefix(locate('/b')), '');
  t.equal(directoryPrefix(locate('/b/a')), 'a/');
  t.equal(baseName('/b/a/c.txt'), 'c.txt');
});

t.test('key length limit counts UTF-8 bytes', async (t) => {
  t.ok(keyFits('a'.repeat(1024)));
  t.notOk(keyFits('a'.repeat(1025)));
  t.ok(keyFits('é'.repeat(512)));
  t.notOk(keyFits(`${'é'.repeat(512)}a`));
  t.ok(markerFits('a'.repeat(1023)));
  t.notOk(markerFits('a'.repeat(1024)));
});

t.test('bucket names follow S3 rules', async (t) => {
  for (const name of ['abc', 'my-bucket', 'a.b.c', '123']) t.ok(isValidBucketName(name), name);
  for (const name of ['ab', 'ABC', '-abc', 'abc-', 'a..b', '192.168.1.1', 'a_b', 'a'.repeat(64), 'ü-bucket']) {
    t.notOk(isValidBucketName(name), name);
  }
});
