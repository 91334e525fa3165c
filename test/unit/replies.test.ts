import t from 'tap';
import { formatReply, quotePath } from '../../src/control/replies.ts';
import { COMMANDS, parseCommandLine } from '../../src/control/commands.ts';

t.test('reply formatting', async (t) => {
  t.equal(formatReply(200, 'OK'), '200 OK\r\n');
  t.equal(formatReply(211, ['Features:', 'UTF8', 'End']), '211-Features:\r\n UTF8\r\n211 End\r\n');
  t.equal(formatReply(550, 'bad\r\ninjected'), '550 bad  injected\r\n');
  t.equal(quotePath('/b/say "hi"'), '"/b/say ""hi"""');
});

t.test('command lines keep their arguments byte for byte', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['USER key', 'USER', 'key'],
    ['stor  two spaces', 'STOR', ' two spaces'],
    ['Retr -dash.txt', 'RETR', '-dash.txt'],
    ['CWD "quoted dir"', 'CWD', '"quoted dir"'],
    ['PASV', 'PASV', ''],
    ['mkd ünï', 'MKD', 'ünï'],
    [' SYST', 'SYST', ''],
    ['  cwd a b', 'CWD', 'a b'],
    ['', '', ''],
  ];
  for (const [line, verb, arg] of cases) t.same(parseCommandLine(line), { verb, arg }, line);
});

t.test('every command has a handler and help; FEAT covers the contract', async (t) => {
  for (const [name, spec] of Object.entries(COMMANDS)) {
    t.equal(typeof spec.handler, 'function', `${name} handler`);
    t.equal(typeof spec.help, 'string', `${name} help`);
    t.equal(name, name.toUpperCase());
  }
  const feats = Object.values(COMMANDS).flatMap((s) => s.feat ?? []);
  for (const f of ['AUTH TLS', 'PBSZ', 'PROT', 'UTF8', 'EPSV', 'SIZE', 'MDTM', 'REST STREAM', 'MLST type*;size*;modify*;perm*;']) {
    t.ok(feats.includes(f), f);
  }
  for (const name of ['AUTH', 'FEAT', 'SYST', 'NOOP', 'HELP', 'OPTS', 'QUIT']) t.ok(COMMANDS[name]?.beforeTls, `${name} before TLS`);
  for (const name of ['USER', 'PASS', 'LIST', 'RETR', 'STOR']) t.notOk(COMMANDS[name]?.beforeTls, `${name} needs TLS`);
});
