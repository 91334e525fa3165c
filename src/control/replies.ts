// Named FTP reply codes (RFC in the comment), the one mapping from a failure to its reply, and
// reply formatting. Pure.
import type { StorageErrorKind } from '../storage/driver.ts';
import type { TransferFailure } from '../data/messages.ts';

export const Reply = {
  FileStatusOkOpeningData: 150, // RFC 959
  CommandOk: 200, // RFC 959
  CommandNotNeeded: 202, // RFC 959
  SystemStatus: 211, // RFC 959
  FileStatus: 213, // RFC 959 / RFC 3659
  HelpMessage: 214, // RFC 959
  SystemType: 215, // RFC 959
  ServiceReady: 220, // RFC 959
  ClosingControl: 221, // RFC 959
  ClosingData: 226, // RFC 959
  EnteringPassive: 227, // RFC 959
  EnteringExtendedPassive: 229, // RFC 2428
  LoggedIn: 230, // RFC 959
  AuthAccepted: 234, // RFC 2228
  FileActionOk: 250, // RFC 959
  PathCreated: 257, // RFC 959
  NeedPassword: 331, // RFC 959
  PendingMoreInfo: 350, // RFC 959
  ServiceNotAvailable: 421, // RFC 959
  CannotOpenData: 425, // RFC 959
  TransferAborted: 426, // RFC 959
  FileBusy: 450, // RFC 959 (file unavailable, e.g. busy)
  LocalError: 451, // RFC 959
  SyntaxError: 500, // RFC 959
  SyntaxErrorArgs: 501, // RFC 959
  NotImplemented: 502, // RFC 959
  BadSequence: 503, // RFC 959
  NotImplementedParam: 504, // RFC 959
  ProtectionNotAllowed: 521, // RFC 4217 (data protection level required)
  NetworkProtocolNotSupported: 522, // RFC 2428
  NotLoggedIn: 530, // RFC 959
  PolicyRequiresTls: 534, // RFC 2228
  ProtLevelNotSupported: 536, // RFC 2228
  FileUnavailable: 550, // RFC 959
  FileNameNotAllowed: 553, // RFC 959
  ActionNotTaken: 554, // RFC 959 (REST with STOR)
} as const;

export type ReplyCode = (typeof Reply)[keyof typeof Reply];

/** A refusal a handler raises, already in FTP terms; the dispatcher sends it. */
export class FtpError extends Error {
  readonly code: ReplyCode;
  constructor(code: ReplyCode, message: string) {
    super(message);
    this.name = 'FtpError';
    this.code = code;
  }
}

const FAILURE_REPLIES: Readonly<Record<TransferFailure, readonly [ReplyCode, string]>> = {
  NotFound: [Reply.FileUnavailable, 'No such file or directory.'],
  AccessDenied: [Reply.FileUnavailable, 'Permission denied.'],
  Exists: [Reply.FileUnavailable, 'File or directory exists.'],
  NotEmpty: [Reply.FileUnavailable, 'Directory not empty.'],
  InvalidName: [Reply.FileNameNotAllowed, 'File name not allowed.'],
  InvalidCredentials: [Reply.NotLoggedIn, 'Credentials rejected by storage.'],
  Aborted: [Reply.TransferAborted, 'Connection closed; transfer aborted.'],
  'connection-lost': [Reply.TransferAborted, 'Connection closed; transfer aborted.'],
  Unavailable: [Reply.LocalError, 'Storage temporarily unavailable; try again.'],
  Conflict: [Reply.FileBusy, 'File busy: another session continued or removed this upload; nothing was stored.'],
  Failed: [Reply.LocalError, 'Storage error; action aborted.'],
  cancelled: [Reply.TransferAborted, 'Data connection closed; transfer aborted.'],
  'session-not-reused': [Reply.NetworkProtocolNotSupported, 'Data connection refused: it must resume the TLS session of the control connection.'],
  'no-port': [Reply.CannotOpenData, 'Cannot open data connection'],
  'accept-timeout': [Reply.CannotOpenData, 'Cannot open data connection'],
  'tls-failed': [Reply.CannotOpenData, 'Cannot open data connection'],
  internal: [Reply.CannotOpenData, 'Cannot open data connection'],
};

/**
 * The reply for every failure that is not already an FtpError: a storage error kind (from a
 * metadata command or a transfer) or a data connection's failure. `detail` is the data plane's
 * own message, shown only where it helps the client (why the data connection did not open).
 * Backend details never reach the client; they go to the log.
 */
export function failureReply(failure: TransferFailure | StorageErrorKind, detail = ''): readonly [ReplyCode, string] {
  const [code, message] = FAILURE_REPLIES[failure];
  return code === Reply.CannotOpenData ? [code, `${message}: ${detail}.`] : [code, message];
}

/** Formats a reply; several lines become the RFC 959 multi-line form `code-…` / `code …`. */
export function formatReply(code: ReplyCode, message: string | readonly string[]): string {
  // A string is one line: CR/LF from names or errors must never start a new reply line.
  const lines = (typeof message === 'string' ? [message] : [...message]).map((l) => l.replace(/[\r\n]/g, ' '));
  if (lines.length <= 1) return `${code} ${lines[0] ?? ''}\r\n`;
  const last = lines.length - 1;
  return lines
    .map((line, i) => {
      if (i === 0) return `${code}-${line}\r\n`;
      if (i === last) return `${code} ${line}\r\n`;
      // A middle line that starts with digits could be read as the end; indent it.
      return ` ${line}\r\n`;
    })
    .join('');
}

/** Quotes a path for 257 replies: embedded double quotes are doubled (RFC 959 appendix II). */
export function quotePath(path: string): string {
  return `"${path.replace(/"/g, '""')}"`;
}
