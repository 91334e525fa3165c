// The embedded store: a local directory behind StorageDriver. Top-level folders are buckets, files
// are objects, directories are prefixes; writes go to a temp file that is renamed into place.
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { Entry } from '../listing.ts';
import {
  StorageError,
  type ObjectStat,
  type ObjectSummary,
  type ResumePoint,
  type StorageCapabilities,
  type StorageDriver,
  type WriteOptions,
  type WriteResult,
} from './driver.ts';
import {
  claimPartial,
  discardPartial,
  inProgressPath,
  isPartialName,
  keepPartial,
  partialEntry,
  partialPoint,
  releaseClaim,
} from './local-resume.ts';

/** Folder inside the data directory for the gateway's own files; not a valid bucket name. */
export const STATE_DIR = '.s3ftpd';
const PAGE = 1000;

function errno(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
}

function toStorageError(error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const code = errno(error);
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case 'ENOENT':
      return new StorageError('NotFound', message, code);
    case 'EEXIST':
    case 'EISDIR':
    case 'ENOTDIR':
      return new StorageError('Exists', message, code);
    case 'ENOTEMPTY':
      return new StorageError('NotEmpty', message, code);
    case 'EACCES':
    case 'EPERM':
      return new StorageError('AccessDenied', message, code);
    case 'ENAMETOOLONG':
      return new StorageError('InvalidName', message, code);
    case 'ABORT_ERR':
      return new StorageError('Aborted', message, code);
  }
  return new StorageError('Failed', message, code);
}

/**
 * Removes temp files of uploads that can no longer finish: all of them at start, later those not
 * written for `olderThanMs` (a worker that died mid-upload leaves one behind).
 */
export async function sweepTempFiles(dataDir: string, olderThanMs: number): Promise<number> {
  const tmp = path.join(path.resolve(dataDir), STATE_DIR, 'tmp');
  const names = await fs.readdir(tmp).catch(() => [] as string[]);
  const cutoff = Date.now() - olderThanMs;
  let removed = 0;
  for (const name of names) {
    const file = path.join(tmp, name);
    const info = await fs.stat(file).catch(() => undefined);
    if (info && info.mtimeMs <= cutoff) {
      await fs.rm(file, { force: true });
      removed += 1;
    }
  }
  return removed;
}

export class LocalStorage implements StorageDriver {
  readonly capabilities: StorageCapabilities;
  readonly #root: string;
  readonly #tmp: string;
  /** How long a cut upload stays resumable; undefined when uploads do not resume. */
  readonly #resumeWindowMs: number | undefined;

  constructor(dataDir: string, resumeWindowMs: number | undefined = undefined) {
    this.#root = path.resolve(dataDir);
    this.#tmp = path.join(this.#root, STATE_DIR, 'tmp');
    this.#resumeWindowMs = resumeWindowMs;
    this.capabilities = { append: false, resumableUpload: resumeWindowMs !== undefined, rename: true };
  }

  #bucketPath(bucket: string): string {
    if (bucket === '' || bucket.startsWith('.') || bucket.includes('/') || bucket.includes('\0')) {
      throw new StorageError('InvalidName', `invalid bucket name: ${bucket}`);
    }
    return path.join(this.#root, bucket);
  }

  #objectPath(bucket: string, key: string): string {
    const base = this.#bucketPath(bucket);
    const segments = key.split('/');
    if (key.includes('\0') || segments.some((s) => s === '.' || s === '..')) {
      throw new StorageError('InvalidName', `invalid key: ${key}`);
    }
    const full = path.join(base, ...segments.filter((s) => s !== ''));
    if (full !== base && !full.startsWith(base + path.sep)) throw new StorageError('InvalidName', 'key escapes bucket');
    return full;
  }

  async #run<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw toStorageError(error);
    }
  }

  async listBuckets(): Promise<Entry[]> {
    return this.#run(async () => {
      await fs.mkdir(this.#root, { recursive: true });
      const entries: Entry[] = [];
      for (const dirent of await fs.readdir(this.#root, { withFileTypes: true })) {
        if (!dirent.isDirectory() || dirent.name.startsWith('.')) continue;
        const info = await fs.stat(path.join(this.#root, dirent.name));
        entries.push({ name: dirent.name, type: 'dir', size: 0, modified: info.mtime });
      }
      return entries.sort((a, b) => a.name.localeCompare(b.name));
    });
  }

  async bucketExists(bucket: string): Promise<boolean> {
    const info = await fs.stat(this.#bucketPath(bucket)).catch(() => undefined);
    return info?.isDirectory() ?? false;
  }

  async createBucket(bucket: string): Promise<void> {
    await this.#run(() => fs.mkdir(this.#bucketPath(bucket)));
  }

  async deleteBucket(bucket: string): Promise<void> {
    await this.#run(() => fs.rmdir(this.#bucketPath(bucket)));
  }

  async stat(bucket: string, key: string): Promise<ObjectStat | undefined> {
    if (key === '' || key.endsWith('/') || isPartialName(path.posix.basename(key))) return undefined;
    const info = await fs.stat(this.#objectPath(bucket, key)).catch((error: unknown) => {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return undefined;
      throw toStorageError(error);
    });
    return info?.isFile() ? { size: info.size, modified: info.mtime } : undefined;
  }

  async prefixExists(bucket: string, prefix: string): Promise<boolean> {
    if (!(await this.bucketExists(bucket))) throw new StorageError('NotFound', `no such bucket: ${bucket}`);
    const info = await fs.stat(this.#objectPath(bucket, prefix)).catch(() => undefined);
    return info?.isDirectory() ?? false;
  }

  async *listDirectory(bucket: string, prefix: string): AsyncIterable<Entry[]> {
    const dir = this.#objectPath(bucket, prefix);
    const handle = await this.#run(() => fs.opendir(dir, { bufferSize: 128 }));
    let page: Entry[] = [];
    const files = new Set<string>();
    const partials: string[] = [];
    for await (const dirent of handle) {
      if (prefix === '' && dirent.name === STATE_DIR) continue;
      if (isPartialName(dirent.name)) {
        partials.push(dirent.name);
        continue;
      }
      const info = await fs.stat(path.join(dir, dirent.name)).catch(() => undefined);
      if (!info) continue;
      if (!info.isDirectory()) files.add(dirent.name);
      page.push(
        info.isDirectory()
          ? { name: dirent.name, type: 'dir', size: 0, modified: info.mtime }
          : { name: dirent.name, type: 'file', size: info.size, modified: info.mtime },
      );
      if (page.length >= PAGE) {
        yield page;
        page = [];
      }
    }
    yield [...page, ...(await this.#resumableEntries(dir, partials, files))];
  }

  /** Partial files whose file does not exist (yet) are listed as that file's resumable entry. */
  async #resumableEntries(dir: string, partials: readonly string[], files: ReadonlySet<string>): Promise<Entry[]> {
    const windowMs = this.#resumeWindowMs;
    if (windowMs === undefined) return [];
    const entries: Entry[] = [];
    for (const partial of partials) {
      const entry = await partialEntry(dir, partial, windowMs, Date.now());
      if (entry && !files.has(entry.name)) entries.push(entry);
    }
    return entries;
  }

  async resumePoint(bucket: string, key: string): Promise<ResumePoint | undefined> {
    const windowMs = this.#resumeWindowMs;
    if (windowMs === undefined || key.endsWith('/')) return undefined;
    return this.#run(() => partialPoint(this.#objectPath(bucket, key), windowMs, Date.now()));
  }

  async discardResumable(bucket: string, key: string): Promise<boolean> {
    return this.#run(() => discardPartial(this.#objectPath(bucket, key)));
  }

  async *listRecursive(bucket: string, prefix: string): AsyncIterable<ObjectSummary[]> {
    const start = this.#objectPath(bucket, prefix);
    const pending: Array<{ dir: string; keyPrefix: string }> = [{ dir: start, keyPrefix: prefix }];
    const rootInfo = await fs.stat(start).catch(() => undefined);
    if (!rootInfo?.isDirectory()) return;
    // Directories count as markers so that renaming or removing a tree carries empty folders too.
    if (prefix !== '') yield [{ key: prefix, size: 0, modified: rootInfo.mtime }];
    while (pending.length > 0) {
      const next = pending.pop();
      if (!next) break;
      const page: ObjectSummary[] = [];
      for (const dirent of await this.#run(() => fs.readdir(next.dir, { withFileTypes: true }))) {
        const full = path.join(next.dir, dirent.name);
        const info = await fs.stat(full).catch(() => undefined);
        if (!info) continue;
        if (info.isDirectory()) {
          if (next.keyPrefix === '' && dirent.name === STATE_DIR) continue;
          const keyPrefix = `${next.keyPrefix}${dirent.name}/`;
          page.push({ key: keyPrefix, size: 0, modified: info.mtime });
          pending.push({ dir: full, keyPrefix });
        } else {
          page.push({ key: `${next.keyPrefix}${dirent.name}`, size: info.size, modified: info.mtime });
        }
      }
      if (page.length > 0) yield page;
    }
  }

  async read(bucket: string, key: string, offset: number, signal?: AbortSignal): Promise<Readable> {
    const file = this.#objectPath(bucket, key);
    const info = await this.#run(() => fs.stat(file));
    if (!info.isFile()) throw new StorageError('NotFound', `not a file: ${key}`);
    return createReadStream(file, { start: Math.min(offset, info.size), highWaterMark: 256 * 1024, signal });
  }

  async #tempFile(): Promise<string> {
    await fs.mkdir(this.#tmp, { recursive: true });
    return path.join(this.#tmp, `${Date.now()}-${randomBytes(8).toString('hex')}`);
  }

  async #commit(temp: string, target: string): Promise<void> {
    await fs.mkdir(path.dirname(target), { recursive: true });
    const existing = await fs.stat(target).catch(() => undefined);
    if (existing?.isDirectory()) throw new StorageError('Exists', 'a directory has that name');
    await fs.rename(temp, target);
  }

  async write(bucket: string, key: string, body: Readable, signal: AbortSignal, options: WriteOptions = {}): Promise<WriteResult> {
    if (isPartialName(path.posix.basename(key))) throw new StorageError('InvalidName', 'that name is reserved for the gateway');
    const target = this.#objectPath(bucket, key);
    if (!(await this.bucketExists(bucket))) throw new StorageError('NotFound', `no such bucket: ${bucket}`);
    const continuation = options.resume?.continuation;
    if (continuation?.kind === 'partial-file') return this.#continue(target, continuation.size, body, signal);
    const temp = (this.#resumeWindowMs !== undefined ? await inProgressPath(target) : undefined) ?? (await this.#tempFile());
    const out = createWriteStream(temp);
    try {
      await pipeline(body, out, { signal });
      await this.#commit(temp, target);
      if (this.#resumeWindowMs !== undefined) await discardPartial(target);
      return { bytes: out.bytesWritten };
    } catch (error) {
      const kept = this.#resumeWindowMs !== undefined && (await keepPartial(temp, target, out.bytesWritten).catch(() => false));
      if (!kept) await fs.rm(temp, { force: true });
      throw toStorageError(error);
    }
  }

  /** Appends to the claimed partial file; on success it becomes the file, else it is given back. */
  async #continue(target: string, size: number, body: Readable, signal: AbortSignal): Promise<WriteResult> {
    const claim = await claimPartial(target, size);
    const out = createWriteStream(claim, { flags: 'a' });
    try {
      await pipeline(body, out, { signal });
      await this.#commit(claim, target);
      return { bytes: out.bytesWritten };
    } catch (error) {
      await releaseClaim(claim, target);
      throw toStorageError(error);
    }
  }

  async copy(sourceBucket: string, sourceKey: string, targetBucket: string, targetKey: string): Promise<void> {
    const source = this.#objectPath(sourceBucket, sourceKey);
    const target = this.#objectPath(targetBucket, targetKey);
    if (targetKey.endsWith('/') || sourceKey.endsWith('/')) {
      await this.#run(() => fs.mkdir(target, { recursive: true }));
      return;
    }
    const temp = await this.#tempFile();
    try {
      await fs.copyFile(source, temp);
      await this.#commit(temp, target);
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw toStorageError(error);
    }
  }

  async rename(sourceBucket: string, sourceKey: string, targetBucket: string, targetKey: string): Promise<void> {
    const source = this.#objectPath(sourceBucket, sourceKey);
    const target = this.#objectPath(targetBucket, targetKey);
    await this.#run(() => this.#commit(source, target));
  }

  async delete(bucket: string, key: string): Promise<void> {
    const target = this.#objectPath(bucket, key);
    await this.#run(() => (key.endsWith('/') ? fs.rmdir(target) : fs.unlink(target)));
  }

  async createMarker(bucket: string, prefix: string): Promise<void> {
    if (!(await this.bucketExists(bucket))) throw new StorageError('NotFound', `no such bucket: ${bucket}`);
    await this.#run(() => fs.mkdir(this.#objectPath(bucket, prefix), { recursive: true }));
  }

  close(): void {}
}
