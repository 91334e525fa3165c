// Resumable uploads in the embedded store (SPEC §7), the local counterpart of s3-resume.ts: the
// bytes of a cut upload of a new file are kept next to it as `.s3ftpd-partial-<name>`, which
// listings show only as that file's resumable entry. An upload of a new file is written next to
// it from the start (`….<random>.upload`), so that even a gateway killed mid-upload leaves its
// bytes: the next start turns them into the partial file. A session that continues a partial file
// first claims it by renaming it to `….claimed` (one rename wins, so two sessions never append to
// one file); a claim left by a crash is given back at the next start, or once it has not been
// written for CLAIM_STALE_MS.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Entry } from '../listing.ts';
import { StorageError, type ResumePoint } from './driver.ts';

export const PARTIAL_PREFIX = '.s3ftpd-partial-';
const CLAIM_SUFFIX = '.claimed';
const UPLOAD_SUFFIX = '.upload';
const CLAIM_STALE_MS = 10 * 60_000;
/** Longest name a partial file can carry (an upload's random suffix included, within 255 bytes). */
const MAX_NAME_BYTES = 255 - Buffer.byteLength(`${PARTIAL_PREFIX}.0123456789abcdef${UPLOAD_SUFFIX}`);

export function isPartialName(name: string): boolean {
  return name.startsWith(PARTIAL_PREFIX);
}

function partialOf(target: string): string {
  return path.join(path.dirname(target), PARTIAL_PREFIX + path.basename(target));
}

function claimOf(target: string): string {
  return partialOf(target) + CLAIM_SUFFIX;
}

function startOf(info: { birthtimeMs: number; mtime: Date }): Date {
  return info.birthtimeMs > 0 ? new Date(info.birthtimeMs) : info.mtime;
}

async function exists(file: string): Promise<boolean> {
  return (await fs.stat(file).catch(() => undefined)) !== undefined;
}

/** A claim nobody has written to for a long time belongs to a session that is gone. */
async function reviveStaleClaim(target: string, now: number): Promise<void> {
  const claim = claimOf(target);
  const info = await fs.stat(claim).catch(() => undefined);
  if (info && now - info.mtimeMs > CLAIM_STALE_MS && !(await exists(partialOf(target)))) {
    await fs.rename(claim, partialOf(target)).catch(() => undefined);
  }
}

export async function partialPoint(target: string, windowMs: number, now: number): Promise<ResumePoint | undefined> {
  await reviveStaleClaim(target, now);
  const partial = partialOf(target);
  const info = await fs.stat(partial).catch(() => undefined);
  if (!info?.isFile()) {
    // Another session is continuing it right now: busy (450), not "no upload to continue".
    if (await exists(claimOf(target))) throw new StorageError('Conflict', 'the interrupted upload is being continued by another session');
    return undefined;
  }
  if (now - info.mtimeMs > windowMs) {
    await fs.rm(partial, { force: true });
    return undefined;
  }
  return { offset: info.size, started: startOf(info), continuation: { kind: 'partial-file', size: info.size } };
}

/**
 * Where an upload of a new file writes while it runs: next to it when its directory exists and the
 * name leaves room (so a crash leaves the bytes where the next start finds them), else undefined
 * (the store's temp folder).
 */
export async function inProgressPath(target: string): Promise<string | undefined> {
  // An upload over an existing file is never kept: it goes to the temp folder, as before.
  if (Buffer.byteLength(path.basename(target)) > MAX_NAME_BYTES || (await exists(target))) return undefined;
  const directory = await fs.stat(path.dirname(target)).catch(() => undefined);
  if (!directory?.isDirectory()) return undefined;
  return `${partialOf(target)}.${randomBytes(8).toString('hex')}${UPLOAD_SUFFIX}`;
}

/** Keeps the bytes of a cut upload of a new file; false when there is a file, or no room for the name. */
export async function keepPartial(temp: string, target: string, bytes: number): Promise<boolean> {
  if (bytes === 0 || Buffer.byteLength(path.basename(target)) > MAX_NAME_BYTES || (await exists(target))) return false;
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.rename(temp, partialOf(target));
  return true;
}

/** Takes the partial file for this session; 450 when another session has it or it changed. */
export async function claimPartial(target: string, expectedSize: number): Promise<string> {
  const claim = claimOf(target);
  try {
    await fs.rename(partialOf(target), claim);
  } catch {
    throw new StorageError('Conflict', 'the interrupted upload is being continued by another session');
  }
  const info = await fs.stat(claim);
  if (info.size !== expectedSize) {
    await releaseClaim(claim, target);
    throw new StorageError('Conflict', 'the interrupted upload changed since its offset was read');
  }
  return claim;
}

/** Gives a claimed partial back after a failed continuation, unless a newer one took its place. */
export async function releaseClaim(claim: string, target: string): Promise<void> {
  if (await exists(partialOf(target))) await fs.rm(claim, { force: true });
  else await fs.rename(claim, partialOf(target)).catch(() => undefined);
}

/** Removes the partial file (DELE; a complete upload replacing an earlier attempt); false when there was none. */
export async function discardPartial(target: string): Promise<boolean> {
  try {
    await fs.rm(partialOf(target));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** The resumable entry of a partial file in a listing (its file's name, sized by its offset). */
export async function partialEntry(dir: string, partialName: string, windowMs: number, now: number): Promise<Entry | undefined> {
  const name = partialName.slice(PARTIAL_PREFIX.length);
  if (name === '' || name.endsWith(CLAIM_SUFFIX) || name.endsWith(UPLOAD_SUFFIX)) return undefined;
  const point = await partialPoint(path.join(dir, name), windowMs, now);
  return point ? { name, type: 'file', size: point.offset, modified: point.started, resumable: true } : undefined;
}

/**
 * Removes partial files (and stale claims) older than the window anywhere in the store: the ones
 * nobody looks at again. Walks the whole tree, so it runs rarely (see backend.ts).
 */
export async function sweepExpiredPartials(dataDir: string, windowMs: number, now: number): Promise<number> {
  const names = await fs.readdir(dataDir, { recursive: true }).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    if (!path.basename(name).startsWith(PARTIAL_PREFIX)) continue;
    const file = path.join(dataDir, name);
    const info = await fs.stat(file).catch(() => undefined);
    const stale = info?.isFile() === true && now - info.mtimeMs > Math.max(windowMs, name.endsWith(CLAIM_SUFFIX) ? CLAIM_STALE_MS : 0);
    if (!stale) continue;
    await fs.rm(file, { force: true });
    removed += 1;
  }
  return removed;
}

/** The file an in-progress upload or a claim stands for: `…/.s3ftpd-partial-<name>[.x].upload|.claimed` → `…/<name>`. */
function targetOfLeftover(file: string): string | undefined {
  const base = path.basename(file);
  if (!base.startsWith(PARTIAL_PREFIX)) return undefined;
  let name = base.slice(PARTIAL_PREFIX.length);
  if (name.endsWith(CLAIM_SUFFIX)) name = name.slice(0, -CLAIM_SUFFIX.length);
  else if (name.endsWith(UPLOAD_SUFFIX)) name = name.slice(0, -UPLOAD_SUFFIX.length).replace(/\.[0-9a-f]{16}$/, '');
  else return undefined;
  return name === '' ? undefined : path.join(path.dirname(file), name);
}

/**
 * At start, no session holds anything: uploads a killed gateway was receiving become partial files
 * (unless the file or a partial file exists), and claims go back to being partial files.
 */
export async function reviveLeftovers(dataDir: string): Promise<number> {
  const names = await fs.readdir(dataDir, { recursive: true }).catch(() => [] as string[]);
  let revived = 0;
  for (const name of names) {
    const file = path.join(dataDir, name);
    const target = targetOfLeftover(file);
    if (target === undefined) continue;
    if ((await exists(target)) || (await exists(partialOf(target)))) {
      await fs.rm(file, { force: true });
      continue;
    }
    await fs.rename(file, partialOf(target)).catch(() => undefined);
    revived += 1;
  }
  return revived;
}
