// Streams one upload into S3: a PutObject when the body fits in one part, otherwise a multipart
// upload whose parts are filled in reused buffers from PartBuffers and sent `queueSize` at a time.
// Nothing becomes visible unless the body ended cleanly and every part was stored.
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
import { StorageError } from './driver.ts';
import type { PartBuffers } from './part-buffers.ts';
import { log } from '../log.ts';

export const MAX_PARTS = 10_000;
const MAX_PART_BYTES = 5 * 1024 ** 3;
/** Parts per size step: every 900 parts the part size doubles, so 10,000 parts reach S3's 5 TiB. */
const PARTS_PER_STEP = 900;
const ABORT_ATTEMPTS = 8;

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
}

/** The size of part `partNumber` (1-based): `base` for the first 900, then doubling. */
export function partSizeFor(partNumber: number, base: number): number {
  const step = Math.floor((partNumber - 1) / PARTS_PER_STEP);
  return Math.min(MAX_PART_BYTES, base * 2 ** Math.min(step, 20));
}

/** Stores the whole body as the object and returns its size; throws (storing nothing) otherwise. */
export async function uploadStream(request: UploadRequest): Promise<number> {
  return new StreamUpload(request).run();
}

class StreamUpload {
  readonly #r: UploadRequest;
  /** Cancels part requests still running once the upload has failed. */
  readonly #parts = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #completed: CompletedPart[] = [];
  #uploadId: string | undefined;
  #failure: StorageError | undefined;

  constructor(request: UploadRequest) {
    this.#r = request;
  }

  async run(): Promise<number> {
    const { body, signal } = this.#r;
    // Cancelling fails the body, so the read loop below ends with that error.
    const onAbort = (): void => {
      body.destroy(new StorageError('Aborted', 'upload cancelled'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let buffer: Buffer | undefined;
    try {
      signal.throwIfAborted();
      let partNumber = 1;
      buffer = await this.#r.buffers.acquire(partSizeFor(partNumber, this.#r.partSize), signal);
      let filled = 0;
      let total = 0;
      // Not destroyed when S3 fails first: the data connection then ends after the 451, so the
      // failure is not mistaken for a broken connection.
      for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        let offset = 0;
        while (offset < chunk.length) {
          if (filled === buffer.length) {
            // A full part is sent only once more data shows it is not the last one.
            this.#sendPart(buffer, filled, partNumber);
            buffer = undefined;
            partNumber += 1;
            if (partNumber > MAX_PARTS) throw new StorageError('Failed', `file larger than ${MAX_PARTS} parts`);
            await this.#whileQueueFull();
            buffer = await this.#r.buffers.acquire(partSizeFor(partNumber, this.#r.partSize), signal);
            filled = 0;
          }
          const copied = chunk.copy(buffer, filled, offset);
          filled += copied;
          offset += copied;
          total += copied;
        }
        this.#throwIfFailed();
      }
      if (partNumber === 1) {
        await this.#putWhole(buffer, filled);
        return total;
      }
      this.#sendPart(buffer, filled, partNumber);
      buffer = undefined;
      await Promise.all(this.#inFlight);
      this.#throwIfFailed();
      await this.#complete();
      return total;
    } catch (error) {
      const failure = this.#failure ?? this.#r.mapError(error);
      this.#parts.abort();
      await Promise.allSettled(this.#inFlight);
      if (this.#uploadId !== undefined) await this.#abortMultipart(this.#uploadId);
      throw failure;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (buffer) this.#r.buffers.release(buffer);
    }
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
        this.#completed.push({ PartNumber: partNumber, ETag: out.ETag });
      } catch (error) {
        this.#failure ??= this.#r.mapError(error);
      } finally {
        this.#r.buffers.release(buffer);
      }
    })();
    this.#inFlight.add(running);
    void running.then(() => this.#inFlight.delete(running));
  }

  #creating: Promise<string> | undefined;

  #ensureMultipart(): Promise<string> {
    this.#creating ??= (async (): Promise<string> => {
      const { client, bucket, key } = this.#r;
      // Never cut short: an upload created without us learning its id could not be aborted.
      const out = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      if (!out.UploadId) throw new StorageError('Failed', 'S3 returned no upload id');
      this.#uploadId = out.UploadId;
      return out.UploadId;
    })();
    return this.#creating;
  }

  async #complete(): Promise<void> {
    const { client, bucket, key } = this.#r;
    const parts = [...this.#completed].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: this.#uploadId, MultipartUpload: { Parts: parts } }),
    );
  }

  /**
   * Aborts the multipart upload so no parts stay behind. The first attempt is awaited (a 426 is
   * sent only after it); if S3 is unreachable it is retried in the background with backoff.
   */
  async #abortMultipart(uploadId: string): Promise<void> {
    if (await this.#tryAbort(uploadId, 0)) return;
    void (async (): Promise<void> => {
      for (let attempt = 1, delay = 1000; attempt < ABORT_ATTEMPTS; attempt += 1, delay *= 2) {
        await sleep(delay);
        if (await this.#tryAbort(uploadId, attempt)) return;
      }
      log.error('multipart upload left open; an AbortIncompleteMultipartUpload lifecycle rule will remove it', {
        bucket: this.#r.bucket,
        key: this.#r.key,
        uploadId,
      });
    })();
  }

  async #tryAbort(uploadId: string, attempt: number): Promise<boolean> {
    const { client, bucket, key } = this.#r;
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
      return true;
    } catch (error) {
      const mapped = this.#r.mapError(error);
      if (mapped.kind === 'NotFound') return true; // already gone
      log.warn('abort of a failed multipart upload failed; retrying', { bucket, key, attempt, error: mapped.message });
      return false;
    }
  }
}
