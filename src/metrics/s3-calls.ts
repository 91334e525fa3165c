// S3 call timings on their way to the metrics: recorded directly on the main thread, batched over a
// BroadcastChannel from data workers. Apart from metrics.ts so that workers do not load prom-client
// (about 15 MiB per thread) just to send their timings.
import { BroadcastChannel } from 'node:worker_threads';
import type { StorageCall, StorageCallObserver } from '../storage/driver.ts';

const S3_METRICS_CHANNEL = 's3ftpd-s3-metrics';

let observeLocally: StorageCallObserver | undefined;
let pending: StorageCall[] = [];
let channel: BroadcastChannel | undefined;

/** Records one S3 call: directly on the main thread, batched over the channel from workers. */
export function recordS3Call(observation: StorageCall): void {
  if (observeLocally) {
    observeLocally(observation);
    return;
  }
  pending.push(observation);
  if (pending.length === 1) {
    setTimeout(() => {
      channel ??= new BroadcastChannel(S3_METRICS_CHANNEL);
      channel.unref();
      channel.postMessage(pending);
      pending = [];
    }, 1000).unref();
  }
}

/** Makes `observer` (the main thread's metrics) hear of every S3 call, this thread's and the workers'. */
export function observeS3Calls(observer: StorageCallObserver): BroadcastChannel {
  observeLocally = observer;
  const incoming = new BroadcastChannel(S3_METRICS_CHANNEL);
  incoming.onmessage = (event: unknown): void => {
    for (const call of (event as MessageEvent<StorageCall[]>).data) observer(call);
  };
  incoming.unref();
  return incoming;
}
