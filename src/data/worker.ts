// Data worker entry: joins the shared upload buffer budget, keeps TLS for data connections
// (renewed when the certificate is reloaded), and runs one passive task per
// PASV/EPSV (passive-task.ts).
import { workerData, BroadcastChannel } from 'node:worker_threads';
import { ServerTls, type TlsEngine } from '../tls/server-tls.ts';
import { TLS_RELOAD_CHANNEL, type TlsMaterial } from '../tls/material.ts';
import { setLogLevel, type LogLevel } from '../log.ts';
import { recordS3Call } from '../metrics/s3-calls.ts';
import { observeStorageCalls } from '../storage/index.ts';
import { joinBudget, type BudgetShare } from '../storage/part-buffers.ts';
import { runPassiveTask } from './passive-task.ts';
import type { PassiveTask, TaskResult } from './messages.ts';

export interface WorkerData {
  readonly tls: TlsMaterial;
  readonly logLevel: LogLevel;
  readonly budget: BudgetShare;
  readonly tlsEngine: TlsEngine;
}

const { tls: initialMaterial, logLevel, budget, tlsEngine } = workerData as WorkerData;
setLogLevel(logLevel);
joinBudget(budget);
observeStorageCalls(recordS3Call);
const dataTls = new ServerTls(initialMaterial, tlsEngine);

// SIGHUP on the main thread reloads the certificate; new data connections use the new one.
const tlsUpdates = new BroadcastChannel(TLS_RELOAD_CHANNEL);
tlsUpdates.onmessage = (event: unknown): void => {
  dataTls.reload((event as MessageEvent<TlsMaterial>).data);
};
tlsUpdates.unref();

export default function passiveTransfer(task: PassiveTask): Promise<TaskResult> {
  return runPassiveTask(task, { tls: dataTls });
}
