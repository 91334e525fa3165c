// Repeated failed logins from one address are delayed, then the address is banned for a while.
// Failures expire: one older than the failure window (by default the ban time) no longer counts,
// so a few typos weeks apart never ban anyone. Memory is bounded: at most `maxTracked` addresses
// with failures and as many bans are kept; the oldest go first (a scan from many addresses cannot
// grow the maps without bound).

export interface LoginGuard {
  isBanned(address: string): boolean;
  /** Milliseconds to wait before answering a failed login from this address. */
  failed(address: string): number;
  /** Forgets earlier failures; an active ban stays. */
  succeeded(address: string): void;
}

export interface LoginGuardOptions {
  readonly maxFailures: number;
  readonly banMs: number;
  readonly delayStepMs: number;
  /** Addresses that are never banned (monitoring, the operator's own hosts). */
  readonly allowList: readonly string[];
  readonly now: () => number;
  readonly onBan?: (address: string) => void;
  /** A failure older than this is forgotten; defaults to the ban time. */
  readonly failureWindowMs?: number;
  /** Addresses with failures (and, separately, bans) remembered at most; defaults to 10,000. */
  readonly maxTracked?: number;
}

interface Failures {
  count: number;
  last: number;
}

const MAX_DELAY_MS = 5000;

export class FailedLoginGuard implements LoginGuard {
  readonly #options: LoginGuardOptions;
  readonly #windowMs: number;
  readonly #maxTracked: number;
  /** By address, least recently failed first (every failure re-inserts). */
  readonly #failures = new Map<string, Failures>();
  /** Ban end by address, oldest ban first. */
  readonly #bans = new Map<string, number>();

  constructor(options: LoginGuardOptions) {
    this.#options = options;
    this.#windowMs = options.failureWindowMs ?? options.banMs;
    this.#maxTracked = options.maxTracked ?? 10_000;
  }

  isBanned(address: string): boolean {
    const until = this.#bans.get(address);
    if (until === undefined) return false;
    if (until > this.#options.now()) return true;
    this.#bans.delete(address);
    return false;
  }

  failed(address: string): number {
    const now = this.#options.now();
    this.#forgetOld(now);
    const previous = this.#failures.get(address);
    const count = previous && now - previous.last <= this.#windowMs ? previous.count + 1 : 1;
    this.#failures.delete(address);
    this.#failures.set(address, { count, last: now });
    if (count >= this.#options.maxFailures && !this.#options.allowList.includes(address) && !this.isBanned(address)) {
      this.#bans.delete(address);
      this.#bans.set(address, now + this.#options.banMs);
      this.#failures.delete(address);
      this.#options.onBan?.(address);
    }
    return Math.min(count * this.#options.delayStepMs, MAX_DELAY_MS);
  }

  succeeded(address: string): void {
    this.#failures.delete(address);
  }

  /** Addresses remembered, with failures or banned (for tests and metrics). */
  get trackedAddresses(): number {
    return this.#failures.size + this.#bans.size;
  }

  #forgetOld(now: number): void {
    for (const [address, failures] of this.#failures) {
      if (this.#failures.size < this.#maxTracked && now - failures.last <= this.#windowMs) break;
      this.#failures.delete(address);
    }
    for (const [address, until] of this.#bans) {
      if (this.#bans.size < this.#maxTracked && until > now) break;
      this.#bans.delete(address);
    }
  }
}
