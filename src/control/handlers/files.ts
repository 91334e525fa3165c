// SIZE, MDTM, DELE, RNFR/RNTO, REST and MLST: metadata work done on the main thread.
import { FtpError, Reply } from '../replies.ts';
import type { Session } from '../session.ts';
import { inspectQuietly, resolveArg, type Resolved } from '../resolve.ts';
import { formatFacts, formatTimeval } from '../../listing.ts';
import type { ObjectStat, StorageDriver } from '../../storage/driver.ts';
import { markerFits } from '../../paths.ts';

interface FoundFile {
  readonly resolved: Resolved;
  readonly bucket: string;
  readonly key: string;
  readonly stat: ObjectStat;
  /** A resumable upload rather than an object: SIZE gives its offset, MDTM its start. */
  readonly resumable: boolean;
}

async function requireFile(session: Session, arg: string): Promise<FoundFile> {
  const resolved = resolveArg(session, arg);
  const { location } = resolved;
  if (location.kind === 'object') {
    const node = await inspectQuietly(session.driver, location);
    if (node.type === 'file') return { resolved, bucket: location.bucket, key: location.key, stat: node.stat, resumable: node.resumable !== undefined };
    if (node.type === 'dir') throw new FtpError(Reply.FileUnavailable, `${arg}: Is a directory.`);
  }
  if (location.kind !== 'object') throw new FtpError(Reply.FileUnavailable, `${arg}: Is a directory.`);
  throw new FtpError(Reply.FileUnavailable, `${arg}: No such file.`);
}

export async function size(session: Session, arg: string): Promise<void> {
  const { stat } = await requireFile(session, arg);
  session.reply(Reply.FileStatus, String(stat.size));
}

export async function mdtm(session: Session, arg: string): Promise<void> {
  const { stat } = await requireFile(session, arg);
  session.reply(Reply.FileStatus, formatTimeval(stat.modified));
}

export async function dele(session: Session, arg: string): Promise<void> {
  const { bucket, key, resolved, resumable } = await requireFile(session, arg);
  // Deleting an unfinished upload removes its stored parts.
  if (resumable) await session.driver.discardResumable?.(bucket, key);
  else await session.driver.delete(bucket, key);
  session.reply(Reply.FileActionOk, `${resolved.path} deleted.`);
}

export function rest(session: Session, arg: string): void {
  if (!/^\d{1,15}$/.test(arg.trim())) throw new FtpError(Reply.SyntaxErrorArgs, 'REST needs a byte offset.');
  session.restOffset = Number(arg.trim());
  const uploads = session.driver.capabilities.resumableUpload ? 'STOR to continue an interrupted upload' : 'uploads cannot resume';
  session.reply(Reply.PendingMoreInfo, `Restarting at ${session.restOffset}. Send RETR to resume a download (${uploads}).`);
}

export async function rnfr(session: Session, arg: string): Promise<void> {
  const { path, location } = resolveArg(session, arg);
  session.renameFrom = undefined;
  if (location.kind !== 'object') throw new FtpError(Reply.FileUnavailable, 'Buckets cannot be renamed.');
  const node = await inspectQuietly(session.driver, location);
  if (node.type === 'missing') throw new FtpError(Reply.FileUnavailable, `${arg}: No such file or directory.`);
  if (node.type === 'file' && node.resumable) throw new FtpError(Reply.FileUnavailable, `${arg}: An unfinished upload cannot be renamed.`);
  session.renameFrom = path;
  session.reply(Reply.PendingMoreInfo, 'Ready for RNTO.');
}

export async function rnto(session: Session, arg: string): Promise<void> {
  const fromPath = session.renameFrom;
  session.renameFrom = undefined;
  if (fromPath === undefined) throw new FtpError(Reply.BadSequence, 'Send RNFR first.');
  const from = resolveArg(session, fromPath);
  const to = resolveArg(session, arg);
  if (from.location.kind !== 'object') throw new FtpError(Reply.FileUnavailable, 'Buckets cannot be renamed.');
  if (to.location.kind !== 'object') throw new FtpError(Reply.FileNameNotAllowed, 'Target must be inside a bucket.');
  if (to.path === from.path) {
    session.reply(Reply.FileActionOk, 'Rename successful.');
    return;
  }
  const driver = session.driver;
  const source = await inspectQuietly(driver, from.location);
  if (source.type === 'missing') throw new FtpError(Reply.FileUnavailable, `${fromPath}: No such file or directory.`);
  const target = await inspectQuietly(driver, to.location);
  if (target.type === 'dir') throw new FtpError(Reply.FileUnavailable, `${to.path}: A directory has that name.`);
  if (source.type === 'file' && driver.capabilities.rename && driver.rename) {
    await driver.rename(from.location.bucket, from.location.key, to.location.bucket, to.location.key);
  } else if (source.type === 'file') {
    await driver.copy(from.location.bucket, from.location.key, to.location.bucket, to.location.key, source.stat.size);
    await driver.delete(from.location.bucket, from.location.key);
  } else {
    if (`${to.path}/`.startsWith(`${from.path}/`)) throw new FtpError(Reply.FileNameNotAllowed, 'Cannot move a directory into itself.');
    if (target.type === 'file') throw new FtpError(Reply.FileUnavailable, `${to.path}: A file has that name.`);
    if (!markerFits(to.location.key)) throw new FtpError(Reply.FileNameNotAllowed, 'Path too long: S3 keys are limited to 1024 bytes.');
    await renameTree(driver, from.location.bucket, `${from.location.key}/`, to.location.bucket, `${to.location.key}/`);
  }
  session.reply(Reply.FileActionOk, 'Rename successful.');
}

/**
 * Copies every key under a prefix, page by page, deleting each source only after its copy exists,
 * so a failure part-way leaves every object readable at the old or the new name.
 */
async function renameTree(driver: StorageDriver, fromBucket: string, fromPrefix: string, toBucket: string, toPrefix: string): Promise<void> {
  // Directory markers go last and deepest first: a local directory can only go once empty.
  const markers: string[] = [];
  for await (const page of driver.listRecursive(fromBucket, fromPrefix)) {
    for (const object of page) {
      await driver.copy(fromBucket, object.key, toBucket, toPrefix + object.key.slice(fromPrefix.length), object.size);
    }
    for (const object of page) {
      if (object.key.endsWith('/')) markers.push(object.key);
      else await driver.delete(fromBucket, object.key);
    }
  }
  markers.sort((a, b) => b.length - a.length);
  for (const marker of markers) await driver.delete(fromBucket, marker);
}

export async function mlst(session: Session, arg: string): Promise<void> {
  const { path, location } = resolveArg(session, arg);
  const node = await inspectQuietly(session.driver, location);
  if (node.type === 'missing') throw new FtpError(Reply.FileUnavailable, `${arg || path}: No such file or directory.`);
  const facts =
    node.type === 'file'
      ? formatFacts({ name: path, type: 'file', size: node.stat.size, modified: node.stat.modified, resumable: node.resumable !== undefined })
      : formatFacts({ name: path, type: 'dir', size: 0 });
  session.reply(Reply.FileActionOk, [`Listing ${path}`, `${facts} ${path}`, 'End']);
}
