// The data plane as the control plane sees it: open a passive endpoint, run one transfer on it,
// cancel it. The worker pool (pool.ts) is the implementation; inline-plane.ts runs the same
// tasks on the calling thread for the in-process test harness.
import type { PassiveRequest, TransferCommand, TransferFailure } from './messages.ts';

export type TransferOutcome =
  | { readonly ok: true; readonly bytes: number }
  | { readonly ok: false; readonly failure: TransferFailure; readonly message: string; readonly bytes: number };

/** What a session asks of its passive endpoint (messages.ts, as it crosses to the worker). */
export type OpenOptions = PassiveRequest;

export interface PassiveEndpoint {
  /** The port the data connection is expected on. */
  readonly port: number;
  /** Runs one transfer; `onStarted` fires once, before the outcome, when data may flow (send 150). */
  transfer(command: TransferCommand, onStarted: () => void): Promise<TransferOutcome>;
  /** Ends the endpoint and any transfer on it; an upload cut here is never committed. */
  cancel(): void;
}

export interface DataPlane {
  /** Starts a passive endpoint; resolves once it listens. */
  open(options: OpenOptions): Promise<PassiveEndpoint>;
  /** Passive endpoints whose task is still running. */
  readonly openChannels: number;
  readonly utilization: number;
  readonly uploadBufferBytes: number;
  readonly threadCount: number;
  close(): Promise<void>;
}
