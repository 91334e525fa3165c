// One-line JSON logs on stderr. Secrets never reach here: callers pass access key ids only.
export type LogFields = Record<string, string | number | boolean | undefined>;

function write(level: string, message: string, fields: LogFields): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`);
}

export const log = {
  info: (message: string, fields: LogFields = {}): void => write('info', message, fields),
  warn: (message: string, fields: LogFields = {}): void => write('warn', message, fields),
  error: (message: string, fields: LogFields = {}): void => write('error', message, fields),
};
