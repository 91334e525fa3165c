// Repeated failed logins from one address are delayed, then the address is banned for a while.
import type { LoginGuard } from './session.ts';

export interface LoginGuardOptions {
  readonly maxFailures: number;
  readonly banMs: number;
  readonly delayStepMs: number;
  /** Addresses that are never banned (monitoring, the operator's own hosts). */
  readonly allowList: readonly string[];
  readonly now: () => number;
  readonly onBan?: (address: string) => void;
}

interface Record {
  failures: number;
  bannedUntil: number;
}

export class FailedLoginGuard implements LoginGuard {
  readonly #options: LoginGuardOptions;
  readonly #records = new Map<string, Record>();

  constructor(options: LoginGuardOptions) {
    this.#options = options;
  }

  isBanned(address: string): boolean {
    const record = this.#records.get(address);
    if (!record || record.bannedUntil === 0) return false;
    if (record.bannedUntil > this.#options.now()) return true;
    this.#records.delete(address);
    return false;
  }

  failed(address: string): number {
    const record = this.#records.get(address) ?? { failures: 0, bannedUntil: 0 };
    record.failures += 1;
    if (record.failures >= this.#options.maxFailures && !this.#options.allowList.includes(address) && record.bannedUntil === 0) {
      record.bannedUntil = this.#options.now() + this.#options.banMs;
      this.#options.onBan?.(address);
    }
    this.#records.set(address, record);
    return Math.min(record.failures * this.#options.delayStepMs, 5000);
  }

  succeeded(address: string): void {
    if (!this.isBanned(address)) this.#records.delete(address);
  }
}
