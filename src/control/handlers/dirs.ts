// PWD, CWD, CDUP, MKD, RMD: buckets at `/`, key prefixes below.
import { FtpError, Reply, quotePath } from '../replies.ts';
import type { Session } from '../session.ts';
import { inspect, inspectQuietly, resolveArg } from '../resolve.ts';
import { isValidBucketName, markerFits } from '../../paths.ts';

export function pwd(session: Session): void {
  session.reply(Reply.PathCreated, `${quotePath(session.cwd)} is the current directory.`);
}

export async function cwd(session: Session, arg: string): Promise<void> {
  const { path, location } = resolveArg(session, arg);
  const node = await inspectQuietly(session.driver, location);
  if (node.type !== 'dir') throw new FtpError(Reply.FileUnavailable, `${arg}: No such directory.`);
  session.cwd = path;
  session.reply(Reply.FileActionOk, `Directory changed to ${path}.`);
}

export async function cdup(session: Session): Promise<void> {
  await cwd(session, '..');
}

export async function mkd(session: Session, arg: string): Promise<void> {
  const { path, location } = resolveArg(session, arg);
  const driver = session.driver;
  if (location.kind === 'root') throw new FtpError(Reply.FileUnavailable, '/ already exists.');
  if (location.kind === 'bucket') {
    if (!isValidBucketName(location.bucket)) {
      throw new FtpError(Reply.FileNameNotAllowed, 'Invalid bucket name: use 3-63 lowercase letters, digits, dots and hyphens.');
    }
    if (await driver.bucketExists(location.bucket)) throw new FtpError(Reply.FileUnavailable, `${path} already exists.`);
    await driver.createBucket(location.bucket);
  } else {
    if (!markerFits(location.key)) throw new FtpError(Reply.FileNameNotAllowed, 'Path too long: S3 keys are limited to 1024 bytes.');
    if ((await inspect(driver, location)).type !== 'missing') throw new FtpError(Reply.FileUnavailable, `${path} already exists.`);
    await driver.createMarker(location.bucket, `${location.key}/`);
  }
  session.reply(Reply.PathCreated, `${quotePath(path)} created.`);
}

export async function rmd(session: Session, arg: string): Promise<void> {
  const { path, location } = resolveArg(session, arg);
  const driver = session.driver;
  if (location.kind === 'root') throw new FtpError(Reply.FileUnavailable, 'Cannot remove /.');
  if (location.kind === 'bucket') {
    if (!(await driver.bucketExists(location.bucket))) throw new FtpError(Reply.FileUnavailable, `${path}: No such directory.`);
    await driver.deleteBucket(location.bucket);
    session.reply(Reply.FileActionOk, `${path} removed.`);
    return;
  }
  const prefix = `${location.key}/`;
  let marker = false;
  // Two keys decide it: the directory's own marker and anything else.
  for await (const page of driver.listRecursive(location.bucket, prefix)) {
    for (const object of page) {
      if (object.key === prefix) marker = true;
      else throw new FtpError(Reply.FileUnavailable, `${path}: Directory not empty.`);
    }
  }
  if (!marker) throw new FtpError(Reply.FileUnavailable, `${path}: No such directory.`);
  await driver.delete(location.bucket, prefix);
  session.reply(Reply.FileActionOk, `${path} removed.`);
}
