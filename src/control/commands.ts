// The command table: every command's checks in one place, one dispatcher that applies them.
import { Reply } from './replies.ts';
import type { Session } from './session.ts';
import type { ArgumentRule, CommandSpec, CommandTable } from './command-spec.ts';
import { log } from '../log.ts';
import * as authHandlers from './handlers/auth.ts';
import * as dirs from './handlers/dirs.ts';
import * as files from './handlers/files.ts';
import * as transfer from './handlers/transfer.ts';
import * as misc from './handlers/misc.ts';

interface Options {
  auth?: boolean;
  beforeTls?: boolean;
  feat?: readonly string[];
}

function spec(handler: CommandSpec['handler'], arg: ArgumentRule, help: string, options: Options = {}): CommandSpec {
  return { handler, arg, help, auth: options.auth ?? true, beforeTls: options.beforeTls ?? false, feat: options.feat };
}

const open = { auth: false, beforeTls: true };

/** FEAT lines that belong to no single command: TVFS (RFC 3659) is the path syntax of them all. */
const SERVER_FEATURES = ['TVFS'];

export const COMMANDS: CommandTable = {
  AUTH: spec(authHandlers.auth, 'required', '<TLS>', { ...open, feat: ['AUTH TLS'] }),
  PBSZ: spec(authHandlers.pbsz, 'required', '<0>', { auth: false, feat: ['PBSZ'] }),
  PROT: spec(authHandlers.prot, 'required', '<P>', { auth: false, feat: ['PROT'] }),
  USER: spec(authHandlers.user, 'required', '<access key>', { auth: false }),
  PASS: spec(authHandlers.pass, 'optional', '<secret key>', { auth: false }),
  FEAT: spec((s) => misc.feat(s, COMMANDS, SERVER_FEATURES), 'optional', '', open),
  SYST: spec(misc.syst, 'optional', '', open),
  NOOP: spec(misc.noop, 'optional', '', open),
  HELP: spec((s, a) => misc.help(s, a, COMMANDS), 'optional', '[<command>]', open),
  OPTS: spec(misc.opts, 'required', '<UTF8 ON | MLST facts>', { ...open, feat: ['UTF8'] }),
  QUIT: spec(misc.quit, 'optional', '', open),
  STAT: spec(misc.stat, 'optional', '[<path>]', { auth: false }),
  TYPE: spec(misc.type, 'required', '<A | I>'),
  MODE: spec(misc.mode, 'required', '<S>'),
  STRU: spec(misc.stru, 'required', '<F>'),
  ALLO: spec(misc.allo, 'optional', '<bytes>'),
  SIZE: spec(files.size, 'required', '<path>', { feat: ['SIZE'] }),
  MDTM: spec(files.mdtm, 'required', '<path>', { feat: ['MDTM'] }),
  DELE: spec(files.dele, 'required', '<path>'),
  RNFR: spec(files.rnfr, 'required', '<path>'),
  RNTO: spec(files.rnto, 'required', '<path>'),
  REST: spec(files.rest, 'required', '<offset>', { feat: ['REST STREAM'] }),
  MLST: spec(files.mlst, 'optional', '[<path>]', { feat: ['MLST type*;size*;modify*;perm*;'] }),
  PWD: spec(dirs.pwd, 'optional', ''),
  XPWD: spec(dirs.pwd, 'optional', ''),
  CWD: spec(dirs.cwd, 'required', '<path>'),
  XCWD: spec(dirs.cwd, 'required', '<path>'),
  CDUP: spec(dirs.cdup, 'optional', ''),
  XCUP: spec(dirs.cdup, 'optional', ''),
  MKD: spec(dirs.mkd, 'required', '<path>'),
  XMKD: spec(dirs.mkd, 'required', '<path>'),
  RMD: spec(dirs.rmd, 'required', '<path>'),
  XRMD: spec(dirs.rmd, 'required', '<path>'),
  PASV: spec(transfer.pasv, 'optional', ''),
  EPSV: spec(transfer.epsv, 'optional', '[<1 | ALL>]', { feat: ['EPSV'] }),
  PORT: spec(transfer.port, 'optional', '(not supported)'),
  EPRT: spec(transfer.port, 'optional', '(not supported)'),
  RETR: spec(transfer.retr, 'required', '<path>'),
  STOR: spec(transfer.stor, 'required', '<path>'),
  APPE: spec(transfer.appe, 'required', '<path>'),
  LIST: spec(transfer.list, 'optional', '[-la] [<path>]'),
  NLST: spec(transfer.nlst, 'optional', '[<path>]'),
  MLSD: spec(transfer.mlsd, 'optional', '[<path>]'),
  ABOR: spec(transfer.abor, 'optional', ''),
};

/** Splits a command line into its verb (upper-cased) and argument (kept byte for byte). */
export function parseCommandLine(line: string): { verb: string; arg: string } {
  // Leading blanks before the verb are tolerated; the argument is kept as sent.
  const start = line.length - line.trimStart().length;
  const space = line.indexOf(' ', start);
  if (space < 0) return { verb: line.slice(start).trim().toUpperCase(), arg: '' };
  return { verb: line.slice(start, space).toUpperCase(), arg: line.slice(space + 1) };
}

export async function dispatch(session: Session, line: string): Promise<void> {
  const { verb, arg } = parseCommandLine(line);
  if (verb === '') {
    session.reply(Reply.SyntaxError, 'Empty command line.');
    return;
  }
  const started = performance.now();
  // Transfer commands answer later (150, then 226): their log line shows no code rather than an old one.
  session.lastReplyCode = 0;
  try {
    await check(session, verb, arg, line);
  } finally {
    log.info('command', {
      session: session.id,
      remote: session.remoteAddress,
      user: session.accessKeyId ?? session.pendingUser,
      command: verb.slice(0, 16),
      // The PASS argument is the secret key: it is never logged.
      arg: verb === 'PASS' || arg === '' ? undefined : arg.slice(0, 512),
      code: session.lastReplyCode || undefined,
      ms: Math.round(performance.now() - started),
    });
  }
}

/** Applies the table's checks, then runs the handler; refusals and storage errors become replies. */
async function check(session: Session, verb: string, arg: string, line: string): Promise<void> {
  const command = COMMANDS[verb];
  if (!command) {
    session.reply(Reply.NotImplemented, `Command ${verb.slice(0, 32)} not implemented.`);
    return;
  }
  if (line.includes('\0')) {
    session.reply(Reply.SyntaxErrorArgs, 'NUL bytes are not allowed.');
    return;
  }
  if (!session.tlsActive && !command.beforeTls) {
    session.reply(Reply.NotLoggedIn, 'TLS required: send AUTH TLS first.');
    return;
  }
  if (command.auth && !session.loggedIn) {
    session.reply(Reply.NotLoggedIn, 'Please log in with USER and PASS.');
    return;
  }
  if (command.arg === 'required' && arg.trim() === '') {
    session.reply(Reply.SyntaxErrorArgs, `${verb} needs an argument.`);
    return;
  }
  try {
    await command.handler(session, arg);
  } catch (error) {
    session.replyError(error, verb);
  }
}
