// Named FTP reply codes (RFC in the comment) and reply formatting. Pure.

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

/** Formats a reply; several lines become the RFC 959 multi-line form `code-…` / `code …`. */
export function formatReply(code: number, message: string | readonly string[]): string {
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
