// Typed messages between a control session (main thread) and its passive transfer task (worker).
import type { MessagePort } from 'node:worker_threads';
import type { StorageTarget, StorageErrorKind } from '../storage/driver.ts';
import type { Entry, ListingFormat } from '../listing.ts';
import type { TlsSessionRecord } from '../tls/sessions.ts';

/** What the main thread submits to the pool for one PASV/EPSV. */
export interface PassiveTask {
  readonly port: MessagePort;
  readonly bindAddress: string;
  readonly low: number;
  readonly high: number;
  readonly firstPort: number;
  /** The control connection's peer; data connections from elsewhere are dropped. */
  readonly controlAddress: string;
  readonly tls: boolean;
  /** The control connection's session id context: only its sessions resume here. */
  readonly tlsBinding: string;
  /** Its TLS 1.2 sessions, for clients that resume by session id rather than by ticket. */
  readonly tlsSessions: readonly TlsSessionRecord[];
  readonly requireSessionReuse: boolean;
  readonly acceptTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly target: StorageTarget;
}

export type TransferCommand =
  | { readonly op: 'store'; readonly bucket: string; readonly key: string }
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

export type RejectReason = 'accept-timeout' | 'session-not-reused' | 'tls-failed' | 'no-port' | 'closed';

export type ToMain =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'connected' }
  | { readonly type: 'rejected'; readonly reason: RejectReason; readonly message: string }
  | { readonly type: 'started' }
  | { readonly type: 'done'; readonly bytes: number }
  | {
      readonly type: 'failed';
      readonly bytes: number;
      /** 'Connection' when the data connection broke or was cancelled; else the storage error kind. */
      readonly kind: StorageErrorKind | 'Connection';
      readonly message: string;
    };

/** The task's last word, also posted on the port: results and port messages are not ordered. */
export interface PassiveTaskResult {
  readonly final: Extract<ToMain, { type: 'done' | 'failed' | 'rejected' }>;
}
