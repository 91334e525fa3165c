// Flags of bench/transfer.ts.
import * as path from 'node:path';
import { parseSize } from './pattern.ts';
import { ROOT } from './children.ts';

export type Mode = 'gateway' | 'direct';
export type Op = 'up' | 'down';

export interface Options {
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly modes: readonly Mode[];
  readonly ops: readonly Op[];
  readonly concurrency: readonly number[];
  readonly workers: readonly number[];
  readonly runs: number;
  readonly totalUp: number;
  readonly totalDown: number;
  readonly warmup: number;
  readonly partSize: number;
  readonly queueSize: number;
  readonly chunk: number;
  readonly verify: boolean;
  readonly gateway: string;
  readonly gatewayArgs: readonly string[];
  /** Node/V8 flags for the gateway process, before its script (e.g. --max-semi-space-size=16). */
  readonly gatewayNodeArgs: readonly string[];
  readonly pasvPorts: string;
  readonly cpuProf: string | undefined;
  readonly json: string | undefined;
  readonly timeoutS: number;
  readonly quietWaitS: number;
}

const FLAGS: ReadonlyArray<readonly [string, string]> = [
  ['--s3-endpoint URL', 'S3 to use instead of the built-in sink (e.g. http://127.0.0.1:7480 for radosgw)'],
  ['--access-key KEY / --secret-key SECRET', 'credentials for --s3-endpoint (default: $S3FTPD_TEST_ACCESS_KEY / $S3FTPD_TEST_SECRET_KEY)'],
  ['--region REGION', 'signing region (default: $S3FTPD_TEST_REGION or us-east-1)'],
  ['--modes LIST', 'gateway,direct (default both: the ratio needs both)'],
  ['--ops LIST', 'up,down (default both)'],
  ['--concurrency LIST', 'concurrent transfers per phase (default 1,16,64)'],
  ['--workers LIST', 'gateway --workers values, one gateway each (default 2)'],
  ['--runs N', 'repetitions; the table shows medians (default 3)'],
  ['--total-up SIZE', 'bytes per upload phase, split over the concurrent transfers (default 1536MiB; 512MiB with --s3-endpoint)'],
  ['--total-down SIZE', 'bytes per download phase (default 1536MiB on the sink; on a real S3 the uploads are read back)'],
  ['--warmup SIZE', 'untimed warm-up of each mode and op before measuring (default 256MiB, 0 = none)'],
  ['--part-size SIZE / --queue-size N', 'multipart settings, same for gateway and direct (default 8MiB / 2)'],
  ['--chunk SIZE', 'client write size on the data connection and the direct upload stream (default 256KiB)'],
  ['--no-verify', 'do not compare downloaded bytes with the pattern (sizes are always checked)'],
  ['--gateway FILE', 'gateway entry point (default dist/cli.js; build first)'],
  ['--gateway-arg ARG', 'extra gateway flag, repeatable (e.g. --gateway-arg=--stall-timeout=60); the bench always passes --max-connections-per-ip 4096'],
  ['--gateway-node-arg ARG', 'node flag for the gateway process, repeatable (e.g. --gateway-node-arg=--max-semi-space-size=16)'],
  ['--pasv-ports LOW-HIGH', 'gateway passive range (default 10100-12000)'],
  ['--cpu-prof DIR', 'run the gateway under node --cpu-prof, profiles in DIR/w<workers>/ (see bench/cpuprof-top.ts)'],
  ['--json FILE', 'also write every phase result as JSON'],
  ['--timeout SECONDS', 'limit for one phase (default 600)'],
  ['--quiet-wait SECONDS', 'before each phase, wait up to this long for other processes to leave the CPUs idle (default 120, 0 = never)'],
];

export function usage(): string {
  return (
    'Usage: node bench/transfer.ts [flags]\n\n' +
    'SIZE accepts binary units: 64k, 8MiB, 2G. LIST is comma-separated.\n\n' +
    FLAGS.map(([flag, help]) => `  ${flag.padEnd(38)} ${help}`).join('\n') +
    '\n'
  );
}

function list(text: string, flag: string): string[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new Error(`${flag}: empty list`);
  return items;
}

function integer(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) throw new Error(`${flag}: expected an integer from ${min} to ${max}, got ${text}`);
  return value;
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  const values = new Map<string, string>();
  const gatewayArgs: string[] = [];
  const gatewayNodeArgs: string[] = [];
  let verify = true;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--no-verify') {
      verify = false;
      continue;
    }
    const match = /^(--[a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`unexpected argument: ${arg}\n${usage()}`);
    const flag = match[1] ?? '';
    let value = match[2];
    if (value === undefined) {
      value = argv[i + 1];
      i += 1;
    }
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--gateway-arg') gatewayArgs.push(value);
    else if (flag === '--gateway-node-arg') gatewayNodeArgs.push(value);
    else if (FLAGS.some(([names]) => names.split(/ \/ | /).includes(flag))) values.set(flag, value);
    else throw new Error(`unknown flag: ${flag}\n${usage()}`);
  }
  const endpoint = values.get('--s3-endpoint');
  if (endpoint !== undefined && !/^http:\/\/127\.\d+\.\d+\.\d+:\d+\/?$/.test(endpoint)) {
    throw new Error('--s3-endpoint: expected http://127.x.x.x:PORT (the bench stays on loopback)');
  }
  const accessKeyId = values.get('--access-key') ?? (endpoint ? env.S3FTPD_TEST_ACCESS_KEY : 'bench-access-key');
  const secretAccessKey = values.get('--secret-key') ?? (endpoint ? env.S3FTPD_TEST_SECRET_KEY : 'bench-secret-key');
  if (!accessKeyId || !secretAccessKey) throw new Error('--s3-endpoint needs --access-key and --secret-key (or S3FTPD_TEST_ACCESS_KEY / S3FTPD_TEST_SECRET_KEY)');
  const modes = list(values.get('--modes') ?? 'gateway,direct', '--modes');
  for (const m of modes) if (m !== 'gateway' && m !== 'direct') throw new Error(`--modes: unknown mode ${m}`);
  const ops = list(values.get('--ops') ?? 'up,down', '--ops');
  for (const o of ops) if (o !== 'up' && o !== 'down') throw new Error(`--ops: unknown op ${o}`);
  const pasvPorts = values.get('--pasv-ports') ?? '10100-12000';
  if (!/^\d+-\d+$/.test(pasvPorts)) throw new Error('--pasv-ports: expected LOW-HIGH');
  const totalUp = parseSize(values.get('--total-up') ?? (endpoint ? '512MiB' : '1536MiB'));
  const chunk = parseSize(values.get('--chunk') ?? '256KiB');
  if (chunk < 1) throw new Error('--chunk must be positive');
  return {
    endpoint,
    region: values.get('--region') ?? env.S3FTPD_TEST_REGION ?? 'us-east-1',
    accessKeyId,
    secretAccessKey,
    modes: modes as Mode[],
    ops: ops as Op[],
    concurrency: list(values.get('--concurrency') ?? '1,16,64', '--concurrency').map((c) => integer(c, '--concurrency', 1, 1000)),
    workers: list(values.get('--workers') ?? '2', '--workers').map((w) => integer(w, '--workers', 1, 64)),
    runs: integer(values.get('--runs') ?? '3', '--runs', 1, 100),
    totalUp,
    totalDown: endpoint ? totalUp : parseSize(values.get('--total-down') ?? '1536MiB'),
    warmup: parseSize(values.get('--warmup') ?? '256MiB'),
    partSize: parseSize(values.get('--part-size') ?? '8MiB'),
    queueSize: integer(values.get('--queue-size') ?? '2', '--queue-size', 1, 64),
    chunk,
    verify,
    gateway: path.resolve(ROOT, values.get('--gateway') ?? 'dist/cli.js'),
    gatewayArgs,
    gatewayNodeArgs,
    pasvPorts,
    cpuProf: values.has('--cpu-prof') ? path.resolve(values.get('--cpu-prof') ?? '') : undefined,
    json: values.get('--json'),
    timeoutS: integer(values.get('--timeout') ?? '600', '--timeout', 1, 86_400),
    quietWaitS: integer(values.get('--quiet-wait') ?? '120', '--quiet-wait', 0, 86_400),
  };
}
