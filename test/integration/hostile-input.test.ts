// Hostile input on a live control connection: every line gets a well-formed reply, the session
// goes on, and another session is unaffected.
import t from 'tap';
import fc from 'fast-check';
import { backends, uniqueBucket } from '../helpers/gateway.ts';
import { gatewayFor } from '../helpers/ftp-steps.ts';
import { RawFtp } from '../helpers/raw-ftp.ts';

const VERBS = ['CWD', 'MKD', 'RMD', 'DELE', 'SIZE', 'MDTM', 'RNFR', 'MLST', 'STAT', 'OPTS', 'REST', 'TYPE', 'MODE', 'STRU', 'HELP', 'XYZZY', 'PROT', 'EPSV'];

const hostileArg = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.constantFrom('../../../../etc/passwd', '%2f..%2f..', '/..', '-la', '"quoted"', 'a'.repeat(1100), '\u0000x', 'ü/日本', ' leading space'),
);

for (const backend of backends()) {
  t.test(`hostile input on ${backend}`, async (t) => {
    const gw = await gatewayFor(t, backend);
    const bucket = uniqueBucket('hostile');
    t.teardown(() => gw.probe.removeBucket(bucket));
    const ftp = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
    const bystander = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
    t.teardown(() => ftp.quit());
    t.teardown(() => bystander.quit());
    await ftp.expect(`MKD /${bucket}`, 257);

    await t.test('malformed bytes', async (t) => {
      const raw: Array<[string, Buffer, number[]]> = [
        ['NUL in a path', Buffer.from('CWD a\u0000b\r\n'), [501]],
        ['invalid UTF-8', Buffer.from([0x43, 0x57, 0x44, 0x20, 0xc3, 0x28, 0xff, 0xfe, 0x0d, 0x0a]), [550]],
        ['Telnet IAC IP/DM before NOOP', Buffer.from([0xff, 0xf4, 0xff, 0xf2, 0x4e, 0x4f, 0x4f, 0x50, 0x0d, 0x0a]), [200]],
        ['bare LF', Buffer.from('NOOP\n'), [200]],
        ['over-long line', Buffer.concat([Buffer.from('NOOP '), Buffer.alloc(5000, 0x61), Buffer.from('\r\n')]), [500]],
        ['%2f is a literal name', Buffer.from('CWD %2f..%2f\r\n'), [550]],
        ['key over 1024 bytes', Buffer.from(`MKD /${bucket}/${'k'.repeat(1100)}\r\n`), [553]],
        ['invalid bucket name', Buffer.from('MKD /Not_A_Bucket\r\n'), [553]],
        ['RNTO without RNFR', Buffer.from('RNTO x\r\n'), [503]],
        ['REST garbage', Buffer.from('REST -5\r\n'), [501]],
      ];
      for (const [name, bytes, codes] of raw) {
        ftp.writeRaw(bytes);
        const reply = await ftp.read();
        t.ok(codes.includes(reply.code), `${name}: ${reply.text.slice(0, 80)}`);
        t.equal((await ftp.send('NOOP')).code, 200, `${name}: the session goes on`);
      }
    });

    await t.test('random arguments to every path command', async (t) => {
      const samples = fc.sample(fc.tuple(fc.constantFrom(...VERBS), hostileArg), { numRuns: 300, seed: 42 });
      let wellFormed = 0;
      for (const [verb, arg] of samples) {
        const line = `${verb} ${arg.replace(/[\r\n]/g, '')}`;
        const reply = await ftp.send(line);
        if (reply.code >= 200 && reply.code < 600 && /^\d{3}[ -]/.test(reply.lines[0] ?? '')) wellFormed += 1;
        else t.fail(`bad reply to ${JSON.stringify(line).slice(0, 80)}: ${reply.text}`);
        if (verb === 'RNFR' && reply.code === 350) await ftp.send('RNTO /');
      }
      t.equal(wellFormed, samples.length, 'every line got a well-formed reply');
      t.equal((await ftp.send('CWD /')).code, 250, 'the session still works');
      t.ok(await ftp.list(`LIST /${bucket}`), 'listing still works');
    });

    t.equal((await bystander.send('NOOP')).code, 200, 'another session is unaffected');
    t.same(await gw.probe.keys(bucket), [], 'nothing was written by hostile input');
  });
}
