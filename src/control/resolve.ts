// Resolving a command's path argument against the session, and asking storage what lives there.
import { resolvePath, locate, keyFits, type Location } from '../paths.ts';
import { StorageError, type ObjectStat, type ResumePoint, type StorageDriver } from '../storage/driver.ts';
import { FtpError, Reply } from './replies.ts';

export interface Resolved {
  readonly path: string;
  readonly location: Location;
}

export type Node =
  | { readonly type: 'dir' }
  /** A stored object, or a resumable upload (SPEC §7) sized by its offset. */
  | { readonly type: 'file'; readonly stat: ObjectStat; readonly resumable?: ResumePoint }
  | { readonly type: 'missing' };

/** `arg` against `cwd`, mapped to a location; NUL bytes never get here (the dispatcher refuses them). */
export function resolveArg(session: { readonly cwd: string }, arg: string): Resolved {
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
      if (await driver.prefixExists(location.bucket, `${location.key}/`)) return { type: 'dir' };
      const resumable = await driver.resumePoint?.(location.bucket, location.key);
      return resumable ? { type: 'file', stat: { size: resumable.offset, modified: resumable.started }, resumable } : { type: 'missing' };
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
