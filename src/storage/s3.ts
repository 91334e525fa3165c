// The S3 implementation of StorageDriver. S3 errors become StorageErrors in `toStorageError` only.
import { Readable } from 'node:stream';
import {
  S3Client,
  ListBucketsCommand,
  HeadBucketCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  GetObjectCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  CompleteMultipartUploadCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { abortMultipartUpload, multipartEtag, uploadStream, type UploadOutcome, type UploadRequest } from './s3-upload.ts';
import {
  RECORD_PREFIX,
  currentResumePoint,
  discardReplaced,
  discardResumable,
  forgetResumable,
  isRecordKey,
  keepResumable,
  ownerOf,
  resumableEntries,
  type ResumeScope,
} from './s3-resume.ts';
import { partBuffers } from './part-buffers.ts';
import { UndiciHttpHandler } from './undici-handler.ts';
import { s3Capabilities } from './s3-lazy.ts';
import type { Entry } from '../listing.ts';
import {
  StorageError,
  type ObjectStat,
  type ObjectSummary,
  type ResumePoint,
  type StoredPart,
  type WriteOptions,
  type StorageCallObserver,
  type StorageCapabilities,
  type StorageDriver,
  type StorageErrorKind,
  type StorageTarget,
  type WriteResult,
} from './driver.ts';

type S3Target = Extract<StorageTarget, { kind: 's3' }>;

const COPY_LIMIT = 5 * 1024 ** 3;
const UNSIGNED_OPERATIONS = new Set(['PutObjectCommand', 'UploadPartCommand']);
const COPY_PART = 1024 ** 3;

interface S3ErrorShape {
  name?: string;
  Code?: string;
  /** Node's system error code (ECONNREFUSED…): the SDK passes network errors through as they are. */
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

function describe(error: unknown): S3ErrorShape {
  return typeof error === 'object' && error !== null ? error : {};
}

/** Maps any S3 SDK error to a StorageError; the one place S3 error codes are interpreted. */
export function toStorageError(error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const mapped = classify(error);
  const requestId = describe(error).$metadata?.requestId;
  return requestId === undefined ? mapped : new StorageError(mapped.kind, mapped.message, mapped.backendCode, requestId);
}

/** S3 error codes (and Node's network error codes, which the SDK passes through) by kind. */
const KIND_OF_CODE: ReadonlyMap<string, StorageErrorKind> = new Map([
  ...['NoSuchBucket', 'NoSuchKey', 'NotFound', 'NoSuchUpload'].map((code) => [code, 'NotFound'] as const),
  ...['AccessDenied', 'Forbidden', 'AllAccessDisabled'].map((code) => [code, 'AccessDenied'] as const),
  ...['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken'].map((code) => [code, 'InvalidCredentials'] as const),
  ...['BucketAlreadyExists', 'BucketAlreadyOwnedByYou'].map((code) => [code, 'Exists'] as const),
  ['BucketNotEmpty', 'NotEmpty'] as const,
  ...['InvalidBucketName', 'KeyTooLongError', 'InvalidArgument'].map((code) => [code, 'InvalidName'] as const),
  ['AbortError', 'Aborted'] as const,
  ...['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ETIMEDOUT', 'ENOTFOUND', 'TimeoutError', 'SlowDown', 'ServiceUnavailable'].map(
    (code) => [code, 'Unavailable'] as const,
  ),
]);

/**
 * A continued upload that S3 no longer has, or whose parts another session overwrote: someone
 * else continued or removed it. The client is told the file is busy (450), not that it is missing.
 */
function asConflict(error: StorageError): StorageError {
  const raced = ['NoSuchUpload', 'NoSuchKey', 'InvalidPart'].includes(error.backendCode ?? '');
  return raced ? new StorageError('Conflict', error.message, error.backendCode, error.requestId) : error;
}

/** The resume records are the gateway's own: FTP can neither see nor touch them. */
function refuseRecordKey(key: string): void {
  if (isRecordKey(key)) throw new StorageError('NotFound', 'no such file or directory');
}

function kindOfStatus(status: number | undefined): StorageErrorKind {
  if (status === 404) return 'NotFound';
  if (status === 403) return 'AccessDenied';
  if (status !== undefined && status >= 500) return 'Unavailable';
  return 'Failed';
}

function classify(error: unknown): StorageError {
  const e = describe(error);
  const code = e.Code ?? (e.code?.startsWith('E') ? e.code : undefined) ?? e.name ?? 'Unknown';
  const kind = KIND_OF_CODE.get(code) ?? kindOfStatus(e.$metadata?.httpStatusCode);
  return new StorageError(kind, e.message ?? String(error), code);
}

export function createS3Client(target: S3Target, observe: StorageCallObserver): S3Client {
  const client = new S3Client({
    region: target.region,
    endpoint: target.endpoint,
    forcePathStyle: target.pathStyle,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    // A streamed body of unknown length with a trailing checksum is refused by radosgw (411).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    requestHandler:
      target.http === 'undici'
        ? new UndiciHttpHandler({ connectionTimeoutMs: Math.min(target.requestTimeoutMs, 10_000), requestTimeoutMs: target.requestTimeoutMs })
        : // Without throwOnRequestTimeout the handler only warns, and a hung S3 hangs the transfer.
          { connectionTimeout: Math.min(target.requestTimeoutMs, 10_000), requestTimeout: target.requestTimeoutMs, throwOnRequestTimeout: true },
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const started = performance.now();
      const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
      try {
        const result = await next(args);
        observe({ operation, seconds: (performance.now() - started) / 1000, error: undefined });
        return result;
      } catch (error) {
        const e = describe(error);
        observe({ operation, seconds: (performance.now() - started) / 1000, error: e.Code ?? e.name ?? 'Unknown' });
        throw error;
      }
    },
    { step: 'initialize', name: 's3ftpdMetrics' },
  );
  if (target.unsignedPayload) {
    // SigV4 takes a payload hash header as given, so the body is never hashed.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const request = args.request as { headers?: Record<string, string> };
        if (UNSIGNED_OPERATIONS.has(context.commandName ?? '') && request.headers) {
          request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        }
        return next(args);
      },
      { step: 'build', name: 's3ftpdUnsignedPayload' },
    );
  }
  return client;
}

/** Asks S3 whether the key pair is genuine: a denied ListBuckets still proves the key exists. */
async function verifyCredentials(client: S3Client, timeoutMs: number): Promise<boolean> {
  try {
    await client.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.timeout(timeoutMs) });
    return true;
  } catch (error) {
    const mapped = toStorageError(error);
    if (mapped.kind === 'AccessDenied') return true;
    if (mapped.kind === 'InvalidCredentials') return false;
    // Anything else says nothing about the key: the login is not counted as failed (no ban).
    throw mapped.kind === 'Aborted' ? new StorageError('Unavailable', 'S3 did not answer in time') : mapped;
  }
}

export class S3Storage implements StorageDriver {
  readonly capabilities: StorageCapabilities;
  readonly #client: S3Client;
  readonly #target: S3Target;

  readonly #resumeOwner: string;

  constructor(target: S3Target, observe: StorageCallObserver) {
    this.#target = target;
    this.capabilities = s3Capabilities(target);
    this.#resumeOwner = ownerOf(target.accessKeyId);
    this.#client = createS3Client(target, observe);
  }

  /** Whether the key pair is genuine (a login), with the client that will then serve it. */
  verifyCredentials(): Promise<boolean> {
    return verifyCredentials(this.#client, this.#target.requestTimeoutMs);
  }

  async #send<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw toStorageError(error);
    }
  }

  async listBuckets(): Promise<Entry[]> {
    try {
      const out = await this.#client.send(new ListBucketsCommand({}));
      return (out.Buckets ?? []).map((b) => ({
        name: b.Name ?? '',
        type: 'dir' as const,
        size: 0,
        modified: b.CreationDate,
      }));
    } catch (error) {
      const mapped = toStorageError(error);
      if (mapped.kind === 'AccessDenied') return [];
      throw mapped;
    }
  }

  async bucketExists(bucket: string): Promise<boolean> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: bucket }));
      return true;
    } catch (error) {
      const mapped = toStorageError(error);
      if (mapped.kind === 'NotFound' || mapped.kind === 'AccessDenied' || mapped.kind === 'InvalidName') return false;
      throw mapped;
    }
  }

  async createBucket(bucket: string): Promise<void> {
    await this.#send(() => this.#client.send(new CreateBucketCommand({ Bucket: bucket })));
  }

  async deleteBucket(bucket: string): Promise<void> {
    await this.#send(() => this.#client.send(new DeleteBucketCommand({ Bucket: bucket })));
  }

  async stat(bucket: string, key: string): Promise<ObjectStat | undefined> {
    if (key === '' || key.endsWith('/') || isRecordKey(key)) return undefined;
    try {
      const out = await this.#client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { size: out.ContentLength ?? 0, modified: out.LastModified ?? new Date(0) };
    } catch (error) {
      const mapped = toStorageError(error);
      if (mapped.kind === 'NotFound') return undefined;
      throw mapped;
    }
  }

  async prefixExists(bucket: string, prefix: string): Promise<boolean> {
    if (isRecordKey(prefix)) return false;
    const out = await this.#send(() =>
      this.#client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 })),
    );
    return (out.KeyCount ?? out.Contents?.length ?? 0) > 0;
  }

  /** Where resumable uploads of the bucket are looked up and recorded; undefined when off. */
  #resumeScope(bucket: string): ResumeScope | undefined {
    const windowMs = this.#target.resumeWindowMs;
    if (windowMs === undefined) return undefined;
    return { client: this.#client, bucket, windowMs, owner: this.#resumeOwner, now: Date.now, mapError: toStorageError };
  }

  async resumePoint(bucket: string, key: string): Promise<ResumePoint | undefined> {
    const scope = this.#resumeScope(bucket);
    if (!scope || isRecordKey(key)) return undefined;
    return this.#send(() => currentResumePoint(scope, key));
  }

  async discardResumable(bucket: string, key: string): Promise<boolean> {
    const scope = this.#resumeScope(bucket);
    if (!scope || isRecordKey(key)) return false;
    return this.#send(() => discardResumable(scope, key));
  }

  async *listDirectory(bucket: string, prefix: string): AsyncIterable<Entry[]> {
    refuseRecordKey(prefix);
    const scope = this.#resumeScope(bucket);
    const resumable = scope ? await this.#send(() => resumableEntries(scope, prefix)) : new Map<string, Entry>();
    for await (const page of this.#listObjects(bucket, prefix)) {
      const entries = prefix === '' ? page.filter((e) => !(e.type === 'dir' && `${e.name}/` === RECORD_PREFIX)) : page;
      for (const entry of entries) {
        if (entry.type !== 'file' || !resumable.delete(entry.name) || !scope) continue;
        discardReplaced(scope, prefix + entry.name);
      }
      yield entries;
    }
    if (resumable.size > 0) yield [...resumable.values()];
  }

  async *#listObjects(bucket: string, prefix: string): AsyncIterable<Entry[]> {
    let token: string | undefined;
    // Bounded by S3 itself: every page returns a continuation token until the listing ends.
    do {
      const out = await this.#send(() =>
        this.#client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
        ),
      );
      const entries: Entry[] = [];
      for (const p of out.CommonPrefixes ?? []) {
        const name = (p.Prefix ?? '').slice(prefix.length, -1);
        if (name !== '') entries.push({ name, type: 'dir', size: 0 });
      }
      for (const o of out.Contents ?? []) {
        const name = (o.Key ?? '').slice(prefix.length);
        if (name === '' || name.endsWith('/')) continue;
        entries.push({ name, type: 'file', size: o.Size ?? 0, modified: o.LastModified });
      }
      yield entries;
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async *listRecursive(bucket: string, prefix: string): AsyncIterable<ObjectSummary[]> {
    refuseRecordKey(prefix);
    let token: string | undefined;
    do {
      const out = await this.#send(() =>
        this.#client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token })),
      );
      yield (out.Contents ?? []).map((o) => ({
        key: o.Key ?? '',
        size: o.Size ?? 0,
        modified: o.LastModified ?? new Date(0),
      }));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async read(bucket: string, key: string, offset: number, signal?: AbortSignal): Promise<Readable> {
    refuseRecordKey(key);
    try {
      const out = await this.#client.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, Range: offset > 0 ? `bytes=${offset}-` : undefined }),
        { abortSignal: signal },
      );
      if (!(out.Body instanceof Readable)) throw new StorageError('Failed', 'GetObject returned no stream');
      return out.Body;
    } catch (error) {
      // A REST offset at or past the end leaves nothing to send.
      if (describe(error).Code === 'InvalidRange' || describe(error).name === 'InvalidRange') {
        return Readable.from([]);
      }
      throw toStorageError(error);
    }
  }

  async write(bucket: string, key: string, body: Readable, signal: AbortSignal, options: WriteOptions = {}): Promise<WriteResult> {
    refuseRecordKey(key);
    const scope = this.#resumeScope(bucket);
    const resume = options.resume;
    if (!scope) return { bytes: (await this.#upload(bucket, key, body, signal, {})).bytes };
    if (resume?.continuation.kind === 'multipart') return this.#continueUpload(scope, key, body, signal, resume.continuation, resume.started);
    return this.#freshUpload(scope, key, body, signal);
  }

  /**
   * An upload that may become resumable. A new key's multipart upload is recorded as soon as it
   * exists (a gateway killed mid-upload never sees the cut, and another instance must still find
   * it); a cut one is kept if the key still has no object. Complete, it replaces whatever
   * resumable upload the key had (SPEC §7): a multipart one did that when it was recorded, a
   * single PutObject does it here, off the reply's path.
   */
  async #freshUpload(scope: ResumeScope, key: string, body: Readable, signal: AbortSignal): Promise<WriteResult> {
    // MDTM of a resumable upload answers when its first STOR began.
    const started = new Date();
    let recorded = false;
    const onMultipartCreated = async (uploadId: string): Promise<void> => {
      if (!(await this.#hasObject(scope.bucket, key))) recorded = await keepResumable(scope, key, uploadId, [], started);
    };
    const keepWhenCut = async (uploadId: string, stored: readonly StoredPart[]): Promise<boolean> => {
      if (!(await this.#hasObject(scope.bucket, key))) return keepResumable(scope, key, uploadId, stored, started);
      if (recorded) await forgetResumable(scope, key);
      return false;
    };
    const outcome = await this.#upload(scope.bucket, key, body, signal, { onMultipartCreated, keepWhenCut });
    if (recorded) await forgetResumable(scope, key);
    else discardReplaced(scope, key);
    return { bytes: outcome.bytes };
  }

  /**
   * Continues a resumable upload after its stored parts. When another session completed or
   * removed it meanwhile, it is theirs now: the client gets 450, nothing is recorded or aborted.
   */
  async #continueUpload(
    scope: ResumeScope,
    key: string,
    body: Readable,
    signal: AbortSignal,
    resume: { readonly uploadId: string; readonly parts: readonly StoredPart[] },
    started: Date,
  ): Promise<WriteResult> {
    const keepWhenCut = async (uploadId: string, stored: readonly StoredPart[], failure: StorageError): Promise<boolean> =>
      asConflict(failure).kind === 'Conflict' || (await keepResumable(scope, key, uploadId, stored, started));
    let outcome: UploadOutcome;
    try {
      outcome = await this.#upload(scope.bucket, key, body, signal, { resume, keepWhenCut });
    } catch (error) {
      throw asConflict(toStorageError(error));
    }
    await this.#confirmCompletedFromOurParts(scope.bucket, key, outcome.parts);
    await forgetResumable(scope, key);
    return { bytes: outcome.bytes };
  }

  /** Whether the key has an object; when S3 cannot say, assume not (a record costs nothing then). */
  async #hasObject(bucket: string, key: string): Promise<boolean> {
    return (await this.stat(bucket, key).catch(() => undefined)) !== undefined;
  }

  /**
   * A second CompleteMultipartUpload of an upload another session already completed can succeed
   * on radosgw whatever part list it names; the object's ETag tells whose parts it was made from.
   */
  async #confirmCompletedFromOurParts(bucket: string, key: string, parts: readonly StoredPart[] | undefined): Promise<void> {
    const expected = parts ? multipartEtag(parts) : undefined;
    if (expected === undefined) return;
    const out = await this.#send(() => this.#client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })));
    if (out.ETag !== expected) throw new StorageError('Conflict', 'the upload was completed by another session');
  }

  async #upload(
    bucket: string,
    key: string,
    body: Readable,
    signal: AbortSignal,
    hooks: Pick<UploadRequest, 'resume' | 'keepWhenCut' | 'onMultipartCreated'>,
  ): Promise<UploadOutcome> {
    return uploadStream({
      client: this.#client,
      buffers: partBuffers(),
      bucket,
      key,
      body,
      signal,
      partSize: this.#target.partSize,
      queueSize: this.#target.queueSize,
      mapError: toStorageError,
      ...hooks,
    });
  }

  async copy(sourceBucket: string, sourceKey: string, targetBucket: string, targetKey: string, size: number): Promise<void> {
    refuseRecordKey(sourceKey);
    refuseRecordKey(targetKey);
    const source = `${sourceBucket}/${encodeURIComponent(sourceKey).replace(/%2F/g, '/')}`;
    if (size <= COPY_LIMIT) {
      await this.#send(() =>
        this.#client.send(new CopyObjectCommand({ Bucket: targetBucket, Key: targetKey, CopySource: source })),
      );
      return;
    }
    await this.#multipartCopy(source, targetBucket, targetKey, size);
  }

  async #multipartCopy(source: string, bucket: string, key: string, size: number): Promise<void> {
    const created = await this.#send(() =>
      this.#client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key })),
    );
    const uploadId = created.UploadId;
    try {
      const parts: CompletedPart[] = [];
      for (let start = 0, part = 1; start < size; start += COPY_PART, part += 1) {
        const end = Math.min(start + COPY_PART, size) - 1;
        const out = await this.#client.send(
          new UploadPartCopyCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: part,
            CopySource: source,
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({ PartNumber: part, ETag: out.CopyPartResult?.ETag });
      }
      await this.#client.send(
        new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (error) {
      if (uploadId !== undefined) await abortMultipartUpload({ client: this.#client, bucket, key, uploadId, mapError: toStorageError });
      throw toStorageError(error);
    }
  }

  async delete(bucket: string, key: string): Promise<void> {
    refuseRecordKey(key);
    await this.#send(() => this.#client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })));
  }

  async createMarker(bucket: string, prefix: string): Promise<void> {
    refuseRecordKey(prefix);
    await this.#send(() =>
      this.#client.send(new PutObjectCommand({ Bucket: bucket, Key: prefix, Body: '', ContentLength: 0 })),
    );
  }

  close(): void {
    this.#client.destroy();
  }
}
