// The contract between the control plane (main thread) and the data plane (worker threads).
//
// Every channel between the threads:
// - The pool task: the main thread submits one PassiveTask per PASV/EPSV (Piscina); the task's
//   result, a TaskResult, is the one and only report of how the transfer ended.
// - The task's MessagePort (PassiveTask.port): ToWorker from the main thread (the command to run,
//   or cancel), ToMain from the worker ('listening' with the port, 'started' when data may flow).
// - BroadcastChannel TLS_RELOAD_CHANNEL (tls/material.ts): reloaded TlsMaterial, main → workers.
// - BroadcastChannel of metrics.ts: batches of S3 call timings, workers → main.
// - The upload buffer budget (storage/part-buffers.ts): a SharedArrayBuffer of counters given to
//   every worker in workerData, read by the main thread for the metrics gauge.
import type { MessagePort } from 'node:worker_threads';
import type { ResumePoint, StorageTarget, StorageErrorKind } from '../storage/driver.ts';
import type { Entry, ListingFormat } from '../listing.ts';
import type { TlsSessionRecord } from '../tls/sessions.ts';

/** What a session asks of its passive endpoint. */
export interface PassiveRequest {
  readonly bindAddress: string;
  /** The control connection's client; data connections from elsewhere are dropped. */
  readonly controlAddress: string;
  /** Trusted load balancers (CIDR list text): their connections carry the client in a PROXY header. */
  readonly proxyProtocolFrom: string;
  readonly tls: boolean;
  /** The control connection's session id context: only its sessions resume here. */
  readonly tlsBinding: string;
  /** Its TLS 1.2 sessions, for clients that resume by session id rather than by ticket. */
  readonly tlsSessions: readonly TlsSessionRecord[];
  readonly requireSessionReuse: boolean;
  readonly target: StorageTarget;
}

/** What the main thread submits to the pool for one PASV/EPSV: the request and the data plane's part. */
export interface PassiveTask extends PassiveRequest {
  readonly port: MessagePort;
  readonly low: number;
  readonly high: number;
  readonly firstPort: number;
  readonly acceptTimeoutMs: number;
  readonly stallTimeoutMs: number;
}

export type TransferCommand =
  | {
      readonly op: 'store';
      readonly bucket: string;
      readonly key: string;
      /** The resumable upload this one continues (REST n + STOR, APPE). */
      readonly resume?: ResumePoint | undefined;
    }
  | { readonly op: 'retrieve'; readonly bucket: string; readonly key: string; readonly offset: number }
  | {
      readonly op: 'list';
      readonly format: ListingFormat;
      /** Listing of a bucket's directory; absent for fixed entries (the root, a single file). */
      readonly source: { readonly bucket: string; readonly prefix: string } | { readonly root: true } | undefined;
      readonly entries: readonly Entry[];
      readonly now: number;
    };

export type ToWorker = { readonly type: 'transfer'; readonly command: TransferCommand } | { readonly type: 'cancel' };

export type ToMain = { readonly type: 'listening'; readonly port: number } | { readonly type: 'started' };

/**
 * Why a data connection or its transfer failed when storage is not to blame, one code per phase
 * of the task: no port to listen on, no connection in time, TLS failed or did not resume the
 * control session, cancelled (ABOR, QUIT, shutdown) before data flowed, the connection broke
 * while data flowed, or an error nobody expected.
 */
export type ConnectionFailure = 'no-port' | 'accept-timeout' | 'tls-failed' | 'session-not-reused' | 'cancelled' | 'connection-lost' | 'internal';

/** Every way a transfer can fail: a connection failure or the storage's error kind. */
export type TransferFailure = ConnectionFailure | StorageErrorKind;

/** How a passive task ended: its Piscina result, and the only report of the end. */
export type TaskResult =
  | { readonly type: 'done'; readonly bytes: number; readonly started: true }
  | {
      readonly type: 'failed';
      readonly failure: TransferFailure;
      readonly message: string;
      readonly bytes: number;
      /** Whether 'started' was posted (the 150 reply is owed before the final one). */
      readonly started: boolean;
    };
