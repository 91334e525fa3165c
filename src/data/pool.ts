// The data plane as seen from the main thread: a Piscina pool running one task per passive
// endpoint, and the channel a session uses to drive that task.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { TlsMaterial } from '../tls/material.ts';
import type { TlsSessionRecord } from '../tls/sessions.ts';
import { log, type LogLevel } from '../log.ts';
import type { StorageTarget, StorageErrorKind } from '../storage/driver.ts';
import { PassivePorts } from './passive-ports.ts';
import { createBudgetShare, PartBuffers } from '../storage/part-buffers.ts';
import type { PassiveTask, PassiveTaskResult, RejectReason, ToMain, ToWorker, TransferCommand } from './messages.ts';

export type TransferOutcome =
  | { readonly ok: true; readonly bytes: number }
  | { readonly ok: false; readonly rejected: RejectReason; readonly message: string; readonly bytes: 0 }
  | {
      readonly ok: false;
      readonly rejected?: undefined;
      readonly kind: StorageErrorKind | 'Connection';
      readonly message: string;
      readonly bytes: number;
    };

export interface DataPlaneOptions {
  readonly workers: number;
  readonly pasvLow: number;
  readonly pasvHigh: number;
  readonly acceptTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly logLevel: LogLevel;
  readonly tls: TlsMaterial;
  /** Bytes of upload part buffers all workers together may hold. */
  readonly uploadBufferBudget: number;
}

export interface OpenOptions {
  readonly bindAddress: string;
  readonly controlAddress: string;
  readonly tls: boolean;
  readonly tlsBinding: string;
  readonly tlsSessions: readonly TlsSessionRecord[];
  readonly requireSessionReuse: boolean;
  readonly target: StorageTarget;
}

const LATE_MESSAGE_GRACE_MS = 1000;

/**
 * V8 sizes a thread's young generation from the machine's memory (here 2 × 64 MiB semi-spaces per
 * thread), and under steady load every page of it becomes resident: most of the soak's RSS.
 * 16 MiB semi-spaces (V8 counts a young generation as three of them) cost no CPU per GiB in
 * bench/RESULTS.md section 15. The main thread gets the same size from --max-semi-space-size=16
 * on the node command line (Makefile, deploy/).
 */
const WORKER_YOUNG_GENERATION_MB = 3 * 16;

const workerFile = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);

export class DataPlane {
  readonly #pool: Piscina;
  readonly #ports: PassivePorts;
  readonly #options: DataPlaneOptions;
  /** A view of the workers' shared budget, for metrics. */
  readonly #uploadBuffers: PartBuffers;

  constructor(options: DataPlaneOptions) {
    const budget = createBudgetShare(options.uploadBufferBudget);
    this.#uploadBuffers = new PartBuffers(budget);
    this.#ports = new PassivePorts(options.pasvLow, options.pasvHigh);
    this.#options = options;
    this.#pool = new Piscina({
      filename: workerFile.href,
      minThreads: options.workers,
      maxThreads: options.workers,
      // Tasks are I/O-bound and last a whole transfer: many share one worker.
      concurrentTasksPerWorker: 512,
      maxQueue: 'auto',
      idleTimeout: Number.MAX_SAFE_INTEGER,
      // The default parks idle workers in Atomics.wait, freezing their timers and sockets.
      atomics: 'disabled',
      workerData: { tls: options.tls, logLevel: options.logLevel, budget },
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    // A worker that dies fails only its own tasks (they reject and their sessions answer 426);
    // the pool replaces it. Unhandled, this event would end the whole process.
    this.#pool.on('error', (error: unknown) => {
      log.error('data worker failed', { error: error instanceof Error ? error.message : String(error) });
    });
  }

  /** Starts a passive endpoint; resolves once the worker listens on its port. */
  open(options: OpenOptions): Promise<PassiveChannel> {
    const { port1, port2 } = new MessageChannel();
    const task: PassiveTask = {
      port: port2,
      bindAddress: options.bindAddress,
      low: this.#ports.low,
      high: this.#ports.high,
      firstPort: this.#ports.nextStart(),
      controlAddress: options.controlAddress,
      tls: options.tls,
      tlsBinding: options.tlsBinding,
      tlsSessions: options.tlsSessions,
      requireSessionReuse: options.requireSessionReuse,
      acceptTimeoutMs: this.#options.acceptTimeoutMs,
      stallTimeoutMs: this.#options.stallTimeoutMs,
      target: options.target,
    };
    const channel = new PassiveChannel(port1);
    this.openChannels += 1;
    const finished = this.#pool.run(task, { transferList: [port2] }) as Promise<PassiveTaskResult>;
    finished.then(
      (result) => {
        this.openChannels -= 1;
        channel.taskEnded(result.final, false);
      },
      (error: unknown) => {
        this.openChannels -= 1;
        channel.taskEnded({ type: 'failed', kind: 'Connection', bytes: 0, message: `data worker failed: ${error instanceof Error ? error.message : String(error)}` }, true);
      },
    );
    return channel.listening();
  }

  /** Passive endpoints whose task is still running. */
  openChannels = 0;

  get utilization(): number {
    return this.#pool.utilization;
  }

  get uploadBufferBytes(): number {
    return this.#uploadBuffers.usedBytes;
  }

  get threadCount(): number {
    return this.#pool.threads.length;
  }

  async close(): Promise<void> {
    await this.#pool.close({ force: true });
  }
}

export class PassiveChannel {
  port = 0;
  readonly #messages: MessagePort;
  #rejection: { reason: RejectReason; message: string } | undefined;
  #outcome: ((outcome: TransferOutcome) => void) | undefined;
  #onStarted: (() => void) | undefined;
  #listening: { resolve: (channel: PassiveChannel) => void; reject: (error: Error) => void } | undefined;
  #ended = false;

  constructor(messages: MessagePort) {
    this.#messages = messages;
    messages.on('message', (message: ToMain) => this.#receive(message));
  }

  listening(): Promise<PassiveChannel> {
    return new Promise((resolve, reject) => {
      this.#listening = { resolve, reject };
    });
  }

  #receive(message: ToMain): void {
    switch (message.type) {
      case 'listening':
        this.port = message.port;
        this.#listening?.resolve(this);
        this.#listening = undefined;
        return;
      case 'connected':
        return;
      case 'started':
        if (this.#outcome) this.#onStarted?.();
        return;
      case 'rejected':
        this.#rejection = { reason: message.reason, message: message.message };
        this.#listening?.reject(new Error(message.message));
        this.#listening = undefined;
        this.#settle({ ok: false, rejected: message.reason, message: message.message, bytes: 0 });
        return;
      case 'done':
        this.#settle({ ok: true, bytes: message.bytes });
        return;
      case 'failed':
        this.#settle({ ok: false, kind: message.kind, message: message.message, bytes: message.bytes });
        return;
    }
  }

  #settle(outcome: TransferOutcome): void {
    const deliver = this.#outcome;
    this.#outcome = undefined;
    deliver?.(outcome);
  }

  /**
   * Called when the worker task finished or died. The task's result and the port's messages travel
   * on different channels, so a finished task's last message may still be on its way: give it a
   * moment and apply the task's own copy only if it never came. A dead worker fails at once.
   */
  taskEnded(final: PassiveTaskResult['final'], crashed: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    const finish = (): void => {
      this.#receive(final);
      this.#listening?.reject(new Error(final.type === 'done' ? 'data task ended' : final.message));
      this.#listening = undefined;
      this.#messages.close();
    };
    if (crashed) finish();
    else setTimeout(finish, LATE_MESSAGE_GRACE_MS).unref();
  }

  /** Runs one transfer on this endpoint; `onStarted` fires when data starts to flow (send 150). */
  transfer(command: TransferCommand, onStarted: () => void): Promise<TransferOutcome> {
    if (this.#rejection) {
      return Promise.resolve({ ok: false, rejected: this.#rejection.reason, message: this.#rejection.message, bytes: 0 });
    }
    if (this.#ended) return Promise.resolve({ ok: false, kind: 'Connection', message: 'data connection closed', bytes: 0 });
    return new Promise((resolve) => {
      this.#outcome = resolve;
      this.#onStarted = onStarted;
      this.#send({ type: 'transfer', command });
    });
  }

  cancel(): void {
    if (!this.#ended) this.#send({ type: 'cancel' });
  }

  #send(message: ToWorker): void {
    this.#messages.postMessage(message);
  }
}
