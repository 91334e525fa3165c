// A data plane that runs passive tasks on the calling thread instead of worker threads: the same
// phases (passive-task.ts) and the same channel, without Piscina. For the in-process test harness,
// where handlers run against an in-memory store that only this thread can see.
import { BroadcastChannel } from 'node:worker_threads';
import { ServerTls, type TlsEngine } from '../tls/server-tls.ts';
import { TLS_RELOAD_CHANNEL, type TlsMaterial } from '../tls/material.ts';
import { partBuffers } from '../storage/part-buffers.ts';
import { PassivePorts } from './passive-ports.ts';
import { openPassiveTask } from './passive-channel.ts';
import { runPassiveTask } from './passive-task.ts';
import type { DataPlane, OpenOptions, PassiveEndpoint } from './data-plane.ts';

export interface InlineDataPlaneOptions {
  readonly pasvLow: number;
  readonly pasvHigh: number;
  readonly acceptTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly tls: TlsMaterial;
  readonly tlsEngine: TlsEngine;
}

export class InlineDataPlane implements DataPlane {
  readonly #options: InlineDataPlaneOptions;
  readonly #ports: PassivePorts;
  readonly #tls: ServerTls;
  readonly #tlsUpdates = new BroadcastChannel(TLS_RELOAD_CHANNEL);
  openChannels = 0;
  readonly utilization = 0;
  readonly threadCount = 1;

  constructor(options: InlineDataPlaneOptions) {
    this.#options = options;
    this.#ports = new PassivePorts(options.pasvLow, options.pasvHigh);
    this.#tls = new ServerTls(options.tls, options.tlsEngine);
    this.#tlsUpdates.onmessage = (event: unknown): void => this.#tls.reload((event as MessageEvent<TlsMaterial>).data);
    this.#tlsUpdates.unref();
  }

  open(options: OpenOptions): Promise<PassiveEndpoint> {
    const { channel, task } = openPassiveTask(options, this.#ports, this.#options);
    this.openChannels += 1;
    const finished = runPassiveTask(task, { tls: this.#tls });
    void channel
      .follow(finished, (error) => ({ type: 'failed', failure: 'internal', bytes: 0, message: String(error), started: false }))
      .finally(() => {
        this.openChannels -= 1;
      });
    return channel.listening();
  }

  get uploadBufferBytes(): number {
    return partBuffers().usedBytes;
  }

  async close(): Promise<void> {
    this.#tlsUpdates.close();
  }
}
