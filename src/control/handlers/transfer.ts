// PASV/EPSV, RETR/STOR/APPE, LIST/NLST/MLSD and ABOR: the control side of passive transfers.
import { FtpError, Reply, failureReply, type ReplyCode } from '../replies.ts';
import type { Session } from '../session.ts';
import { inspectQuietly, resolveArg } from '../resolve.ts';
import { recordTransfer } from '../transfer-record.ts';
import { splitListArgument, type Entry, type ListingFormat } from '../../listing.ts';
import { directoryPrefix, baseName } from '../../paths.ts';
import type { TransferCommand } from '../../data/messages.ts';
import type { ResumePoint } from '../../storage/driver.ts';
import type { PassiveEndpoint, TransferOutcome } from '../../data/data-plane.ts';
import { log } from '../../log.ts';

function requireProtection(session: Session): void {
  if (session.protection !== 'P' && !session.server.config.allowClearData) {
    throw new FtpError(Reply.ProtectionNotAllowed, 'Data connections must be protected: send PBSZ 0 and PROT P first.');
  }
}

async function openPassive(session: Session): Promise<PassiveEndpoint> {
  if (session.server.draining()) throw new FtpError(Reply.ServiceNotAvailable, 'Server shutting down; no new transfers.');
  requireProtection(session);
  if (session.transfer) throw new FtpError(Reply.CannotOpenData, 'A transfer is in progress.');
  session.passive?.cancel();
  session.passive = undefined;
  const { config } = session.server;
  if (!session.target) throw new FtpError(Reply.NotLoggedIn, 'Not logged in.');
  try {
    const channel = await session.server.dataPlane.open({
      bindAddress: session.localAddress,
      controlAddress: session.remoteAddress,
      proxyProtocolFrom: config.proxyProtocolFrom,
      tls: session.protection === 'P',
      tlsBinding: session.tlsBinding,
      tlsSessions: session.server.tlsSessions.sessionsOf(session.tlsBinding),
      requireSessionReuse: config.tlsSessionReuse !== 'optional',
      target: session.target,
    });
    session.passive = channel;
    return channel;
  } catch (error) {
    log.warn('passive endpoint failed', { session: session.id, error: error instanceof Error ? error.message : String(error) });
    throw new FtpError(Reply.CannotOpenData, 'Cannot open a passive port.');
  }
}

export async function pasv(session: Session): Promise<void> {
  if (session.epsvAll) throw new FtpError(Reply.BadSequence, 'EPSV ALL was sent: use EPSV.');
  const address = session.server.config.pasvAddress ?? session.localAddress;
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(address)) {
    throw new FtpError(Reply.CannotOpenData, 'PASV needs an IPv4 address; use EPSV.');
  }
  const channel = await openPassive(session);
  const p = channel.port;
  session.reply(Reply.EnteringPassive, `Entering Passive Mode (${address.replace(/\./g, ',')},${p >> 8},${p & 0xff}).`);
}

export async function epsv(session: Session, arg: string): Promise<void> {
  const protocol = arg.trim().toUpperCase();
  if (protocol === 'ALL') {
    session.epsvAll = true;
    session.reply(Reply.CommandOk, 'EPSV ALL accepted.');
    return;
  }
  const family = session.localAddress.includes(':') ? '2' : '1';
  if (protocol !== '' && protocol !== family) {
    throw new FtpError(Reply.NetworkProtocolNotSupported, `Network protocol not supported, use (${family}).`);
  }
  const channel = await openPassive(session);
  session.reply(Reply.EnteringExtendedPassive, `Entering Extended Passive Mode (|||${channel.port}|).`);
}

export function port(session: Session): void {
  session.reply(Reply.NotImplemented, 'Active mode is not supported; use PASV or EPSV.');
}

function outcomeReply(outcome: TransferOutcome): readonly [ReplyCode, string] {
  if (outcome.ok) return [Reply.ClosingData, `Transfer complete (${outcome.bytes} bytes).`];
  return failureReply(outcome.failure, outcome.message);
}

/**
 * Runs a transfer in the background: the command loop keeps serving ABOR, STAT, NOOP and QUIT.
 * Whatever happens, the transfer ends with one reply and frees the session for the next one.
 */
function startTransfer(session: Session, command: TransferCommand, path: string, opening: string): void {
  const channel = session.passive;
  session.passive = undefined;
  if (!channel) throw new FtpError(Reply.CannotOpenData, 'Use PASV or EPSV first.');
  const started = performance.now();
  const { metrics } = session.server;
  metrics.transfersInFlight.inc();
  const run = async (): Promise<void> => {
    const outcome = await channel
      .transfer(command, () => session.reply(Reply.FileStatusOkOpeningData, opening))
      .finally(() => metrics.transfersInFlight.dec());
    const [code, message] = outcomeReply(outcome);
    try {
      recordTransfer(session, { command, path, outcome, code, seconds: (performance.now() - started) / 1000 });
    } finally {
      session.transfer = undefined;
      session.reply(code, message);
    }
  };
  const done = run().catch((error: unknown) => {
    log.error('transfer failed unexpectedly', { session: session.id, error: error instanceof Error ? error.stack : String(error) });
    channel.cancel();
    if (session.transfer?.done === done) {
      session.transfer = undefined;
      session.reply(Reply.LocalError, 'Local error in processing; transfer aborted.');
    }
  });
  session.transfer = { channel, done };
}

function takeRestOffset(session: Session): number {
  const offset = session.restOffset;
  session.restOffset = 0;
  return offset;
}

/** Cancels the prepared passive endpoint when a transfer command is refused before it starts. */
async function withPassiveCleanup(session: Session, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (!session.transfer) {
      session.passive?.cancel();
      session.passive = undefined;
    }
    session.replyError(error, 'transfer');
  }
}

export async function retr(session: Session, arg: string): Promise<void> {
  const offset = takeRestOffset(session);
  await withPassiveCleanup(session, async () => {
    requireProtection(session);
    const { path, location } = resolveArg(session, arg);
    if (location.kind !== 'object') throw new FtpError(Reply.FileUnavailable, `${arg}: Not a file.`);
    const node = await inspectQuietly(session.driver, location);
    if (node.type !== 'file') throw new FtpError(Reply.FileUnavailable, `${arg}: No such file.`);
    if (node.resumable) throw new FtpError(Reply.FileUnavailable, `${arg}: Upload not finished; continue it with REST ${node.resumable.offset} and STOR, or APPE.`);
    const opening = `Opening BINARY mode data connection for ${baseName(location.key)} (${node.stat.size} bytes).`;
    startTransfer(session, { op: 'retrieve', bucket: location.bucket, key: location.key, offset }, path, opening);
  });
}

/**
 * The resumable upload a STOR after REST n, or an APPE, continues (SPEC §7); undefined for a
 * fresh upload. REST n must name the upload's offset exactly.
 */
async function continuedUpload(session: Session, location: { bucket: string; key: string }, offset: number, append: boolean): Promise<ResumePoint | undefined> {
  // Without the capability, store() has already refused REST n > 0.
  if (!session.driver.capabilities.resumableUpload || (offset === 0 && !append)) return undefined;
  const point = await session.driver.resumePoint?.(location.bucket, location.key);
  if (offset > 0 && point?.offset !== offset) {
    const why = point ? `the interrupted upload of this file continues at ${point.offset}` : 'there is no interrupted upload of this file';
    throw new FtpError(Reply.ActionNotTaken, `Cannot restart the upload at ${offset}: ${why}.`);
  }
  return point;
}

async function store(session: Session, arg: string, append: boolean): Promise<void> {
  const offset = takeRestOffset(session);
  await withPassiveCleanup(session, async () => {
    requireProtection(session);
    if (offset > 0 && !session.driver.capabilities.resumableUpload) {
      throw new FtpError(Reply.ActionNotTaken, 'Uploads cannot restart at an offset: S3 objects are written whole.');
    }
    const { path, location } = resolveArg(session, arg);
    if (location.kind !== 'object' || location.key.endsWith('/')) {
      throw new FtpError(Reply.FileNameNotAllowed, 'Files can only be stored inside a bucket.');
    }
    const resume = await continuedUpload(session, location, offset, append);
    if (append && !resume && !session.driver.capabilities.append) {
      const node = await inspectQuietly(session.driver, location);
      if (node.type !== 'missing') throw new FtpError(Reply.TransferAborted, 'The file exists and S3 objects cannot be appended to.');
    }
    const name = baseName(location.key);
    const opening = resume ? `Ok to send data for ${name} from byte ${resume.offset}.` : `Ok to send data for ${name}.`;
    startTransfer(session, { op: 'store', bucket: location.bucket, key: location.key, resume }, path, opening);
  });
}

export const stor = (session: Session, arg: string): Promise<void> => store(session, arg, false);
export const appe = (session: Session, arg: string): Promise<void> => store(session, arg, true);

async function listing(session: Session, arg: string, format: ListingFormat): Promise<void> {
  await withPassiveCleanup(session, async () => {
    requireProtection(session);
    const pathArg = format === 'mlsd' ? arg : splitListArgument(arg).path;
    const { path, location } = resolveArg(session, pathArg);
    const node = await inspectQuietly(session.driver, location);
    if (node.type === 'missing') throw new FtpError(Reply.FileUnavailable, `${pathArg}: No such file or directory.`);
    let entries: Entry[] = [];
    let source: Extract<TransferCommand, { op: 'list' }>['source'];
    if (node.type === 'file') {
      if (format === 'mlsd') throw new FtpError(Reply.SyntaxErrorArgs, `${pathArg}: Not a directory; use MLST.`);
      const name = format === 'nlst' ? pathArg : baseName(location.kind === 'object' ? location.key : '');
      entries = [{ name, type: 'file', size: node.stat.size, modified: node.stat.modified, resumable: node.resumable !== undefined }];
    } else if (location.kind === 'root') {
      source = { root: true };
    } else {
      source = { bucket: location.bucket, prefix: directoryPrefix(location) };
    }
    const command: TransferCommand = { op: 'list', format, source, entries, now: session.server.now().getTime() };
    startTransfer(session, command, path, 'Here comes the directory listing.');
  });
}

export const list = (session: Session, arg: string): Promise<void> => listing(session, arg, 'list');
export const nlst = (session: Session, arg: string): Promise<void> => listing(session, arg, 'nlst');
export const mlsd = (session: Session, arg: string): Promise<void> => listing(session, arg, 'mlsd');

export async function abor(session: Session): Promise<void> {
  const running = session.transfer;
  if (running) {
    running.channel.cancel();
    await running.done;
    session.reply(Reply.ClosingData, 'ABOR successful.');
    return;
  }
  session.passive?.cancel();
  session.passive = undefined;
  session.reply(Reply.ClosingData, 'No transfer to abort.');
}
