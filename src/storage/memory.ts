// A store held in this thread's memory, with S3's shape (buckets of keys, `/`-ending markers), for
// the in-process test harness: handlers run against it without a process, a disk or an S3 server.
// Stores are named and live as long as the thread; the inline data plane runs in the same thread.
import { Readable } from 'node:stream';
import type { Entry } from '../listing.ts';
import { StorageError, type ObjectStat, type ObjectSummary, type StorageCapabilities, type StorageDriver, type WriteResult } from './driver.ts';

interface StoredObject {
  readonly data: Buffer;
  readonly modified: Date;
}

const PAGE = 1000;

export class MemoryStorage implements StorageDriver {
  readonly capabilities: StorageCapabilities = { append: false, resumableUpload: false, rename: false };
  readonly #buckets = new Map<string, { readonly created: Date; readonly objects: Map<string, StoredObject> }>();

  #objects(bucket: string): Map<string, StoredObject> {
    const found = this.#buckets.get(bucket);
    if (!found) throw new StorageError('NotFound', `no such bucket: ${bucket}`, 'NoSuchBucket');
    return found.objects;
  }

  #sortedKeys(bucket: string, prefix: string): string[] {
    return [...this.#objects(bucket).keys()].filter((key) => key.startsWith(prefix)).sort();
  }

  async listBuckets(): Promise<Entry[]> {
    return [...this.#buckets].sort(([a], [b]) => a.localeCompare(b)).map(([name, b]) => ({ name, type: 'dir', size: 0, modified: b.created }));
  }

  async bucketExists(bucket: string): Promise<boolean> {
    return this.#buckets.has(bucket);
  }

  async createBucket(bucket: string): Promise<void> {
    if (this.#buckets.has(bucket)) throw new StorageError('Exists', `bucket exists: ${bucket}`, 'BucketAlreadyOwnedByYou');
    this.#buckets.set(bucket, { created: new Date(), objects: new Map() });
  }

  async deleteBucket(bucket: string): Promise<void> {
    if (this.#objects(bucket).size > 0) throw new StorageError('NotEmpty', `bucket not empty: ${bucket}`, 'BucketNotEmpty');
    this.#buckets.delete(bucket);
  }

  async stat(bucket: string, key: string): Promise<ObjectStat | undefined> {
    const found = this.#objects(bucket).get(key);
    return found && !key.endsWith('/') ? { size: found.data.length, modified: found.modified } : undefined;
  }

  async prefixExists(bucket: string, prefix: string): Promise<boolean> {
    return this.#sortedKeys(bucket, prefix).length > 0;
  }

  async *listDirectory(bucket: string, prefix: string): AsyncIterable<Entry[]> {
    const objects = this.#objects(bucket);
    const seenDirs = new Set<string>();
    let page: Entry[] = [];
    for (const key of this.#sortedKeys(bucket, prefix)) {
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash >= 0) {
        const name = rest.slice(0, slash);
        if (name === '' || seenDirs.has(name)) continue;
        seenDirs.add(name);
        page.push({ name, type: 'dir', size: 0 });
      } else if (rest !== '') {
        const found = objects.get(key);
        page.push({ name: rest, type: 'file', size: found?.data.length ?? 0, modified: found?.modified });
      }
      if (page.length >= PAGE) {
        yield page;
        page = [];
      }
    }
    yield page;
  }

  async *listRecursive(bucket: string, prefix: string): AsyncIterable<ObjectSummary[]> {
    const objects = this.#objects(bucket);
    const keys = this.#sortedKeys(bucket, prefix);
    for (let i = 0; i === 0 || i < keys.length; i += PAGE) {
      yield keys.slice(i, i + PAGE).map((key) => {
        const found = objects.get(key);
        return { key, size: found?.data.length ?? 0, modified: found?.modified ?? new Date(0) };
      });
    }
  }

  async read(bucket: string, key: string, offset: number): Promise<Readable> {
    const found = this.#objects(bucket).get(key);
    if (!found) throw new StorageError('NotFound', `no such key: ${key}`, 'NoSuchKey');
    return Readable.from([found.data.subarray(Math.min(offset, found.data.length))]);
  }

  async write(bucket: string, key: string, body: Readable, signal: AbortSignal): Promise<WriteResult> {
    const objects = this.#objects(bucket);
    const chunks: Buffer[] = [];
    for await (const chunk of body) {
      if (signal.aborted) throw new StorageError('Aborted', 'upload cancelled');
      chunks.push(chunk as Buffer);
    }
    if (signal.aborted) throw new StorageError('Aborted', 'upload cancelled');
    const data = Buffer.concat(chunks);
    objects.set(key, { data, modified: new Date() });
    return { bytes: data.length };
  }

  async copy(sourceBucket: string, sourceKey: string, targetBucket: string, targetKey: string): Promise<void> {
    const found = this.#objects(sourceBucket).get(sourceKey);
    if (!found) throw new StorageError('NotFound', `no such key: ${sourceKey}`, 'NoSuchKey');
    this.#objects(targetBucket).set(targetKey, { data: found.data, modified: new Date() });
  }

  async delete(bucket: string, key: string): Promise<void> {
    this.#objects(bucket).delete(key);
  }

  async createMarker(bucket: string, prefix: string): Promise<void> {
    this.#objects(bucket).set(prefix, { data: Buffer.alloc(0), modified: new Date() });
  }

  close(): void {}
}

const stores = new Map<string, MemoryStorage>();

/** The named store of this thread, made on first use. */
export function memoryStore(name: string): MemoryStorage {
  let store = stores.get(name);
  if (!store) {
    store = new MemoryStorage();
    stores.set(name, store);
  }
  return store;
}
