// Total and per-address limits on control connections.
export class ConnectionLimits {
  readonly #total: number;
  readonly #perAddress: number;
  readonly #counts = new Map<string, number>();
  #open = 0;

  constructor(total: number, perAddress: number) {
    this.#total = total;
    this.#perAddress = perAddress;
  }

  /** Counts the connection in and returns true, or returns false when a limit is reached. */
  admit(address: string): boolean {
    const current = this.#counts.get(address) ?? 0;
    if (this.#open >= this.#total || current >= this.#perAddress) return false;
    this.#counts.set(address, current + 1);
    this.#open += 1;
    return true;
  }

  release(address: string): void {
    const current = this.#counts.get(address) ?? 0;
    if (current <= 1) this.#counts.delete(address);
    else this.#counts.set(address, current - 1);
    this.#open -= 1;
  }

  get open(): number {
    return this.#open;
  }
}
