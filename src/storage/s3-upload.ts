// Streams one upload into S3: a PutObject when the body fits in one part, otherwise a multipart
// upload whose parts are filled in reused buffers from PartBuffers and sent `queueSize` at a time.
// Nothing becomes visible unless the body ended cleanly and every part was stored. A cut upload
// may be kept (its stored parts make it resumable, SPEC §7) and continued later from its parts.
import type { Readable } from 'node:stream';
import {
  type S3Client,
  PutObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { StorageError, isFillable, type FillableBody, type StoredPart } from './driver.ts';
import type { PartBuffers } from './part-buffers.ts';
import { log } from '../log.ts';

export const MAX_PARTS = 10_000;
const MAX_PART_BYTES = 5 * 1024 ** 3;
/** Parts per size step: every 900 parts the part size doubles, so 10,000 parts reach S3's 5 TiB. */
const PARTS_PER_STEP = 900;
const ABORT_ATTEMPTS = 8;
/** How long a cut upload waits for parts already on their way to S3 before it gives them up. */
const IN_FLIGHT_WAIT_MS = 15_000;

export interface UploadRequest {
  readonly client: S3Client;
  readonly buffers: PartBuffers;
  readonly bucket: string;
  readonly key: string;
  readonly body: Readable;
  readonly signal: AbortSignal;
  readonly partSize: number;
  readonly queueSize: number;
  /** S3 errors become StorageErrors here (one mapping for the whole driver). */
  readonly mapError: (error: unknown) => StorageError;
  /** Continue this multipart upload after its stored parts (numbered 1..n) instead of starting one. */
  readonly resume?: { readonly uploadId: string; readonly parts: readonly StoredPart[] };
  /**
   * Asked when a multipart upload failed, with the parts S3 stored (the continued ones included):
   * true keeps it (the key stays resumable, or another session owns it now), false aborts it.
   * Without it a failed upload is always aborted.
   */
  readonly keepWhenCut?: (uploadId: string, stored: readonly StoredPart[], failure: StorageError) => Promise<boolean>;
  /** Runs once S3 created the multipart upload, before its first part is sent. */
  readonly onMultipartCreated?: (uploadId: string) => Promise<void>;
}

/** The size of part `partNumber` (1-based): `base` for the first 900, then doubling. */
export function partSizeFor(partNumber: number, base: number): number {
  const step = Math.floor((partNumber - 1) / PARTS_PER_STEP);
  return Math.min(MAX_PART_BYTES, base * 2 ** Math.min(step, 20));
}

/** Stores the whole body as the object and returns its size; throws (storing nothing) otherwise. */
export interface UploadOutcome {
  /** Bytes read from the body. */
  readonly bytes: number;
  /** The parts the object was completed from; undefined for a single PutObject. */
  readonly parts: readonly StoredPart[] | undefined;
}

export async function uploadStream(request: UploadRequest): Promise<UploadOutcome> {
  const upload = new StreamUpload(request);
  const bytes = await upload.run();
  return { bytes, parts: upload.completedParts };
}

/**
 * The ETag S3 gives an object completed from these parts: the MD5 of the parts' binary MD5s and
 * the part count. Undefined when a part's ETag is not a plain MD5 (encryption with KMS keys).
 */
export function multipartEtag(parts: readonly StoredPart[]): string | undefined {
  const digests: Buffer[] = [];
  for (const part of [...parts].sort((a, b) => a.number - b.number)) {
    const hex = part.etag.replace(/"/g, '');
    if (!/^[0-9a-f]{32}$/i.test(hex)) return undefined;
    digests.push(Buffer.from(hex, 'hex'));
  }
  return `"${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${digests.length}"`;
}

interface PartInProgress {
  /** The buffer being filled; undefined while waiting for the next one. */
  buffer: Buffer | undefined;
  filled: number;
  /** 1-based part number of `buffer`. */
  number: number;
  /** Bytes read from the body so far. */
  total: number;
}

class StreamUpload {
  readonly #r: UploadRequest;
  /** Cancels part requests still running once the upload has failed. */
  readonly #parts = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #completed: StoredPart[] = [];
  #uploadId: string | undefined;
  #creating: Promise<string> | undefined;
  #failure: StorageError | undefined;

  constructor(request: UploadRequest) {
    this.#r = request;
    if (request.resume) {
      const { uploadId, parts } = request.resume;
      this.#uploadId = uploadId;
      this.#creating = Promise.resolve(uploadId);
      this.#completed.push(...parts);
    }
  }

  /** After run(): the parts of a multipart upload, in order; undefined when it was one PutObject. */
  completedParts: readonly StoredPart[] | undefined;

  get #resumed(): boolean {
    return this.#r.resume !== undefined;
  }

  async run(): Promise<number> {
    const { body, signal } = this.#r;
    // Cancelling fails the body, so the read loop below ends with that error.
    const onAbort = (): void => {
      body.destroy(new StorageError('Aborted', 'upload cancelled'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const part: PartInProgress = { buffer: undefined, filled: 0, number: this.#completed.length + 1, total: 0 };
    try {
      signal.throwIfAborted();
      part.buffer = await this.#r.buffers.acquire(partSizeFor(part.number, this.#r.partSize), signal);
      await (isFillable(body) ? this.#fillBody(part, body) : this.#readBody(part));
      const last = part.buffer;
      if (last === undefined) throw new Error('upload ended without a part buffer');
      part.buffer = undefined;
      if (part.number === 1 && !this.#resumed) {
        try {
          await this.#putWhole(last, part.filled);
        } finally {
          this.#r.buffers.release(last);
        }
        return part.total;
      }
      // A continued upload whose client had nothing more to send ends with the parts it had.
      if (part.filled > 0) this.#sendPart(last, part.filled, part.number);
      else this.#r.buffers.release(last);
      await Promise.all(this.#inFlight);
      this.#throwIfFailed();
      await this.#complete();
      this.completedParts = [...this.#completed].sort((a, b) => a.number - b.number);
      return part.total;
    } catch (error) {
      const failure = this.#failure ?? this.#r.mapError(error);
      // Creation is never cut short: a cut that lands while S3 creates the upload must still learn
      // its id, or the upload would be neither kept nor aborted.
      await this.#creating?.catch(() => undefined);
      const uploadId = this.#uploadId;
      if (uploadId !== undefined && this.#r.keepWhenCut) {
        // Parts on their way may still be stored: each one the client need not send again.
        await Promise.race([Promise.allSettled(this.#inFlight), sleep(IN_FLIGHT_WAIT_MS, undefined, { ref: false })]);
        this.#parts.abort();
        await Promise.allSettled(this.#inFlight);
        if (await this.#r.keepWhenCut(uploadId, this.#completed, failure)) throw failure;
      }
      this.#parts.abort();
      await Promise.allSettled(this.#inFlight);
      if (uploadId !== undefined) await abortMultipartUpload({ ...this.#r, uploadId });
      throw failure;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (part.buffer) this.#r.buffers.release(part.buffer);
    }
  }

  /**
   * Copies the body into part buffers chunk by chunk as 'data' delivers it (a Readable's async
   * iterator would first concatenate whatever is buffered: one more copy of every byte). While a
   * full part waits to be sent or for a new buffer, the body is paused, so TCP slows the client.
   * Resolves when the body ended cleanly, with the last part still in `part.buffer`.
   */
  #readBody(part: PartInProgress): Promise<void> {
    const { body } = this.#r;
    return new Promise<void>((resolve, reject) => {
      const pending: Buffer[] = [];
      let offset = 0;
      let waiting = false;
      let ended = false;
      let settled = false;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        body.off('data', onData).off('end', onEnd).off('error', settle).off('close', onClose);
        // Not destroyed: when S3 failed first, the data connection ends after the 451.
        body.pause();
        if (error === undefined) resolve();
        else reject(error instanceof Error ? error : new Error('upload failed'));
      };
      const drain = (): void => {
        while (pending.length > 0 && !settled) {
          if (this.#failure) return settle(this.#failure);
          const buffer = part.buffer;
          if (buffer === undefined) return settle(new Error('no part buffer'));
          if (part.filled === buffer.length) {
            // A full part is sent only once more data shows it is not the last one.
            waiting = true;
            body.pause();
            this.#nextPart(part).then(() => {
              waiting = false;
              if (settled) return;
              body.resume();
              drain();
            }, settle);
            return;
          }
          const chunk = pending[0] as Buffer;
          const copied = chunk.copy(buffer, part.filled, offset);
          part.filled += copied;
          part.total += copied;
          offset += copied;
          if (offset === chunk.length) {
            pending.shift();
            offset = 0;
          }
        }
        if (ended && !waiting) settle();
      };
      const onData = (chunk: Buffer): void => {
        pending.push(chunk);
        if (!waiting) drain();
      };
      const onEnd = (): void => {
        ended = true;
        if (!waiting && pending.length === 0) settle();
      };
      const onClose = (): void => {
        if (!ended) settle(new StorageError('Aborted', 'data connection closed before the end of the upload'));
      };
      // The body may have failed or been cut before the upload began (its events are then past).
      if (body.errored) return settle(body.errored);
      // An empty body whose end TLS already read (lftp closes at once for an empty file).
      if (body.readableEnded) return settle();
      if (body.destroyed) return settle(new StorageError('Aborted', 'data connection closed before the upload began'));
      body.on('data', onData).once('end', onEnd).once('error', settle).once('close', onClose);
    });
  }

  /**
   * #readBody for a body that decrypts straight into the part buffer (the native TLS engine): no
   * Buffer per read and no copy. A full part is sent once fillState() shows more data follows.
   */
  #fillBody(part: PartInProgress, body: Readable & FillableBody): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let waiting = false;
      let settled = false;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        body.off('fillable', pump).off('error', settle).off('close', onClose);
        if (error === undefined) resolve();
        else reject(error instanceof Error ? error : new Error('upload failed'));
      };
      const onClose = (): void => {
        if (!settled && body.fillState() !== 'end') settle(new StorageError('Aborted', 'data connection closed before the end of the upload'));
      };
      const step = (): void => {
        while (!settled && !waiting) {
          if (this.#failure) return settle(this.#failure);
          const buffer = part.buffer;
          if (buffer === undefined) return settle(new Error('no part buffer'));
          if (part.filled === buffer.length) {
            const state = body.fillState();
            if (state === 'end') return settle();
            if (state === 'none') return;
            waiting = true;
            this.#nextPart(part).then(() => {
              waiting = false;
              step();
            }, settle);
            return;
          }
          const filled = body.fill(buffer, part.filled);
          part.filled += filled;
          part.total += filled;
          if (filled === 0) {
            if (body.fillState() === 'end') return settle();
            return;
          }
        }
      };
      const pump = (): void => step();
      if (body.errored) return settle(body.errored);
      if (body.destroyed) return settle(new StorageError('Aborted', 'data connection closed before the upload began'));
      body.on('fillable', pump).once('error', settle).once('close', onClose);
      step();
    });
  }

  /** Sends the full part in the background and waits for a free slot and a buffer for the next. */
  async #nextPart(part: PartInProgress): Promise<void> {
    const full = part.buffer;
    if (full === undefined) throw new Error('no part buffer');
    part.buffer = undefined;
    this.#sendPart(full, part.filled, part.number);
    part.number += 1;
    part.filled = 0;
    if (part.number > MAX_PARTS) throw new StorageError('Failed', `file larger than ${MAX_PARTS} parts`);
    await this.#whileQueueFull();
    part.buffer = await this.#r.buffers.acquire(partSizeFor(part.number, this.#r.partSize), this.#r.signal);
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  async #whileQueueFull(): Promise<void> {
    while (this.#inFlight.size >= this.#r.queueSize) {
      await Promise.race(this.#inFlight);
      this.#throwIfFailed();
    }
  }

  /** Once the body has ended the object is committed: a late cancel no longer stops it. */
  async #putWhole(buffer: Buffer, length: number): Promise<void> {
    const { client, bucket, key } = this.#r;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: buffer.subarray(0, length), ContentLength: length }));
  }

  /** Starts one part in the background; the buffer goes back to the pool when it settles. */
  #sendPart(buffer: Buffer, length: number, partNumber: number): void {
    const running = (async (): Promise<void> => {
      try {
        const uploadId = await this.#ensureMultipart();
        const { client, bucket, key } = this.#r;
        const out = await client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: partNumber,
            Body: buffer.subarray(0, length),
            ContentLength: length,
          }),
          { abortSignal: this.#parts.signal },
        );
        if (!out.ETag) throw new StorageError('Failed', `S3 returned no ETag for part ${partNumber}`);
        this.#completed.push({ number: partNumber, etag: out.ETag, size: length });
      } catch (error) {
        this.#failure ??= this.#r.mapError(error);
      } finally {
        this.#r.buffers.release(buffer);
      }
    })();
    this.#inFlight.add(running);
    void running.then(() => this.#inFlight.delete(running));
  }

  #ensureMultipart(): Promise<string> {
    this.#creating ??= (async (): Promise<string> => {
      const { client, bucket, key } = this.#r;
      // Never cut short: an upload created without us learning its id could not be aborted.
      const out = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      if (!out.UploadId) throw new StorageError('Failed', 'S3 returned no upload id');
      this.#uploadId = out.UploadId;
      await this.#r.onMultipartCreated?.(out.UploadId);
      return out.UploadId;
    })();
    return this.#creating;
  }

  async #complete(): Promise<void> {
    const { client, bucket, key } = this.#r;
    const parts: CompletedPart[] = [...this.#completed].sort((a, b) => a.number - b.number).map((p) => ({ PartNumber: p.number, ETag: p.etag }));
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: this.#uploadId, MultipartUpload: { Parts: parts } }),
    );
  }
}

export interface MultipartTarget {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly mapError: (error: unknown) => StorageError;
}

/**
 * Aborts a multipart upload so no parts stay behind. The first attempt is awaited (a failure
 * reply is sent only after it); if S3 is unreachable it is retried in the background with backoff.
 */
export async function abortMultipartUpload(target: MultipartTarget): Promise<void> {
  if (await tryAbort(target, 0)) return;
  void (async (): Promise<void> => {
    for (let attempt = 1, delay = 1000; attempt < ABORT_ATTEMPTS; attempt += 1, delay *= 2) {
      await sleep(delay);
      if (await tryAbort(target, attempt)) return;
    }
    const { bucket, key, uploadId } = target;
    log.error('multipart upload left open; an AbortIncompleteMultipartUpload lifecycle rule will remove it', { bucket, key, uploadId });
  })();
}

async function tryAbort({ client, bucket, key, uploadId, mapError }: MultipartTarget, attempt: number): Promise<boolean> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    return true;
  } catch (error) {
    const mapped = mapError(error);
    if (mapped.kind === 'NotFound') return true; // already gone
    log.warn('abort of a failed multipart upload failed; retrying', { bucket, key, attempt, error: mapped.message });
    return false;
  }
}
