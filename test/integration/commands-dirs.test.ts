// SPEC §3 (namespace), §4 directory rows (CWD/CDUP/PWD, MKD, RMD, NLST/LIST/MLSD/MLST) and §5
// (listing formats). Reply codes through RawFtp; outcomes checked in the store itself.
import t from 'tap';
import { backends, uniqueBucket, type Gateway } from '../helpers/gateway.ts';
import type { RawFtp } from '../helpers/raw-ftp.ts';
import { gatewayFor, listStamp, newBucket, parseFacts, parseListLine, parseTimeval, session, stor, type Teardown } from '../helpers/ftp-steps.ts';

/** Names that break naive parsers, with the bytes each file holds. */
const ODD_FILES: ReadonlyArray<[string, string]> = [
  ['plain.txt', 'p'],
  ['with space.txt', 'two words'],
  ['two  spaces .txt', 'x'.repeat(17)],
  [`it's "quoted".txt`, 'quotes'],
  ['-lead.txt', 'dash'],
  ['ünï 日本.txt', 'utf-8 name'],
];
const ODD_DIRS = ['sub dir', '-d', 'implicit'];

/** A bucket holding ODD_FILES (uploaded through the gateway) and ODD_DIRS (MKD, or a bare prefix). */
async function oddBucket(t: Teardown, gw: Gateway, ftp: RawFtp): Promise<string> {
  const b = await newBucket(t, gw, 'odd');
  for (const [name, body] of ODD_FILES) {
    const code = await stor(ftp, `/${b}/${name}`, body);
    if (code !== 226) throw new Error(`STOR ${name}: ${code}`);
  }
  await ftp.expect(`MKD /${b}/sub dir`, 257);
  await ftp.expect(`MKD /${b}/-d`, 257);
  await gw.probe.put(b, 'implicit/inner.txt', 'no marker above me');
  return b;
}

/** A UTF-8 key of `bytes` bytes in segments short enough for any file system. */
function longKey(bytes: number): string {
  const segment = `${'ü'.repeat(50)}/`; // 101 bytes
  let key = '';
  while (Buffer.byteLength(key) + 101 < bytes) key += segment;
  return key + 'k'.repeat(bytes - Buffer.byteLength(key));
}

for (const backend of backends()) {
  t.test(`directory commands on ${backend}`, async (t) => {
    const gw = await gatewayFor(t, backend);

    await t.test('CWD/CDUP 250, PWD 257 "path"; 550 for missing directories, buckets and files', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'cwd');
      await gw.probe.put(b, 'implicit/x.txt', 'x');
      t.match((await ftp.send('PWD')).lines[0], /^257 "\/"( |$)/, 'starts at /');
      t.equal((await ftp.send(`CWD /${b}`)).code, 250);
      t.match((await ftp.send('PWD')).lines[0], new RegExp(`^257 "/${b}"`));
      t.equal((await ftp.send('MKD sub')).code, 257);
      t.equal((await ftp.send('CWD sub')).code, 250, 'relative CWD');
      t.match((await ftp.send('PWD')).lines[0], new RegExp(`^257 "/${b}/sub"`));
      t.equal((await ftp.send('CDUP')).code, 250);
      t.match((await ftp.send('XPWD')).lines[0], new RegExp(`^257 "/${b}"`));
      t.equal((await ftp.send('CWD implicit')).code, 250, 'a prefix without a marker is a directory');
      t.equal((await ftp.send('CWD missing')).code, 550, 'missing directory');
      t.equal((await ftp.send('CWD x.txt')).code, 550, 'a file is not a directory');
      t.match((await ftp.send('PWD')).lines[0], new RegExp(`^257 "/${b}/implicit"`), 'a refused CWD changes nothing');
      t.equal((await ftp.send(`CWD /no-such-${b}`)).code, 550, 'missing bucket');
      t.equal((await ftp.send('CDUP')).code, 250);
      t.equal((await ftp.send('CDUP')).code, 250);
      t.equal((await ftp.send('CDUP')).code, 250, 'CDUP at / stays at /');
      t.match((await ftp.send('PWD')).lines[0], /^257 "\/"/);
      const quoted = `say "hi"`;
      t.match((await ftp.send(`MKD /${b}/${quoted}`)).lines[0], new RegExp(`^257 "/${b}/say ""hi""" `), 'MKD doubles quotes');
      t.equal((await ftp.send(`CWD /${b}/${quoted}`)).code, 250);
      t.match((await ftp.send('PWD')).lines[0], new RegExp(`^257 "/${b}/say ""hi"""`), 'PWD doubles quotes');
    });

    await t.test('paths are normalised and nothing climbs above /', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'dots');
      await gw.probe.put(b, 'a/f.txt', 'twelve bytes');
      t.equal((await ftp.send('CWD /../../..')).code, 250);
      t.match((await ftp.send('PWD')).lines[0], /^257 "\/"/);
      t.equal((await ftp.send(`CWD ../../${b}/./a//`)).code, 250);
      t.match((await ftp.send('PWD')).lines[0], new RegExp(`^257 "/${b}/a"`));
      t.equal((await ftp.send('CWD ../../../../..')).code, 250);
      t.match((await ftp.send('PWD')).lines[0], /^257 "\/"/, '.. stops at /');
      t.same((await ftp.send(`SIZE /../${b}/../../${b}/a/../a/f.txt`)).lines, ['213 12']);
      t.equal((await ftp.send(`CWD /${b}/a`)).code, 250);
      t.equal((await ftp.transfer('RETR ../../../../etc/passwd')).first.code, 550, '/etc/passwd is bucket "etc", not a host file');
      const state = (await ftp.transfer('RETR ../../../../../.s3ftpd/tmp')).first;
      t.ok(state.code === 550 || state.code === 553, `the gateway's own state is out of reach: ${state.text}`);
      t.ok((await ftp.list('NLST ../../..')).includes(b), 'NLST above / lists the root');
      t.equal((await ftp.send(`MKD /../${b}/x/../y`)).code, 257);
      t.ok((await gw.probe.keys(b)).includes('y/'), 'MKD of a normalised path');
    });

    await t.test('a key longer than 1024 bytes of UTF-8 answers 553', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'long');
      const tooLong = longKey(1025);
      t.equal(tooLong.length < 1024, true, 'fewer than 1024 characters: bytes decide');
      t.equal((await ftp.transfer(`STOR /${b}/${tooLong}`, { upload: Buffer.from('x') })).first.code, 553, 'STOR');
      t.equal((await ftp.send(`MKD /${b}/${tooLong}`)).code, 553, 'MKD');
      t.equal((await ftp.send(`SIZE /${b}/${tooLong}`)).code, 553, 'SIZE');
      t.equal((await ftp.send(`RNFR /${b}/${tooLong}`)).code, 553, 'RNFR');
      t.same(await gw.probe.keys(b), [], 'nothing created');
      const longest = longKey(1024);
      t.equal(Buffer.byteLength(longest), 1024);
      t.equal(await stor(ftp, `/${b}/${longest}`, 'edge'), 226, 'a key of exactly 1024 bytes is allowed');
      t.equal((await gw.probe.get(b, longest))?.toString(), 'edge');
      t.same((await ftp.send(`SIZE /${b}/${longest}`)).lines, ['213 4']);
    });

    await t.test('MKD 257 and a marker; 550 when it exists; at / it creates a bucket; bad bucket names refused', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'mkd');
      await gw.probe.put(b, 'file', 'f');
      t.match((await ftp.send(`MKD /${b}/new`)).lines[0], new RegExp(`^257 "/${b}/new"`));
      t.ok((await gw.probe.keys(b)).includes('new/'), 'marker new/ in the store');
      t.equal((await ftp.send(`MKD /${b}/new`)).code, 550, 'exists');
      t.equal((await ftp.send(`MKD /${b}/file`)).code, 550, 'a file has that name');
      t.equal((await ftp.send(`CWD /${b}/new`)).code, 250);
      t.equal((await ftp.send('MKD nested')).code, 257, 'relative MKD');
      t.ok((await gw.probe.keys(b)).includes('new/nested/'));
      t.equal((await ftp.send(`MKD /${b}`)).code, 550, 'an existing bucket');
      t.equal((await ftp.send('MKD /')).code, 550, 'the root');

      const created = uniqueBucket('mkdbucket');
      t.teardown(() => gw.probe.removeBucket(created));
      t.match((await ftp.send(`MKD /${created}`)).lines[0], new RegExp(`^257 "/${created}"`), 'MKD at / creates a bucket');
      t.ok((await ftp.list('NLST /')).includes(created), 'the new bucket is listed');
      t.equal(await stor(ftp, `/${created}/in.txt`, 'in'), 226, 'and usable');
      t.equal((await gw.probe.get(created, 'in.txt'))?.toString(), 'in');
      for (const bad of ['Upper-Case', 'under_score', 'ab', '-leading', 'a'.repeat(64), '192.168.1.1']) {
        const reply = await ftp.send(`MKD /${bad}`);
        t.ok(reply.code === 553 || reply.code === 550, `MKD /${bad} refused: ${reply.text}`);
      }
      const root = await ftp.list('NLST /');
      t.notOk(root.includes('Upper-Case') || root.includes('under_score') || root.includes('ab'), 'no bad bucket created');
    });

    await t.test('RMD 250; 550 not empty or missing; at / it deletes an empty bucket', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'rmd');
      t.equal((await ftp.send(`MKD /${b}/empty`)).code, 257);
      t.equal((await ftp.send(`MKD /${b}/full`)).code, 257);
      await gw.probe.put(b, 'full/keep.txt', 'k');
      t.equal((await ftp.send(`RMD /${b}/empty`)).code, 250);
      t.notOk((await gw.probe.keys(b)).includes('empty/'), 'marker removed');
      t.equal((await ftp.send(`RMD /${b}/empty`)).code, 550, 'missing');
      t.equal((await ftp.send(`RMD /${b}/full`)).code, 550, 'not empty');
      t.equal((await gw.probe.get(b, 'full/keep.txt'))?.toString(), 'k', 'content kept');
      t.equal((await ftp.send(`CWD /${b}`)).code, 250);
      t.equal((await ftp.send('MKD rel')).code, 257);
      t.equal((await ftp.send('XRMD rel')).code, 250, 'relative RMD');
      t.equal((await ftp.send(`RMD /${b}`)).code, 550, 'a bucket that is not empty');
      t.ok((await ftp.list('NLST /')).includes(b), 'the bucket stays');

      const gone = uniqueBucket('rmdbucket');
      t.teardown(() => gw.probe.removeBucket(gone));
      t.equal((await ftp.send(`MKD /${gone}`)).code, 257);
      t.equal((await ftp.send(`RMD /${gone}`)).code, 250, 'RMD at / deletes an empty bucket');
      t.equal((await ftp.send(`CWD /${gone}`)).code, 550, 'the bucket is gone');
      t.notOk((await ftp.list('NLST /')).includes(gone));
      t.equal((await ftp.send(`RMD /${gone}`)).code, 550, 'missing bucket');
    });

    await t.test('NLST and LIST show odd names exactly; markers never show up as files', async (t) => {
      const ftp = await session(t, gw);
      const b = await oddBucket(t, gw, ftp);
      const expected = [...ODD_FILES.map(([n]) => n), ...ODD_DIRS].sort();
      t.same((await ftp.list(`NLST /${b}`)).sort(), expected, 'NLST: one name a line');
      const lines = await ftp.list(`LIST /${b}`);
      const parsed = lines.map(parseListLine);
      t.ok(parsed.every((p) => p !== undefined), `every line in ls -l form:\n${lines.join('\n')}`);
      const byName = new Map(parsed.map((p) => [p?.name ?? '', p]));
      t.equal(lines.length, expected.length, 'one line per entry');
      t.same([...byName.keys()].sort(), expected, 'LIST names, each once');
      for (const [name, body] of ODD_FILES) {
        const entry = byName.get(name);
        t.equal(entry?.type, 'file', `${name} is a file`);
        t.equal(entry?.size, Buffer.byteLength(body), `${name} size`);
        const mdtm = parseTimeval(/^213 (\d{14})$/.exec((await ftp.send(`MDTM /${b}/${name}`)).lines[0] ?? '')?.[1] ?? '');
        t.ok(mdtm, `MDTM ${name}`);
        if (mdtm) t.has(entry, listStamp(mdtm), `${name}: recent entries show the UTC month, day and HH:MM`);
      }
      for (const dir of ODD_DIRS) t.equal(byName.get(dir)?.type, 'dir', `${dir} is a directory`);
      for (const options of ['-la', '-a', '-l']) {
        t.same((await ftp.list(`LIST ${options} /${b}`)).map((l) => parseListLine(l)?.name).sort(), expected, `LIST ${options} /path`);
      }
      t.equal((await ftp.send(`CWD /${b}`)).code, 250);
      t.same((await ftp.list('LIST -la')).map((l) => parseListLine(l)?.name).sort(), expected, 'LIST -la in the working directory');
      t.same(await ftp.list('NLST sub dir'), [], 'an empty directory: its marker is not a file');
      t.same(await ftp.list('NLST -lead.txt'), ['-lead.txt'], 'a relative name with a leading - is a path');
      t.same(await ftp.list(`LIST /${b}/-d`), [], 'a directory named -d');
      t.same(await ftp.list('NLST implicit'), ['inner.txt']);
      const single = await ftp.list(`LIST /${b}/with space.txt`);
      t.equal(single.length, 1, 'LIST of a file: one line');
      t.has(parseListLine(single[0] ?? ''), { type: 'file', size: 9, name: 'with space.txt' });
      t.equal((await ftp.transfer(`LIST /${b}/missing`)).first.code, 550, 'LIST missing');
      t.equal((await ftp.transfer(`NLST /${b}/missing`)).first.code, 550, 'NLST missing');
      t.equal((await ftp.transfer(`NLST /no-such-${b}`)).first.code, 550, 'NLST missing bucket');
    });

    await t.test('LIST/NLST of a relative name that looks like ls options', async (t) => {
      const ftp = await session(t, gw);
      const b = await newBucket(t, gw, 'dash');
      await gw.probe.put(b, '-la.txt', 'dash');
      await gw.probe.put(b, 'other.txt', 'other');
      t.equal((await ftp.send(`CWD /${b}`)).code, 250);
      t.same((await ftp.list('NLST -la')).sort(), ['-la.txt', 'other.txt'], 'NLST -la: options, the working directory');
      const nlst = await ftp.transfer('NLST -la.txt');
      t.equal(nlst.first.code, 150, `NLST -la.txt names an existing file, not options plus ".txt": ${nlst.first.text}`);
      t.same(nlst.data.toString().split('\r\n').filter((l) => l !== ''), ['-la.txt']);
      const list = await ftp.transfer('LIST -la.txt');
      t.equal(list.first.code, 150, `LIST -la.txt: ${list.first.text}`);
      t.same(list.data.toString().split('\r\n').filter((l) => l !== '').map((l) => parseListLine(l)?.name), ['-la.txt']);
    });

    await t.test('MLSD/MLST facts: type, size, modify (UTC), perm; 501 MLSD on a file; 550 missing', async (t) => {
      const ftp = await session(t, gw);
      const b = await oddBucket(t, gw, ftp);
      const lines = await ftp.list(`MLSD /${b}`);
      const entries = new Map(lines.map((l) => parseFacts(l)).map((p) => [p?.name ?? '', p?.facts]));
      t.equal(lines.length, ODD_FILES.length + ODD_DIRS.length, 'one line per entry');
      t.same([...entries.keys()].sort(), [...ODD_FILES.map(([n]) => n), ...ODD_DIRS].sort(), `names:\n${lines.join('\n')}`);
      for (const [name, body] of ODD_FILES) {
        const facts = entries.get(name);
        const mdtm = /^213 (\d{14})$/.exec((await ftp.send(`MDTM /${b}/${name}`)).lines[0] ?? '')?.[1];
        t.ok(mdtm, `MDTM ${name}`);
        t.has(facts, { type: 'file', size: String(Buffer.byteLength(body)), modify: mdtm, perm: 'adfrw' }, name);
      }
      for (const dir of ODD_DIRS) {
        t.has(entries.get(dir), { type: 'dir', perm: 'flcdmpe' }, dir);
        const modify = entries.get(dir)?.modify;
        if (modify !== undefined) t.ok(parseTimeval(modify), `${dir}: modify is YYYYMMDDHHMMSS`);
      }
      const mlst = await ftp.send(`MLST /${b}/ünï 日本.txt`);
      t.equal(mlst.code, 250);
      t.equal(mlst.lines.length, 3, `250 multi-line: ${mlst.text}`);
      t.match(mlst.lines[0], /^250-/);
      t.match(mlst.lines[2], /^250 /);
      t.ok(mlst.lines[1]?.startsWith(' '), 'the fact line starts with a space (RFC 3659)');
      const fact = parseFacts(mlst.lines[1]?.slice(1) ?? '');
      t.has(fact?.facts, { type: 'file', size: String(Buffer.byteLength('utf-8 name')), perm: 'adfrw' });
      t.match(fact?.facts.modify, /^\d{14}$/);
      t.match(fact?.name, /ünï 日本\.txt$/);
      t.has(parseFacts((await ftp.send(`MLST /${b}/sub dir`)).lines[1]?.slice(1) ?? '')?.facts, { type: 'dir', perm: 'flcdmpe' });
      t.equal((await ftp.send(`CWD /${b}`)).code, 250);
      t.has(parseFacts((await ftp.send('MLST')).lines[1]?.slice(1) ?? '')?.facts, { type: 'dir' }, 'MLST without a path: the working directory');
      t.same((await ftp.list('MLSD sub dir')), [], 'marker not listed inside its directory');
      t.equal((await ftp.transfer(`MLSD /${b}/plain.txt`)).first.code, 501, 'MLSD on a file');
      t.equal((await ftp.transfer(`MLSD /${b}/missing`)).first.code, 550, 'MLSD missing');
      t.equal((await ftp.send(`MLST /${b}/missing`)).code, 550, 'MLST missing');
      const root = (await ftp.list('MLSD /')).map((l) => parseFacts(l));
      t.has(root.find((e) => e?.name === b)?.facts, { type: 'dir', perm: 'flcdmpe' }, 'MLSD / lists buckets as directories');
    });
  });
}
