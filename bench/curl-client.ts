// One curl 7.88 process per transfer, as bench/curl-transfer.ts uses them: explicit FTPS with the
// ClientHello first on every data connection (`--ssl-reqd`), certificate not checked (`-k`), passive
// (EPSV). `--ftp-method nocwd`: the whole path goes with STOR/RETR, because the sink's generated
// `gen/<size>` objects are in no listing, so a CWD into `gen` is refused. Its CPU is not read here: once Node has reaped it, it is
// in this process's cutime/cstime (childrenSeconds()).
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { clockTicks } from './proc.ts';
import { patternSlice } from './pattern.ts';

export interface CurlJob {
  readonly op: 'up' | 'down';
  /** ftp://127.0.0.1:PORT/bucket/key */
  readonly url: string;
  readonly user: string;
  readonly password: string;
  /** The file to upload (up only). */
  readonly file?: string;
  /** Expected bytes; anything else is an error. */
  readonly size: number;
  /** --limit-rate in bytes/s; 0 = full speed. */
  readonly rate: number;
  readonly timeoutS: number;
}

/** Runs curl; resolves with the bytes it moved, rejects with its exit code and stderr. */
export function curlTransfer(job: CurlJob): Promise<number> {
  const args = ['--ssl-reqd', '-k', '-s', '-S', '--ftp-method', 'nocwd', '--max-time', String(job.timeoutS), '--user', `${job.user}:${job.password}`];
  if (job.rate > 0) args.push('--limit-rate', String(Math.round(job.rate)));
  if (job.op === 'up') args.push('-T', job.file ?? '/dev/null', '-w', '%{size_upload}', job.url);
  else args.push('-o', '/dev/null', '-w', '%{size_download}', job.url);
  const proc = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  proc.stderr.on('data', (chunk: Buffer) => {
    if (err.length < 4096) err += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code) => {
      const bytes = Number(out.trim());
      if (code !== 0) reject(new Error(`curl ${job.op} ${job.url.replace(/^.*\/\/[^/]*/, '')}: exit ${code} ${err.trim()}`));
      else if (bytes !== job.size) reject(new Error(`curl ${job.op}: moved ${out.trim()} of ${job.size} bytes`));
      else resolve(bytes);
    });
  });
}

/** Writes `size` pattern bytes to `file` (the upload source, made once per size). */
export function writePatternFile(file: string, size: number): void {
  const fd = openSync(file, 'w');
  try {
    // Bounded: each round writes at least one byte.
    for (let offset = 0; offset < size; ) {
      const chunk = patternSlice(offset, size - offset);
      offset += writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
}

/** CPU seconds (user + sys) of this process's reaped children: fields 16 and 17 of /proc/self/stat. */
export function childrenSeconds(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / clockTicks();
}
