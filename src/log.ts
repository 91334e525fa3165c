// Structured logs: one JSON line per event on stderr (pino), human-readable lines when stderr is a
// terminal. Secrets never reach here: callers pass access key ids only, never PASS arguments.
import { pino, type Logger, type DestinationStream } from 'pino';

export type LogFields = Record<string, string | number | boolean | undefined>;
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';


/** Turns one pino JSON line into `time LEVEL msg key=value …` for people at a terminal. */
export function humanLine(json: string): string {
  const record = JSON.parse(json) as Record<string, unknown>;
  const { time, level, msg, ...fields } = record;
  const when = typeof time === 'string' ? time.slice(11, 23) : new Date().toISOString().slice(11, 23);
  const rest = Object.entries(fields)
    .filter(([key]) => key !== 'pid' && key !== 'hostname')
    .map(([key, value]) => `${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${when} ${String(level).toUpperCase().padEnd(5)} ${String(msg)}${rest ? ` ${rest}` : ''}\n`;
}

function destination(): DestinationStream {
  if (process.stderr.isTTY) return { write: (line: string) => process.stderr.write(humanLine(line)) };
  return pino.destination({ fd: 2, sync: true });
}

const logger: Logger = pino(
  {
    base: undefined,
    level: process.env.S3FTPD_LOG_LEVEL ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  },
  destination(),
);

export function setLogLevel(level: LogLevel): void {
  logger.level = level;
}

export const log = {
  debug: (message: string, fields: LogFields = {}): void => logger.debug(fields, message),
  info: (message: string, fields: LogFields = {}): void => logger.info(fields, message),
  warn: (message: string, fields: LogFields = {}): void => logger.warn(fields, message),
  error: (message: string, fields: LogFields = {}): void => logger.error(fields, message),
};
