// Pure parts of resumable uploads: which stored parts count for the offset, and the ETag S3 gives
// an object completed from given parts (how a continuing session knows the object is its own).
import t from 'tap';
import { createHash } from 'node:crypto';
import { contiguousParts, offsetOf } from '../../src/storage/s3-resume.ts';
import { multipartEtag, partSizeFor } from '../../src/storage/s3-upload.ts';
import type { StoredPart } from '../../src/storage/driver.ts';

const MiB = 1024 * 1024;
const part = (number: number, size = 5 * MiB, etag = `"${createHash('md5').update(String(number)).digest('hex')}"`): StoredPart => ({ number, etag, size });

t.test('the offset counts parts 1..n without a gap', async (t) => {
  // [case, part numbers stored (in ListParts order), offset in parts]
  const cases: Array<[string, number[], number]> = [
    ['none stored', [], 0],
    ['1..3', [1, 2, 3], 3],
    ['listed out of order', [3, 1, 2], 3],
    ['part 2 never arrived: 3 and 4 will be sent again', [1, 3, 4], 1],
    ['part 1 missing: nothing counts', [2, 3], 0],
  ];
  for (const [name, numbers, whole] of cases) {
    const run = contiguousParts(numbers.map((n) => part(n)));
    t.same(
      run.map((p) => p.number),
      Array.from({ length: whole }, (_, i) => i + 1),
      name,
    );
    t.equal(offsetOf(run), whole * 5 * MiB, `${name}: offset`);
  }
});

t.test('continued part numbers keep the progressive sizes, so 10,000 parts still reach 5 TiB', async (t) => {
  let total = 0;
  for (let n = 1; n <= 10_000; n += 1) total += partSizeFor(n, 8 * MiB);
  t.ok(total >= 5 * 1024 ** 4, `10,000 parts of 8 MiB doubling every 900 hold ${(total / 1024 ** 4).toFixed(1)} TiB`);
  t.equal(partSizeFor(901, 8 * MiB), 16 * MiB, 'part 901 is twice the base, whichever session sends it');
});

t.test('the multipart ETag is the MD5 of the parts\' MD5s and their count', async (t) => {
  const a = createHash('md5').update('a').digest('hex');
  const b = createHash('md5').update('b').digest('hex');
  const expected = createHash('md5').update(Buffer.concat([Buffer.from(a, 'hex'), Buffer.from(b, 'hex')])).digest('hex');
  t.equal(multipartEtag([part(2, 1, `"${b}"`), part(1, 1, `"${a}"`)]), `"${expected}-2"`, 'ordered by part number');
  t.not(multipartEtag([part(1, 1, `"${b}"`), part(2, 1, `"${a}"`)]), `"${expected}-2"`, 'another part list gives another ETag');
  t.equal(multipartEtag([part(1, 1, '"not-an-md5"')]), undefined, 'a non-MD5 ETag (KMS) cannot be checked');
});
