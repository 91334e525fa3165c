// The data plane of the gateway: a Piscina pool of worker threads running one task per passive
// endpoint (passive-task.ts), many tasks per worker.
import { Piscina } from 'piscina';
import type { TlsMaterial } from '../tls/material.ts';
import type { TlsEngine } from '../tls/server-tls.ts';
import { log, type LogLevel } from '../log.ts';
import { PassivePorts } from './passive-ports.ts';
import { openPassiveTask } from './passive-channel.ts';
import { createBudgetShare, PartBuffers } from '../storage/part-buffers.ts';
import type { DataPlane, OpenOptions, PassiveEndpoint } from './data-plane.ts';
import type { TaskResult } from './messages.ts';
import type { WorkerData } from './worker.ts';

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
  readonly tlsEngine: TlsEngine;
}

/**
 * V8 sizes a thread's young generation from the machine's memory (here 2 × 64 MiB semi-spaces per
 * thread), and under steady load every page of it becomes resident: most of the soak's RSS.
 * 16 MiB semi-spaces (V8 counts a young generation as three of them) cost no CPU per GiB in
 * bench/RESULTS.md section 15. The main thread gets the same size from --max-semi-space-size=16
 * on the node command line (Makefile, deploy/).
 */
const WORKER_YOUNG_GENERATION_MB = 3 * 16;

const workerFile = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);

export class WorkerDataPlane implements DataPlane {
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
      workerData: { tls: options.tls, logLevel: options.logLevel, budget, tlsEngine: options.tlsEngine } satisfies WorkerData,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    // A worker that dies fails only its own tasks (they reject and their sessions answer 426);
    // the pool replaces it. Unhandled, this event would end the whole process.
    this.#pool.on('error', (error: unknown) => {
      log.error('data worker failed', { error: error instanceof Error ? error.message : String(error) });
    });
  }

  /** Starts a passive endpoint; resolves once the worker listens on its port. */
  open(options: OpenOptions): Promise<PassiveEndpoint> {
    const { channel, task } = openPassiveTask(options, this.#ports, this.#options);
    this.openChannels += 1;
    const finished = this.#pool.run(task, { transferList: [task.port] }) as Promise<TaskResult>;
    void channel
      .follow(finished, (error) => {
        const message = `data worker failed: ${error instanceof Error ? error.message : String(error)}`;
        return { type: 'failed', failure: 'connection-lost', bytes: 0, message, started: false };
      })
      .finally(() => {
        this.openChannels -= 1;
      });
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
