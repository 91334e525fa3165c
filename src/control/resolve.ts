// Resolving a command's path argument against the session and asking storage what lives there.
import { resolvePath, locate, keyFits, type Location } from '../paths.ts';
import { StorageError, type ObjectStat, type StorageDriver } from '../storage/driver.ts';
import { Reply } from './replies.ts';
import type { Session } from './session.ts';
import { log } from '../log.ts';

export interface Resolved {
  readonly path: string;
  readonly location: Location;
}

export type Node =
  | { readonly type: 'dir' }
  | { readonly type: 'file'; readonly stat: ObjectStat }
  | { readonly type: 'missing' };

/** A reply-worthy refusal raised by handlers; the dispatcher sends it. */
export class FtpError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

export function resolveArg(session: Session, arg: string): Resolved {
  if (arg.includes('\0')) throw new FtpError(Reply.SyntaxErrorArgs, 'Invalid character in path.');
  const path = resolvePath(session.cwd, arg);
  const location = locate(path);
  if (location.kind === 'object' && !keyFits(location.key)) {
    throw new FtpError(Reply.FileNameNotAllowed, 'Path too long: S3 keys are limited to 1024 bytes.');
  }
  return { path, location };
}

export async function inspect(driver: StorageDriver, location: Location): Promise<Node> {
  switch (location.kind) {
    case 'root':
      return { type: 'dir' };
    case 'bucket':
      return (await driver.bucketExists(location.bucket)) ? { type: 'dir' } : { type: 'missing' };
    case 'object': {
      const stat = await driver.stat(location.bucket, location.key);
      if (stat) return { type: 'file', stat };
      return (await driver.prefixExists(location.bucket, `${location.key}/`)) ? { type: 'dir' } : { type: 'missing' };
    }
  }
}

/** Like `inspect`, but a missing bucket reads as missing instead of an error. */
export async function inspectQuietly(driver: StorageDriver, location: Location): Promise<Node> {
  try {
    return await inspect(driver, location);
  } catch (error) {
    if (error instanceof StorageError && error.kind === 'NotFound') return { type: 'missing' };
    throw error;
  }
}

/** The one place storage errors become FTP replies; the backend's details go to the log only. */
export function replyForError(session: Session, error: unknown, context: string): void {
  if (error instanceof FtpError) {
    session.reply(error.code, error.message);
    // 421 means the server is closing this control connection (RFC 959).
    if (error.code === Reply.ServiceNotAvailable) session.close();
    return;
  }
  if (!(error instanceof StorageError)) throw error;
  log.info('storage error', {
    session: session.id,
    context,
    kind: error.kind,
    code: error.backendCode,
    requestId: error.requestId,
    error: error.message,
  });
  const [code, message] = storageErrorReply(error.kind);
  session.reply(code, message);
}

export function storageErrorReply(kind: StorageError['kind'] | 'Connection'): [number, string] {
  switch (kind) {
    case 'NotFound':
      return [Reply.FileUnavailable, 'No such file or directory.'];
    case 'AccessDenied':
      return [Reply.FileUnavailable, 'Permission denied.'];
    case 'Exists':
      return [Reply.FileUnavailable, 'File or directory exists.'];
    case 'NotEmpty':
      return [Reply.FileUnavailable, 'Directory not empty.'];
    case 'InvalidName':
      return [Reply.FileNameNotAllowed, 'File name not allowed.'];
    case 'InvalidCredentials':
      return [Reply.NotLoggedIn, 'Credentials rejected by storage.'];
    case 'Aborted':
    case 'Connection':
      return [Reply.TransferAborted, 'Connection closed; transfer aborted.'];
    case 'Unavailable':
      return [Reply.LocalError, 'Storage temporarily unavailable; try again.'];
    case 'Failed':
      return [Reply.LocalError, 'Storage error; action aborted.'];
  }
}
