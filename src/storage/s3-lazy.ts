// The S3 driver as drivers are handed out (index.ts): the AWS SDK (about 33 MiB per thread) is
// loaded on the first call, not at start, so an idle gateway and each data worker that has not yet
// served S3 do without it (bench/RESULTS.md 22). Every call goes to the real driver (s3.ts).
import type { Readable } from 'node:stream';
import type { Entry } from '../listing.ts';
import type {
  ObjectStat,
  ObjectSummary,
  ResumePoint,
  StorageCallObserver,
  StorageCapabilities,
  StorageDriver,
  StorageTarget,
  WriteOptions,
  WriteResult,
} from './driver.ts';

type S3Target = Extract<StorageTarget, { kind: 's3' }>;
/** The real driver, as a type only: s3.ts is loaded on the first call. */
type S3Driver = InstanceType<(typeof import('./s3.ts'))['S3Storage']>;

/** What an S3 target can do: no append or rename (S3 has neither), resumable when allowed. */
export function s3Capabilities(target: S3Target): StorageCapabilities {
  return { append: false, resumableUpload: target.resumeWindowMs !== undefined, rename: false };
}

export class LazyS3Storage implements StorageDriver {
  readonly capabilities: StorageCapabilities;
  readonly #target: S3Target;
  readonly #observe: StorageCallObserver;
  #driver: Promise<S3Driver> | undefined;
  #loaded: S3Driver | undefined;

  constructor(target: S3Target, observe: StorageCallObserver) {
    this.capabilities = s3Capabilities(target);
    this.#target = target;
    this.#observe = observe;
  }

  #real(): Promise<S3Driver> {
    this.#driver ??= import('./s3.ts').then(({ S3Storage }) => {
      this.#loaded = new S3Storage(this.#target, this.#observe);
      return this.#loaded;
    });
    return this.#driver;
  }

  async listBuckets(): Promise<Entry[]> {
    return (await this.#real()).listBuckets();
  }

  async bucketExists(bucket: string): Promise<boolean> {
    return (await this.#real()).bucketExists(bucket);
  }

  async createBucket(bucket: string): Promise<void> {
    return (await this.#real()).createBucket(bucket);
  }

  async deleteBucket(bucket: string): Promise<void> {
    return (await this.#real()).deleteBucket(bucket);
  }

  async stat(bucket: string, key: string): Promise<ObjectStat | undefined> {
    return (await this.#real()).stat(bucket, key);
  }

  async prefixExists(bucket: string, prefix: string): Promise<boolean> {
    return (await this.#real()).prefixExists(bucket, prefix);
  }

  async *listDirectory(bucket: string, prefix: string): AsyncIterable<Entry[]> {
    yield* (await this.#real()).listDirectory(bucket, prefix);
  }

  async *listRecursive(bucket: string, prefix: string): AsyncIterable<ObjectSummary[]> {
    yield* (await this.#real()).listRecursive(bucket, prefix);
  }

  async read(bucket: string, key: string, offset: number, signal?: AbortSignal): Promise<Readable> {
    return (await this.#real()).read(bucket, key, offset, signal);
  }

  async write(bucket: string, key: string, body: Readable, signal: AbortSignal, options?: WriteOptions): Promise<WriteResult> {
    return (await this.#real()).write(bucket, key, body, signal, options);
  }

  async resumePoint(bucket: string, key: string): Promise<ResumePoint | undefined> {
    const driver = await this.#real();
    return driver.resumePoint?.(bucket, key);
  }

  async discardResumable(bucket: string, key: string): Promise<boolean> {
    const driver = await this.#real();
    return (await driver.discardResumable?.(bucket, key)) ?? false;
  }

  async copy(sourceBucket: string, sourceKey: string, targetBucket: string, targetKey: string, size: number): Promise<void> {
    return (await this.#real()).copy(sourceBucket, sourceKey, targetBucket, targetKey, size);
  }

  async delete(bucket: string, key: string): Promise<void> {
    return (await this.#real()).delete(bucket, key);
  }

  async createMarker(bucket: string, prefix: string): Promise<void> {
    return (await this.#real()).createMarker(bucket, prefix);
  }

  /** Whether the key pair is genuine (s3.ts), checked with this driver's own S3 client. */
  async verifyCredentials(): Promise<boolean> {
    return (await this.#real()).verifyCredentials();
  }

  close(): void {
    this.#loaded?.close();
  }
}
