// Hands out starting points in the passive range round-robin. The worker binds directly and moves
// on when a port is taken, so the kernel decides and there is no open/close/listen race.
export class PassivePorts {
  readonly low: number;
  readonly high: number;
  #next: number;

  constructor(low: number, high: number) {
    this.low = low;
    this.high = high;
    this.#next = low + Math.floor(Math.random() * (high - low + 1));
  }

  nextStart(): number {
    const port = this.#next;
    this.#next = port >= this.high ? this.low : port + 1;
    return port;
  }
}
