// The storage interface every backend implements, and its error kinds.
import type { Readable } from 'node:stream';
import type { Entry } from '../listing.ts';

export type StorageErrorKind =
  | 'NotFound'
  | 'AccessDenied'
  | 'Exists'
  | 'NotEmpty'
  | 'InvalidName'
  | 'InvalidCredentials'
  /** Another session changed the same thing at the same time (a resumable upload both continued). */
  | 'Conflict'
  | 'Unavailable'
  | 'Aborted'
  | 'Failed';

export class StorageError extends Error {
  readonly kind: StorageErrorKind;
  /** The backend's own code (e.g. S3's `NoSuchBucket`), for logs only. */
  readonly backendCode: string | undefined;
  /** The backend's request id (S3's x-amz-request-id), for logs only. */
  readonly requestId: string | undefined;
  constructor(kind: StorageErrorKind, message: string, backendCode?: string, requestId?: string) {
    super(message);
    this.name = 'StorageError';
    this.kind = kind;
    this.backendCode = backendCode;
    this.requestId = requestId;
  }
}

export interface ObjectStat {
  readonly size: number;
  readonly modified: Date;
}

export interface ObjectSummary extends ObjectStat {
  readonly key: string;
}

/**
 * An upload body that writes its bytes straight into the caller's buffer (the native TLS engine
 * decrypts into the part buffer) instead of handing out a Buffer per read. It is still a Readable
 * for 'error' and 'close'; its 'fillable' event says that fill() or fillState() may have news.
 */
export interface FillableBody {
  /** Moves bytes that arrived into target[offset..], at most to its end; returns how many. */
  fill(target: Buffer, offset: number): number;
  /** 'data': bytes wait; 'end': the body ended cleanly and every byte was filled; 'none': wait. */
  fillState(): 'data' | 'end' | 'none';
}

export function isFillable(body: Readable): body is Readable & FillableBody {
  const candidate = body as Readable & Partial<FillableBody>;
  return typeof candidate.fill === 'function' && typeof candidate.fillState === 'function';
}

export interface WriteResult {
  readonly bytes: number;
}

/** A part S3 stored for a multipart upload. */
export interface StoredPart {
  readonly number: number;
  readonly etag: string;
  readonly size: number;
}

/**
 * Where a resumable upload (SPEC §7: a cut upload of a key that has no object yet) stands: the
 * byte offset the client continues from, when it started, and what the backend needs to continue.
 * Plain data: it crosses to the worker that runs the continuing upload.
 */
export interface ResumePoint {
  readonly offset: number;
  readonly started: Date;
  readonly continuation:
    | { readonly kind: 'multipart'; readonly uploadId: string; readonly parts: readonly StoredPart[] }
    | { readonly kind: 'partial-file'; readonly size: number };
}

export interface WriteOptions {
  /** Continue this resumable upload instead of starting afresh. */
  readonly resume?: ResumePoint;
}

/** What a backend can do beyond the common interface; handlers ask instead of assuming S3. */
export interface StorageCapabilities {
  /** APPE adds to an existing object (S3 objects are written whole: no). */
  readonly append: boolean;
  /** STOR after REST n continues an interrupted upload of the same file. */
  readonly resumableUpload: boolean;
  /** `rename` moves an object in place; without it a rename copies, then deletes. */
  readonly rename: boolean;
}

/** One timed call to the backend (an S3 request), for metrics. */
export interface StorageCall {
  readonly operation: string;
  readonly seconds: number;
  /** The backend's error code, or undefined for a success. */
  readonly error: string | undefined;
}

export type StorageCallObserver = (call: StorageCall) => void;

export interface StorageDriver {
  readonly capabilities: StorageCapabilities;
  /** Buckets the key can list; empty when listing is denied. */
  listBuckets(): Promise<Entry[]>;
  /** Whether the bucket exists and the key may use it. */
  bucketExists(bucket: string): Promise<boolean>;
  createBucket(bucket: string): Promise<void>;
  deleteBucket(bucket: string): Promise<void>;
  /** The object's size and time, or undefined when there is no such object. */
  stat(bucket: string, key: string): Promise<ObjectStat | undefined>;
  /** True when anything (a marker or any key) lives under `prefix` (which ends in `/`). */
  prefixExists(bucket: string, prefix: string): Promise<boolean>;
  /** One directory level under `prefix`, page by page; markers of the directory itself are left out. */
  listDirectory(bucket: string, prefix: string): AsyncIterable<Entry[]>;
  /** Every key under `prefix`, recursively, page by page. */
  listRecursive(bucket: string, prefix: string): AsyncIterable<ObjectSummary[]>;
  /** The object's bytes from `offset` on. */
  read(bucket: string, key: string, offset: number, signal?: AbortSignal): Promise<Readable>;
  /**
   * Stores `body` as the object; nothing is visible unless the whole body arrived. Where
   * `capabilities.resumableUpload`, a cut upload of a key with no object stays resumable.
   */
  write(bucket: string, key: string, body: Readable, signal: AbortSignal, options?: WriteOptions): Promise<WriteResult>;
  /** The key's resumable upload, if any (only where `capabilities.resumableUpload`). */
  resumePoint?(bucket: string, key: string): Promise<ResumePoint | undefined>;
  /** Removes the key's resumable upload; false when there was none. */
  discardResumable?(bucket: string, key: string): Promise<boolean>;
  copy(sourceBucket: string, sourceKey: string, targetBucket: string, targetKey: string, size: number): Promise<void>;
  /** Moves an object in place (only where `capabilities.rename`). */
  rename?(sourceBucket: string, sourceKey: string, targetBucket: string, targetKey: string): Promise<void>;
  delete(bucket: string, key: string): Promise<void>;
  /** Creates the zero-byte directory marker `prefix` (ending in `/`). */
  createMarker(bucket: string, prefix: string): Promise<void>;
  /** Releases sockets and handles. */
  close(): void;
}

/** Where a session's storage lives; plain data so it can cross to worker threads. */
export type StorageTarget =
  | {
      readonly kind: 's3';
      readonly endpoint: string | undefined;
      readonly region: string;
      readonly pathStyle: boolean;
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly partSize: number;
      readonly queueSize: number;
      /** An S3 request with no progress for this long fails (and idempotent ones are retried). */
      readonly requestTimeoutMs: number;
      /** Upload bodies are not hashed for SigV4 (TLS or the operator vouches for integrity). */
      readonly unsignedPayload: boolean;
      /** The HTTP client under the SDK (undici-handler.ts, or node:http). */
      readonly http: 'undici' | 'node';
      /** How long a cut upload stays resumable; undefined when uploads do not resume. */
      readonly resumeWindowMs: number | undefined;
    }
  | { readonly kind: 'local'; readonly dataDir: string; readonly resumeWindowMs: number | undefined }
  /** A store held in this thread's memory (storage/memory.ts), for the in-process test harness. */
  | { readonly kind: 'memory'; readonly name: string };
