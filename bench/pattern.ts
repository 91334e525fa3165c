// The bytes every bench object consists of: byte i of any object is PATTERN[i % PATTERN_SIZE].
// The sink serves generated objects with it, the clients upload it, and downloads are checked
// against it, so content can be verified without keeping any data.

import type { Writable } from 'node:stream';

export const PATTERN_SIZE = 1024 * 1024;

/** 1 MiB of deterministic pseudo-random bytes (xorshift32), identical in every process. */
export const PATTERN: Buffer = (() => {
  const buffer = Buffer.allocUnsafe(PATTERN_SIZE);
  let x = 0x9e3779b9;
  for (let i = 0; i < PATTERN_SIZE; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buffer.writeUInt32LE(x, i);
  }
  return buffer;
})();

/** A view (no copy) of the object's bytes from `offset`, at most `length` long and never past the pattern's end. */
export function patternSlice(offset: number, length: number): Buffer {
  const start = offset % PATTERN_SIZE;
  return PATTERN.subarray(start, Math.min(PATTERN_SIZE, start + length));
}

/** Whether `chunk`, found at `offset` in an object, holds the pattern's bytes. */
export function matchesPattern(chunk: Buffer, offset: number): boolean {
  let done = 0;
  // Bounded: each round consumes at least one byte of the chunk.
  while (done < chunk.length) {
    const expected = patternSlice(offset + done, chunk.length - done);
    if (!chunk.subarray(done, done + expected.length).equals(expected)) return false;
    done += expected.length;
  }
  return true;
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parses `123`, `64k`, `8MiB`, `1G` (binary units). */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) throw new Error(`not a size: ${text}`);
  const value = Number(match[1]) * (UNITS[(match[2] ?? '').toLowerCase()] ?? 1);
  if (!Number.isSafeInteger(Math.round(value))) throw new Error(`size out of range: ${text}`);
  return Math.round(value);
}

export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= factor && bytes % (factor / 16) === 0) return `${+(bytes / factor).toFixed(2)} ${unit}`;
  }
  return `${bytes} B`;
}

/** Waits for 'drain' or the end of the stream, leaving no listener behind. */
export function drained(stream: Writable): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}
