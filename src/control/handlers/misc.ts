// FEAT, SYST, NOOP, HELP, OPTS, QUIT, STAT, TYPE, MODE, STRU, ALLO.
import { FtpError, Reply } from '../replies.ts';
import type { Session } from '../session.ts';
import { inspectQuietly, resolveArg } from '../resolve.ts';
import { formatListLine, isListableName, splitListArgument } from '../../listing.ts';
import { directoryPrefix, baseName } from '../../paths.ts';
import type { StorageDriver } from '../../storage/driver.ts';
import type { CommandTable } from '../command-spec.ts';

const STAT_LINE_LIMIT = 10_000;

export function feat(session: Session, table: CommandTable, serverFeatures: readonly string[]): void {
  const features = [...new Set([...Object.values(table).flatMap((spec) => spec.feat ?? []), ...serverFeatures])].sort();
  session.reply(Reply.SystemStatus, ['Features:', ...features, 'End']);
}

export function syst(session: Session): void {
  session.reply(Reply.SystemType, 'UNIX Type: L8');
}

export function noop(session: Session): void {
  session.reply(Reply.CommandOk, 'NOOP ok.');
}

export function help(session: Session, arg: string, table: CommandTable): void {
  const name = arg.trim().toUpperCase();
  if (name !== '') {
    const spec = table[name];
    if (!spec) throw new FtpError(Reply.SyntaxErrorArgs, `Unknown command ${name}.`);
    session.reply(Reply.HelpMessage, `Syntax: ${name} ${spec.help}`);
    return;
  }
  const names = Object.keys(table).sort();
  const rows: string[] = [];
  for (let i = 0; i < names.length; i += 8) rows.push(names.slice(i, i + 8).map((n) => n.padEnd(6)).join(' '));
  session.reply(Reply.HelpMessage, ['The following commands are recognized:', ...rows, 'Help OK.']);
}

export function opts(session: Session, arg: string): void {
  const [option = '', ...rest] = arg.trim().split(/\s+/);
  const value = rest.join(' ').toUpperCase();
  switch (option.toUpperCase()) {
    case 'UTF8':
    case 'UTF-8':
      if (value === 'OFF') throw new FtpError(Reply.NotImplementedParam, 'UTF-8 is always on.');
      session.reply(Reply.CommandOk, 'UTF8 mode is always on.');
      return;
    case 'MLST':
      session.reply(Reply.CommandOk, 'MLST OPTS type;size;modify;perm;');
      return;
    default:
      throw new FtpError(Reply.SyntaxErrorArgs, `Unknown option ${option}.`);
  }
}

export async function quit(session: Session): Promise<void> {
  // A running transfer finishes first; its 226 comes before the 221.
  await session.transfer?.done;
  session.reply(Reply.ClosingControl, 'Goodbye.');
  session.close();
}

function serverStatus(session: Session): void {
  session.reply(Reply.SystemStatus, [
    's3ftpd status:',
    `Connected from ${session.remoteAddress}`,
    session.accessKeyId ? `Logged in as ${session.accessKeyId}` : 'Not logged in',
    `TLS: ${session.tlsProtocol ?? 'none'}; data protection: ${session.protection === 'P' ? 'private' : 'clear'}`,
    `Transfer in progress: ${session.transfer ? 'yes' : 'no'}`,
    `Transfers: ${session.transfers}; bytes in: ${session.bytesIn}; bytes out: ${session.bytesOut}`,
    'End of status',
  ]);
}

/** A directory's lines in `ls -l` form, at most STAT_LINE_LIMIT of them. */
async function directoryLines(driver: StorageDriver, bucket: string, prefix: string, now: Date): Promise<string[]> {
  const lines: string[] = [];
  for await (const page of driver.listDirectory(bucket, prefix)) {
    for (const entry of page) {
      if (!isListableName(entry.name)) continue;
      if (lines.length >= STAT_LINE_LIMIT) return [...lines, '... (listing truncated; use LIST)'];
      lines.push(formatListLine(entry, now));
    }
  }
  return lines;
}

export async function stat(session: Session, arg: string): Promise<void> {
  if (arg.trim() === '') {
    serverStatus(session);
    return;
  }
  if (!session.loggedIn) throw new FtpError(Reply.NotLoggedIn, 'Please log in with USER and PASS.');
  const pathArg = splitListArgument(arg).path;
  const { location } = resolveArg(session, pathArg);
  const driver = session.driver;
  const node = await inspectQuietly(driver, location);
  if (node.type === 'missing') throw new FtpError(Reply.FileUnavailable, `${pathArg}: No such file or directory.`);
  const now = session.server.now();
  let lines: string[];
  if (node.type === 'file') {
    const name = baseName(location.kind === 'object' ? location.key : '');
    lines = [formatListLine({ name, type: 'file', size: node.stat.size, modified: node.stat.modified }, now)];
  } else if (location.kind === 'root') {
    lines = (await driver.listBuckets()).map((entry) => formatListLine(entry, now));
  } else {
    lines = await directoryLines(driver, location.bucket, directoryPrefix(location), now);
  }
  session.reply(Reply.FileStatus, [`Status of ${pathArg || session.cwd}:`, ...lines, 'End of status']);
}

export function type(session: Session): void {
  // Transfers are always binary: S3 objects are bytes, and ASCII conversion would change them.
  session.reply(Reply.CommandOk, 'Type set; transfers are binary.');
}

export function mode(session: Session, arg: string): void {
  if (arg.trim().toUpperCase() !== 'S') throw new FtpError(Reply.NotImplementedParam, 'Only MODE S is supported.');
  session.reply(Reply.CommandOk, 'Mode set to S.');
}

export function stru(session: Session, arg: string): void {
  if (arg.trim().toUpperCase() !== 'F') throw new FtpError(Reply.NotImplementedParam, 'Only STRU F is supported.');
  session.reply(Reply.CommandOk, 'Structure set to F.');
}

export function allo(session: Session): void {
  session.reply(Reply.CommandNotNeeded, 'ALLO not needed.');
}
