// The classic wu-ftpd/vsftpd xferlog line, one per transfer, for operators' existing tooling.
import { appendFile } from 'node:fs/promises';
import { log } from './log.ts';

export interface TransferRecord {
  readonly finished: Date;
  readonly seconds: number;
  readonly remote: string;
  readonly bytes: number;
  readonly path: string;
  readonly direction: 'i' | 'o';
  readonly user: string;
  readonly complete: boolean;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/** Formats one xferlog line (UTC); spaces in names become underscores, as xferlog readers expect. */
export function formatXferLine(r: TransferRecord): string {
  const d = r.finished;
  const when = `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
  const name = r.path.replace(/\s/g, '_');
  return `${when} ${Math.max(1, Math.round(r.seconds))} ${r.remote} ${r.bytes} ${name} b _ ${r.direction} r ${r.user} ftp 1 ${r.user} ${r.complete ? 'c' : 'i'}\n`;
}

export function xferLogger(file: string | undefined): ((record: TransferRecord) => void) | undefined {
  if (file === undefined) return undefined;
  let queue = Promise.resolve();
  return (record) => {
    // Appends in order, one at a time; a failing disk is logged, never fatal to the transfer.
    queue = queue
      .then(() => appendFile(file, formatXferLine(record)))
      .catch((error: unknown) => log.warn('xferlog write failed', { file, error: String(error) }));
  };
}
