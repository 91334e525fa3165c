// Resumable uploads on S3 (SPEC §7). A cut upload of a key with no object keeps its multipart
// upload, and the parts S3 stored say where the client continues; S3 is the only state, so any
// instance, after any restart, finds it.
//
// Which multipart uploads are the gateway's: neither radosgw nor AWS returns a mark that tells
// them apart (radosgw before 17.2 reports the requester as every upload's initiator; metadata,
// tags and storage class cannot be read back before completion). So the gateway writes its own:
// a small record object `.s3ftpd-resume/<key>` naming the upload id and a hash of the access key
// that made it. Only uploads named by a record of the session's own key are listed, continued or
// removed; any other multipart upload in the bucket is never touched. FTP never shows the prefix.
import { createHash } from 'node:crypto';
import {
  type S3Client,
  GetObjectCommand,
  PutObjectCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
} from '@aws-sdk/client-s3';
import type { ResumePoint, StorageError, StoredPart } from './driver.ts';
import { abortMultipartUpload } from './s3-upload.ts';
import type { Entry } from '../listing.ts';
import { MAX_KEY_BYTES } from '../paths.ts';
import { log } from '../log.ts';

export const RECORD_PREFIX = '.s3ftpd-resume/';
/** Pages of ListParts read at most (1,000 parts each): S3 allows 10,000 parts. */
const MAX_PART_PAGES = 11;
/** Records read at once for a listing. */
const RECORD_READS_AT_ONCE = 8;

export interface ResumeScope {
  readonly client: S3Client;
  readonly bucket: string;
  readonly windowMs: number;
  /** Hash of the session's access key id: only its own records count. */
  readonly owner: string;
  readonly now: () => number;
  readonly mapError: (error: unknown) => StorageError;
}

interface ResumeRecord {
  readonly version: 1;
  readonly key: string;
  readonly uploadId: string;
  readonly owner: string;
  readonly started: string;
}

export function ownerOf(accessKeyId: string): string {
  return createHash('sha256').update(`s3ftpd-resume\0${accessKeyId}`).digest('hex').slice(0, 32);
}

export function isRecordKey(key: string): boolean {
  return key.startsWith(RECORD_PREFIX);
}

/** Keys so long that their record would pass S3's key limit are never kept resumable. */
export function recordFits(key: string): boolean {
  return Buffer.byteLength(RECORD_PREFIX + key, 'utf8') <= MAX_KEY_BYTES;
}

function parseRecord(text: string, key: string): ResumeRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<ResumeRecord>;
    if (value.version !== 1 || value.key !== key || typeof value.uploadId !== 'string' || typeof value.owner !== 'string') return undefined;
    if (typeof value.started !== 'string') return undefined;
    return value as ResumeRecord;
  } catch {
    return undefined;
  }
}

async function readRecord(scope: ResumeScope, key: string): Promise<ResumeRecord | undefined> {
  try {
    const out = await scope.client.send(new GetObjectCommand({ Bucket: scope.bucket, Key: RECORD_PREFIX + key }));
    const record = parseRecord((await out.Body?.transformToString('utf8')) ?? '', key);
    return record?.owner === scope.owner ? record : undefined;
  } catch (error) {
    const mapped = scope.mapError(error);
    if (mapped.kind === 'NotFound') return undefined;
    throw mapped;
  }
}

async function writeRecord(scope: ResumeScope, record: ResumeRecord): Promise<void> {
  const body = JSON.stringify(record);
  await scope.client.send(
    new PutObjectCommand({ Bucket: scope.bucket, Key: RECORD_PREFIX + record.key, Body: body, ContentType: 'application/json', ContentLength: Buffer.byteLength(body) }),
  );
}

async function deleteRecord(scope: ResumeScope, key: string): Promise<void> {
  await scope.client.send(new DeleteObjectCommand({ Bucket: scope.bucket, Key: RECORD_PREFIX + key }));
}

/** Aborts the record's upload; the abort retries in the background if S3 is away. */
function abortUpload(scope: ResumeScope, record: ResumeRecord, reason: string): Promise<void> {
  log.info('removing a resumable upload', { bucket: scope.bucket, key: record.key, reason });
  return abortMultipartUpload({ client: scope.client, bucket: scope.bucket, key: record.key, uploadId: record.uploadId, mapError: scope.mapError });
}

/** Removes the upload and its record. */
async function discard(scope: ResumeScope, record: ResumeRecord, reason: string): Promise<void> {
  await abortUpload(scope, record, reason);
  await forgetResumable(scope, record.key);
}

function discardInBackground(scope: ResumeScope, record: ResumeRecord, reason: string): void {
  void discard(scope, record, reason).catch(() => undefined);
}

function expired(scope: ResumeScope, record: ResumeRecord): boolean {
  return scope.now() - Date.parse(record.started) > scope.windowMs;
}

/** Parts 1..n without a gap: a part after a gap is overwritten when the upload continues. */
export function contiguousParts(parts: readonly StoredPart[]): StoredPart[] {
  const sorted = [...parts].sort((a, b) => a.number - b.number);
  const run: StoredPart[] = [];
  for (const part of sorted) {
    if (part.number !== run.length + 1) break;
    run.push(part);
  }
  return run;
}

export function offsetOf(parts: readonly StoredPart[]): number {
  return parts.reduce((sum, part) => sum + part.size, 0);
}

/** The stored parts, contiguous from 1; undefined when the upload is gone. */
async function storedParts(scope: ResumeScope, key: string, uploadId: string): Promise<StoredPart[] | undefined> {
  const parts: StoredPart[] = [];
  let marker: string | undefined;
  for (let page = 0; page < MAX_PART_PAGES; page += 1) {
    let out;
    try {
      out = await scope.client.send(new ListPartsCommand({ Bucket: scope.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
    } catch (error) {
      // radosgw answers NoSuchKey, AWS NoSuchUpload, for an upload that was completed or aborted.
      const mapped = scope.mapError(error);
      if (mapped.kind === 'NotFound') return undefined;
      throw mapped;
    }
    for (const part of out.Parts ?? []) {
      if (part.PartNumber === undefined || part.ETag === undefined) continue;
      parts.push({ number: part.PartNumber, etag: part.ETag, size: part.Size ?? 0 });
    }
    if (!out.IsTruncated) break;
    marker = out.NextPartNumberMarker;
  }
  return contiguousParts(parts);
}

/** The key's resumable upload, from its record and the parts S3 holds now. */
export async function currentResumePoint(scope: ResumeScope, key: string): Promise<ResumePoint | undefined> {
  const record = await readRecord(scope, key);
  if (!record) return undefined;
  if (expired(scope, record)) {
    discardInBackground(scope, record, 'older than the resume window');
    return undefined;
  }
  const parts = await storedParts(scope, key, record.uploadId);
  if (!parts) {
    await deleteRecord(scope, key).catch(() => undefined);
    return undefined;
  }
  return { offset: offsetOf(parts), started: new Date(record.started), continuation: { kind: 'multipart', uploadId: record.uploadId, parts } };
}

/**
 * Records an upload as the key's resumable one (replacing an older attempt's record, whose upload
 * goes): when it starts, so that even a gateway killed mid-upload leaves it findable, and again
 * when it is cut, with its offset. False when it cannot be recorded.
 */
export async function keepResumable(scope: ResumeScope, key: string, uploadId: string, parts: readonly StoredPart[], started: Date): Promise<boolean> {
  if (!recordFits(key)) return false;
  try {
    const previous = await readRecord(scope, key);
    // The older attempt's upload goes; its record's key is about to hold this one's record.
    if (previous && previous.uploadId !== uploadId) void abortUpload(scope, previous, 'superseded by a newer attempt').catch(() => undefined);
    await writeRecord(scope, { version: 1, key, uploadId, owner: scope.owner, started: started.toISOString() });
    log.info('resumable upload recorded', { bucket: scope.bucket, key, offset: offsetOf(contiguousParts(parts)) });
    return true;
  } catch (error) {
    log.warn('cut upload could not be kept resumable; aborting it', { bucket: scope.bucket, key, error: scope.mapError(error).message });
    return false;
  }
}

/** After the continued upload completed: its record goes. */
export async function forgetResumable(scope: ResumeScope, key: string): Promise<void> {
  await deleteRecord(scope, key).catch((error: unknown) => {
    log.warn('resume record left behind', { bucket: scope.bucket, key, error: scope.mapError(error).message });
  });
}

/** DELE of a resumable upload: false when the key has none of the session's. */
export async function discardResumable(scope: ResumeScope, key: string): Promise<boolean> {
  const record = await readRecord(scope, key);
  if (!record) return false;
  await discard(scope, record, 'deleted');
  return true;
}

/**
 * The session's resumable uploads directly under `prefix`, as listing entries sized by the parts
 * S3 holds now (a record written when the upload began says nothing of them). One ListObjectsV2
 * of the records per listing (ListMultipartUploads has no directory view on radosgw), then a
 * small GET and a ListParts per record found.
 */
export async function resumableEntries(scope: ResumeScope, prefix: string): Promise<Map<string, Entry>> {
  const names: string[] = [];
  let token: string | undefined;
  do {
    const out = await scope.client.send(
      new ListObjectsV2Command({ Bucket: scope.bucket, Prefix: RECORD_PREFIX + prefix, Delimiter: '/', ContinuationToken: token }),
    );
    for (const object of out.Contents ?? []) names.push((object.Key ?? '').slice(RECORD_PREFIX.length + prefix.length));
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  const entries = new Map<string, Entry>();
  for (let i = 0; i < names.length; i += RECORD_READS_AT_ONCE) {
    const batch = names.slice(i, i + RECORD_READS_AT_ONCE).filter((name) => name !== '');
    const points = await Promise.all(batch.map((name) => currentResumePoint(scope, prefix + name).catch(() => undefined)));
    for (const [i, point] of points.entries()) {
      const name = batch[i];
      if (point === undefined || name === undefined) continue;
      entries.set(name, { name, type: 'file', size: point.offset, modified: point.started, resumable: true });
    }
  }
  return entries;
}

/** A record whose key has an object now belongs to an attempt that a later upload replaced. */
export function discardReplaced(scope: ResumeScope, key: string): void {
  void readRecord(scope, key).then(
    (record) => {
      if (record) discardInBackground(scope, record, 'the file was uploaded again');
    },
    () => undefined,
  );
}
