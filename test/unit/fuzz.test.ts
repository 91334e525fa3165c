// Property tests: the command-line parser, the path mapper, the listing formatters and the Telnet
// filter take many thousands of arbitrary inputs without throwing and keep their invariants.
import t from 'tap';
import fc from 'fast-check';
import { resolvePath, locate, keyFits } from '../../src/paths.ts';
import { parseCommandLine } from '../../src/control/commands.ts';
import { formatReply, Reply } from '../../src/control/replies.ts';
import { formatPage, splitListArgument } from '../../src/listing.ts';
import { stripTelnet } from '../../src/control/telnet.ts';

const RUNS = 5000;
const pathText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.array(fc.constantFrom('..', '.', '', 'a', '%2f', 'ü', ' ', '-x', '"q"', '\\'), { maxLength: 12 }).map((p) => p.join('/')),
);

t.test('resolved paths are absolute, normal and never climb above /', async (t) => {
  fc.assert(
    fc.property(pathText, pathText, (cwdArg, arg) => {
      const cwd = resolvePath('/', cwdArg);
      const path = resolvePath(cwd, arg);
      if (!path.startsWith('/')) return false;
      if (path !== '/' && path.endsWith('/')) return false;
      if (path.includes('//')) return false;
      const segments = path.split('/').slice(1);
      if (segments.some((s) => s === '.' || s === '..')) return false;
      if (resolvePath('/', path) !== path) return false; // idempotent
      const location = locate(path);
      if (location.kind === 'object' && `/${location.bucket}/${location.key}` !== path) return false;
      keyFits(location.kind === 'object' ? location.key : '');
      return true;
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} random path pairs`);
});

t.test('command lines parse without throwing; the verb has no spaces', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (line) => {
      const { verb, arg } = parseCommandLine(line);
      // The argument is kept byte for byte: it is exactly what followed the first space.
      return !verb.includes(' ') && line.endsWith(arg) && (arg === '' || line.indexOf(' ') === line.length - arg.length - 1);
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} random command lines`);
});

t.test('replies are always well-framed, whatever the message', async (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...Object.values(Reply)), fc.array(fc.string({ unit: 'binary', maxLength: 60 }), { minLength: 1, maxLength: 5 }), (code, lines) => {
      const text = formatReply(code, lines.length === 1 ? (lines[0] ?? '') : lines);
      const out = text.split('\r\n');
      if (out.pop() !== '') return false;
      const last = out[out.length - 1] ?? '';
      // Only the final line starts with "code ", and no stray CR or LF is left inside a line.
      return last.startsWith(`${code} `) && out.every((l) => !/[\r\n]/.test(l)) && out.slice(0, -1).every((l) => !l.startsWith(`${code} `));
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} random replies`);
});

t.test('listings never emit a line break inside an entry', async (t) => {
  const entry = fc.record({
    name: fc.string({ unit: 'binary', maxLength: 40 }),
    type: fc.constantFrom('file' as const, 'dir' as const),
    size: fc.nat(),
    modified: fc.option(fc.date({ min: new Date(0), max: new Date(Date.UTC(2200, 0, 1)), noInvalidDate: true }), { nil: undefined }),
  });
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 10 }), fc.constantFrom('list' as const, 'mlsd' as const, 'nlst' as const), (entries, format) => {
      const page = formatPage(format, entries, new Date(Date.UTC(2026, 10, 29)));
      const lines = page.split('\r\n');
      return lines.pop() === '' && lines.every((l) => !/[\r\n]/.test(l)) && lines.length <= entries.length;
    }),
    { numRuns: RUNS },
  );
  fc.assert(fc.property(fc.string({ maxLength: 60 }), (arg) => typeof splitListArgument(arg).path === 'string'), { numRuns: RUNS });
  t.pass('listing properties');
});

t.test('Telnet filtering never grows a line and never leaves a lone IAC command', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const out = stripTelnet(Buffer.from(bytes));
      return out.length <= bytes.length;
    }),
    { numRuns: RUNS },
  );
  t.pass('telnet properties');
});
