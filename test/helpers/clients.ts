// Runs real FTPS clients (curl, lftp, Python ftplib) against a gateway, each bounded by a timeout
// after which only that child is killed.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Gateway } from './gateway.ts';

export interface RunResult {
  /** Exit status, or undefined when the process was killed. */
  readonly code: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly ms: number;
}

export interface RunOptions {
  readonly timeoutMs: number;
  readonly cwd?: string;
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Spawns a program without a shell, collects its output and kills it (by its own PID) on timeout. */
export function run(program: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(program, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ code: undefined, stdout: '', stderr: error.message, timedOut, ms: Date.now() - started });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({
        code: code ?? undefined,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        ms: Date.now() - started,
      });
    });
  });
}

/** A one-line summary of a run for assertion messages. */
export function describe(result: RunResult): string {
  const tail = (text: string): string => text.trim().split('\n').slice(-6).join(' | ');
  return `exit=${result.code ?? 'killed'}${result.timedOut ? ' (timed out)' : ''} ${result.ms}ms stdout: ${tail(result.stdout)} stderr: ${tail(result.stderr)}`;
}

export function ftpUrl(gw: Gateway, remotePath: string): string {
  const encoded = remotePath
    .split('/')
    .map((part) => encodeURIComponent(part))
    .join('/');
  return `ftp://${gw.host}:${gw.port}${encoded.startsWith('/') ? encoded : `/${encoded}`}`;
}

/** curl with explicit FTPS against the gateway; `-w` prints the last FTP reply code on the last line. */
export function curl(gw: Gateway, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const seconds = String(Math.max(1, Math.floor(options.timeoutMs / 1000) - 1));
  return run(
    'curl',
    ['--ssl-reqd', '-k', '-sS', '--ftp-pasv', '--max-time', seconds, '-u', `${gw.user}:${gw.password}`, '-w', '\n%{response_code}', ...args],
    options,
  );
}

/** The FTP reply code curl printed with `-w` (the last line of its output). */
export function curlCode(result: RunResult): number {
  const lines = result.stdout.split('\n');
  return Number(lines[lines.length - 1]);
}

/** The output curl wrote to stdout, without the reply code line `-w` added. */
export function curlBody(result: RunResult): string {
  const text = result.stdout;
  return text.slice(0, text.lastIndexOf('\n'));
}

function lftpQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export const LFTP_SETTINGS = [
  'set ftp:ssl-force true',
  'set ftp:ssl-protect-data true',
  'set ssl:verify-certificate no',
  'set ftp:passive-mode true',
  'set net:max-retries 1',
  'set net:timeout 20',
  'set cmd:fail-exit true',
  'set xfer:clobber true',
];

/** Runs lftp commands (one per entry) after the FTPS settings and `open`; `extra` settings go first. */
export function lftp(gw: Gateway, commands: readonly string[], options: RunOptions & { extra?: readonly string[] }): Promise<RunResult> {
  const script = [
    ...LFTP_SETTINGS,
    ...(options.extra ?? []),
    `open --user ${lftpQuote(gw.user)} --password ${lftpQuote(gw.password)} ftp://${gw.host}:${gw.port}`,
    ...commands,
    'quit',
  ].join('; ');
  return run('lftp', ['-c', script], options);
}

export { lftpQuote };

/**
 * Runs rclone against the gateway as the remote `:ftp:` (set up from the environment, no config
 * file), the way the README sets it up: explicit TLS, certificate not checked.
 */
export async function rclone(gw: Gateway, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const obscured = await run('rclone', ['obscure', gw.password], { timeoutMs: 10_000 });
  if (obscured.code !== 0) throw new Error(`rclone obscure: ${describe(obscured)}`);
  const env = {
    RCLONE_CONFIG: '/dev/null',
    RCLONE_FTP_HOST: gw.host,
    RCLONE_FTP_PORT: String(gw.port),
    RCLONE_FTP_USER: gw.user,
    RCLONE_FTP_PASS: obscured.stdout.trim(),
    RCLONE_FTP_EXPLICIT_TLS: 'true',
    RCLONE_FTP_NO_CHECK_CERTIFICATE: 'true',
    ...options.env,
  };
  return run('rclone', ['--retries', '1', '--low-level-retries', '1', ...args], { ...options, env });
}

export interface FtplibStep {
  readonly op: 'cwd' | 'mkd' | 'stor' | 'retr' | 'mlsd' | 'nlst' | 'size';
  readonly path?: string;
  readonly file?: string;
  readonly rest?: number;
}

export interface FtplibStepResult {
  readonly op: string;
  readonly reply?: string;
  readonly entries?: Array<[string, Record<string, string>]>;
  readonly names?: string[];
  readonly size?: number;
}

export interface FtplibOutput {
  readonly ok: boolean;
  readonly results: FtplibStepResult[];
  readonly error?: { type: string; message: string; code: number | null; lastReply?: string };
}

const FTPLIB_SCRIPT = path.resolve(import.meta.dirname, 'ftplib_client.py');

/**
 * Runs test/helpers/ftplib_client.py; `reuse: false` uses an unmodified FTP_TLS; `sourceAddress`
 * binds its control and data connections to that local address.
 */
export async function ftplib(
  gw: Gateway,
  steps: readonly FtplibStep[],
  options: RunOptions & { reuse?: boolean; socketTimeout?: number; sourceAddress?: string },
): Promise<{ run: RunResult; output: FtplibOutput | undefined }> {
  const args = {
    source: options.sourceAddress,
    host: gw.host,
    port: gw.port,
    user: gw.user,
    password: gw.password,
    reuse: options.reuse ?? true,
    timeout: options.socketTimeout ?? 10,
    steps,
  };
  const result = await run('python3', [FTPLIB_SCRIPT, JSON.stringify(args)], options);
  let output: FtplibOutput | undefined;
  try {
    output = JSON.parse(result.stdout) as FtplibOutput;
  } catch {
    output = undefined;
  }
  return { run: result, output };
}
