// What a finished transfer leaves behind: metrics, the session's counters, the log line and the
// xferlog record, all from one place.
import type { Session } from './session.ts';
import type { ReplyCode } from './replies.ts';
import type { TransferCommand } from '../data/messages.ts';
import type { TransferOutcome } from '../data/data-plane.ts';
import { log } from '../log.ts';

export interface FinishedTransfer {
  readonly command: TransferCommand;
  readonly path: string;
  readonly outcome: TransferOutcome;
  /** The final reply's code. */
  readonly code: ReplyCode;
  readonly seconds: number;
}

export function recordTransfer(session: Session, { command, path, outcome, code, seconds }: FinishedTransfer): void {
  const { metrics } = session.server;
  const inbound = command.op === 'store';
  metrics.transfers.observe({ op: command.op, result: outcome.ok ? 'ok' : 'failed' }, seconds);
  metrics.bytes.inc({ direction: inbound ? 'in' : 'out' }, outcome.bytes);
  session.transfers += 1;
  if (inbound) session.bytesIn += outcome.bytes;
  else session.bytesOut += outcome.bytes;
  log.info('transfer', {
    session: session.id,
    remote: session.remoteAddress,
    user: session.accessKeyId,
    op: command.op,
    path,
    code,
    bytes: outcome.bytes,
    ms: Math.round(seconds * 1000),
    detail: outcome.ok ? undefined : outcome.message,
  });
  if (command.op === 'list') return;
  session.server.transferLog?.({
    finished: session.server.now(),
    seconds,
    remote: session.remoteAddress,
    bytes: outcome.bytes,
    path,
    direction: inbound ? 'i' : 'o',
    user: session.accessKeyId ?? '-',
    complete: outcome.ok,
  });
}
