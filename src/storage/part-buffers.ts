// Upload part buffers, counted against one budget that every thread shares. Buffers are reused
// within a thread, so a steady upload allocates no fresh 8 MiB buffer (and takes no page faults)
// per part. Past the budget an upload waits for a buffer before it reads more of its data
// connection, so TCP slows its client instead of memory growing.
import { setTimeout as sleep } from 'node:timers/promises';
import { nativeAddon } from '../native.ts';

/** Plain data that crosses into worker threads: the shared counters and the limit. */
export interface BudgetShare {
  readonly counters: SharedArrayBuffer;
  readonly limitBytes: number;
}

const USED_KIB = 0;
const RELEASES = 1;
/** A budget so large that it never binds: for threads that were given no share. */
const UNLIMITED_KIB = 2 ** 31 - 1;
/** How long a waiting upload sleeps at most before it checks the budget again. */
const RECHECK_MS = 250;
/** Idle buffers kept for reuse are given back after this long. */
const IDLE_RETURN_MS = 5_000;

export function createBudgetShare(limitBytes: number): BudgetShare {
  return { counters: new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT), limitBytes };
}

function kibOf(bytes: number): number {
  return Math.ceil(bytes / 1024);
}

/**
 * A new part buffer. Its first writes fault in every page: 2,048 faults for 8 MiB, about 3 CPU-s
 * per GiB in a virtual machine here. Mapped as transparent huge pages (native/), that is 4 faults
 * and about 0.4 (bench/RESULTS.md 21); where the addon or huge pages are missing, a plain Buffer.
 */
function allocatePart(size: number): Buffer {
  return nativeAddon?.allocateHugeBuffer(size) ?? Buffer.allocUnsafeSlow(size);
}

export class PartBuffers {
  readonly #counters: Int32Array;
  readonly #limitKib: number;
  /** Idle buffers by size, newest last; they stay counted in the budget until given back. */
  readonly #idle = new Map<number, Buffer[]>();
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(share: BudgetShare | undefined) {
    this.#counters = new Int32Array((share ?? createBudgetShare(0)).counters);
    this.#limitKib = share ? Math.min(kibOf(share.limitBytes), UNLIMITED_KIB) : UNLIMITED_KIB;
  }

  /** Bytes in part buffers across every thread of this share (in use or idle). */
  get usedBytes(): number {
    return Atomics.load(this.#counters, USED_KIB) * 1024;
  }

  /**
   * A buffer of exactly `size` bytes, waiting while the budget is spent. A part larger than the
   * whole budget is granted only when no other part buffer exists, so it still makes progress.
   */
  async acquire(size: number, signal: AbortSignal): Promise<Buffer> {
    for (;;) {
      signal.throwIfAborted();
      const reused = this.#idle.get(size)?.pop();
      if (reused) return reused;
      if (this.#reserve(kibOf(size))) return allocatePart(size);
      // Our own idle buffers of other sizes are the first to give back.
      if (this.#returnIdle()) continue;
      await this.#waitForRelease(signal);
    }
  }

  /** Keeps the buffer for this thread's next part; it is given back to the budget when idle. */
  release(buffer: Buffer): void {
    let list = this.#idle.get(buffer.length);
    if (!list) {
      list = [];
      this.#idle.set(buffer.length, list);
    }
    list.push(buffer);
    // One timer gives back whatever is idle by then.
    if (this.#idleTimer === undefined) {
      this.#idleTimer = setTimeout(() => {
        this.#idleTimer = undefined;
        this.#returnIdle();
      }, IDLE_RETURN_MS).unref();
    }
    // Waiters in this thread may take it at once; others learn of it when it is given back.
    Atomics.add(this.#counters, RELEASES, 1);
    Atomics.notify(this.#counters, RELEASES);
  }

  #reserve(kib: number): boolean {
    for (;;) {
      const used = Atomics.load(this.#counters, USED_KIB);
      if (used + kib > this.#limitKib && used !== 0) return false;
      if (Atomics.compareExchange(this.#counters, USED_KIB, used, used + kib) === used) return true;
    }
  }

  /** Gives every idle buffer of this thread back to the budget; true if there was any. */
  #returnIdle(): boolean {
    let kib = 0;
    for (const list of this.#idle.values()) for (const buffer of list) kib += kibOf(buffer.length);
    this.#idle.clear();
    if (kib === 0) return false;
    Atomics.sub(this.#counters, USED_KIB, kib);
    Atomics.add(this.#counters, RELEASES, 1);
    Atomics.notify(this.#counters, RELEASES);
    return true;
  }

  async #waitForRelease(signal: AbortSignal): Promise<void> {
    const seen = Atomics.load(this.#counters, RELEASES);
    const waited = Atomics.waitAsync(this.#counters, RELEASES, seen, RECHECK_MS);
    if (!waited.async) return;
    // waitAsync cannot be cancelled: a cancelled upload stops waiting on the next recheck.
    await Promise.race([waited.value, sleep(RECHECK_MS, undefined, { signal, ref: false }).catch(() => undefined)]);
  }
}

let threadBuffers: PartBuffers | undefined;

/** Joins this thread to the budget shared by every data worker (called once at worker start). */
export function joinBudget(share: BudgetShare): void {
  threadBuffers = new PartBuffers(share);
}

/** This thread's part buffers; unbudgeted where no share was joined (the main thread, tools). */
export function partBuffers(): PartBuffers {
  threadBuffers ??= new PartBuffers(undefined);
  return threadBuffers;
}
