// Settings: one declarative list, read from flags, S3FTPD_* environment variables and an optional
// YAML file (--config), precedence flag > env > file > default, validated by one zod schema into a
// frozen Config. Errors name the setting and where its value came from.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { parseCidrList } from './net/proxy-protocol.ts';

/** required: the data connection resumes its own control connection's TLS session; address: any
 * session a control connection from the same client address made (clients that share one session
 * cache among parallel connections, e.g. rclone); optional: no resumption needed. */
export type SessionReusePolicy = 'required' | 'address' | 'optional';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

interface Setting {
  readonly flag: string;
  readonly boolean?: true;
  readonly default?: string;
  readonly help: string;
}

export const SETTINGS: readonly Setting[] = [
  { flag: 'config', help: 'YAML file with any of these settings (keys as the flag names)' },
  { flag: 'listen', default: '127.0.0.1:2121', help: 'control connection address(es) HOST:PORT, comma-separated ([::]:21 for IPv6)' },
  { flag: 'implicit-tls-listen', help: 'also serve implicit FTPS (TLS from the first byte) on HOST:PORT (990 in production)' },
  { flag: 'pasv-ports', default: '10100-12000', help: 'passive data port range LOW-HIGH' },
  { flag: 'pasv-address', help: "IP announced in 227 replies (default: the control connection's local address)" },
  { flag: 's3-endpoint', help: 'S3 endpoint URL (default: the embedded local store)' },
  { flag: 's3-region', default: 'us-east-1', help: 'S3 region for signing' },
  { flag: 's3-timeout', default: '60', help: 'seconds an S3 request may make no progress before it fails (and is retried when idempotent)' },
  { flag: 's3-http', default: 'undici', help: "HTTP client under the S3 SDK: undici (less CPU per GiB) or node (node:http, the SDK's own)" },
  { flag: 's3-unsigned-payload', default: 'auto', help: 'sign uploads with UNSIGNED-PAYLOAD (no SHA-256 of the data): auto (for https endpoints), on, off' },
  { flag: 's3-path-style', boolean: true, default: 'false', help: 'path-style S3 addressing (most self-hosted S3)' },
  { flag: 'tls-cert', help: 'PEM certificate file (default: a generated self-signed one)' },
  { flag: 'tls-key', help: 'PEM private key file' },
  { flag: 'tls-engine', default: 'native', help: "TLS of control and data connections: native (the engine in native/, when built; else node, said once in the log) or node (Node's TLS)" },
  { flag: 'tls-session-reuse', default: 'required', help: 'data connections must resume a TLS session: required (their control connection\'s), address (any control connection\'s from the same client address; rclone), optional' },
  { flag: 'allow-clear-data', boolean: true, default: 'false', help: 'allow PROT C (unencrypted data connections)' },
  { flag: 'workers', default: '2', help: 'data-plane worker threads' },
  { flag: 'data-dir', default: './data', help: 'directory of the embedded store' },
  { flag: 'part-size', default: '8MiB', help: 'multipart upload part size, bytes or KiB/MiB/GiB (min 5MiB; doubles every 900 parts)' },
  { flag: 'queue-size', default: '2', help: 'parts uploaded in parallel per upload' },
  { flag: 'upload-resume', default: 'on', help: 'a cut upload of a new file can be continued (REST n + STOR, APPE): on, off' },
  { flag: 'upload-resume-window', default: '86400', help: 'seconds a cut upload stays resumable; older ones are removed when seen' },
  {
    flag: 'upload-buffer-budget',
    default: '512MiB',
    help: 'memory all uploads together may hold in part buffers; past it, uploads wait and TCP slows their clients',
  },
  { flag: 'idle-timeout', default: '900', help: 'seconds a control connection may sit idle (no transfer running)' },
  { flag: 'login-timeout', default: '60', help: 'seconds a connection may take to log in' },
  { flag: 'accept-timeout', default: '30', help: 'seconds a passive port waits for its data connection' },
  { flag: 'stall-timeout', default: '300', help: 'seconds a data connection may move no bytes before it is dropped' },
  { flag: 'drain-timeout', default: '30', help: 'seconds SIGTERM lets running transfers finish before aborting them' },
  { flag: 'max-connections', default: '4096', help: 'control connections in total (421 past it)' },
  { flag: 'max-connections-per-ip', default: '64', help: 'control connections from one address (421 past it)' },
  { flag: 'max-login-failures', default: '5', help: 'failed logins from one address before it is banned' },
  { flag: 'ban-time', default: '900', help: 'seconds a banned address is refused (421 at connect)' },
  { flag: 'allow-list', default: '', help: 'comma-separated addresses never banned' },
  {
    flag: 'proxy-protocol-from',
    default: '',
    help: 'load balancers (CIDR,...) whose connections start with a PROXY protocol v1/v2 header naming the client (HAProxy send-proxy-v2)',
  },
  { flag: 'metrics', help: 'serve Prometheus /metrics, /healthz and /readyz on HOST:PORT' },
  { flag: 'log-level', default: 'info', help: 'debug|info|warn|error' },
  { flag: 'xferlog', help: 'also append one xferlog-style line per transfer to this file' },
];

const hostPort = z.string().transform((text, ctx) => {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  const port = Number(match?.[3]);
  // Port 0 lets the system choose (tests and benches read the chosen port from the log line).
  if (!match || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT, got ${text}` });
    return z.NEVER;
  }
  return { host: match[1] ?? match[2] ?? '', port };
});

const hostPorts = z.string().transform((text, ctx) => {
  const parsed = text.split(',').map((part) => hostPort.safeParse(part.trim()));
  const bad = parsed.find((p) => !p.success);
  if (bad || parsed.length === 0) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT[,HOST:PORT…], got ${text}` });
    return z.NEVER;
  }
  return parsed.flatMap((p) => (p.success ? [p.data] : []));
});

const portRange = z.string().transform((text, ctx) => {
  const match = /^(\d+)-(\d+)$/.exec(text);
  const low = Number(match?.[1]);
  const high = Number(match?.[2]);
  if (!match || low < 1 || high > 65535 || low > high) {
    ctx.addIssue({ code: 'custom', message: `expected LOW-HIGH within 1-65535, got ${text}` });
    return z.NEVER;
  }
  return { low, high };
});

const flagBoolean = z.string().transform((text, ctx) => {
  if (/^(true|1|yes|on)$/i.test(text)) return true;
  if (/^(false|0|no|off)$/i.test(text)) return false;
  ctx.addIssue({ code: 'custom', message: `expected true or false, got ${text}` });
  return z.NEVER;
});

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `expected an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().min(min, `expected at least ${min}`).max(max, `expected at most ${max}`));

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 };

/** A byte count: plain bytes or with a binary unit (8MiB, 512k, 1GiB). */
const byteSize = (min: number, max: number) =>
  z
    .string()
    .transform((text, ctx) => {
      const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
      const unit = SIZE_UNITS[match?.[2]?.toLowerCase() ?? 'none'];
      if (!match || unit === undefined) {
        ctx.addIssue({ code: 'custom', message: `expected a size like 8388608, 8MiB or 1GiB, got ${text}` });
        return z.NEVER;
      }
      return Number(match[1]) * unit;
    })
    .pipe(z.number().min(min, `expected at least ${min} bytes`).max(max, `expected at most ${max} bytes`));

const seconds = integer(1, 86_400).transform((s) => s * 1000);

const schema = z
  .object({
    listen: hostPorts,
    'implicit-tls-listen': hostPort.optional(),
    'pasv-ports': portRange,
    'pasv-address': z.string().min(1).optional(),
    's3-endpoint': z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
    's3-region': z.string().min(1),
    's3-timeout': seconds,
    's3-unsigned-payload': z.enum(['auto', 'on', 'off']),
    's3-http': z.enum(['undici', 'node']),
    's3-path-style': flagBoolean,
    'tls-cert': z.string().min(1).optional(),
    'tls-key': z.string().min(1).optional(),
    'tls-session-reuse': z.enum(['required', 'address', 'optional']),
    'tls-engine': z.enum(['native', 'node']),
    'allow-clear-data': flagBoolean,
    workers: integer(1, 64),
    'data-dir': z.string().min(1),
    'part-size': byteSize(5 * 1024 * 1024, 5 * 1024 ** 3),
    'queue-size': integer(1, 64),
    'upload-resume': z.enum(['on', 'off']),
    'upload-resume-window': integer(1, 30 * 86_400).transform((s) => s * 1000),
    'upload-buffer-budget': byteSize(5 * 1024 * 1024, 1024 ** 4),
    'idle-timeout': seconds,
    'login-timeout': seconds,
    'accept-timeout': seconds,
    'stall-timeout': seconds,
    'drain-timeout': seconds,
    'max-connections': integer(1, 1_000_000),
    'max-connections-per-ip': integer(1, 1_000_000),
    'max-login-failures': integer(1, 1000),
    'ban-time': seconds,
    'allow-list': z.string().transform((text) => text.split(',').map((a) => a.trim()).filter((a) => a !== '')),
    'proxy-protocol-from': z.string().transform((text, ctx) => {
      try {
        return parseCidrList(text).entries.join(',');
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
        return z.NEVER;
      }
    }),
    metrics: hostPort.optional(),
    'log-level': z.enum(['debug', 'info', 'warn', 'error']),
    xferlog: z.string().min(1).optional(),
  })
  .refine((v) => (v['tls-cert'] === undefined) === (v['tls-key'] === undefined), {
    message: '--tls-cert and --tls-key go together',
    path: ['tls-key'],
  })
  // One part must fit, or an upload could never start.
  .refine((v) => v['upload-buffer-budget'] >= v['part-size'], {
    message: 'must be at least --part-size',
    path: ['upload-buffer-budget'],
  });

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type Config = Readonly<{
  /** Every control address; the first is the one printed and used in examples. */
  listen: readonly HostPort[];
  implicitTlsHost: string | undefined;
  implicitTlsPort: number | undefined;
  pasvLow: number;
  pasvHigh: number;
  pasvAddress: string | undefined;
  s3Endpoint: string | undefined;
  s3Region: string;
  s3PathStyle: boolean;
  s3TimeoutMs: number;
  s3UnsignedPayload: 'auto' | 'on' | 'off';
  s3Http: 'undici' | 'node';
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  tlsSessionReuse: SessionReusePolicy;
  tlsEngine: 'native' | 'node';
  allowClearData: boolean;
  workers: number;
  dataDir: string;
  partSize: number;
  queueSize: number;
  /** Cut uploads of new files stay resumable (SPEC §7). */
  uploadResume: boolean;
  uploadResumeWindowMs: number;
  uploadBufferBudget: number;
  idleTimeoutMs: number;
  loginTimeoutMs: number;
  acceptTimeoutMs: number;
  stallTimeoutMs: number;
  drainTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxLoginFailures: number;
  banMs: number;
  allowList: readonly string[];
  /** Trusted load balancers (CIDR list text, see net/proxy-protocol.ts); empty: nobody. */
  proxyProtocolFrom: string;
  metricsHost: string | undefined;
  metricsPort: number | undefined;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  xferlog: string | undefined;
}>;

export function envName(flag: string): string {
  return `S3FTPD_${flag.toUpperCase().replace(/-/g, '_')}`;
}

type Source = 'flag' | 'environment' | 'config file' | 'default';
interface RawValue {
  readonly value: string;
  readonly source: Source;
}

function parseArgv(argv: readonly string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    const setting = match ? SETTINGS.find((s) => s.flag === match[1]) : undefined;
    if (!match || !setting) throw new ConfigError(`unknown argument: ${arg} (see --help)`);
    if (match[2] !== undefined) values.set(setting.flag, match[2]);
    else if (setting.boolean) values.set(setting.flag, 'true');
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`--${setting.flag} needs a value`);
      values.set(setting.flag, next);
      i += 1;
    }
  }
  return values;
}

function readConfigFile(file: string): Map<string, string> {
  let document: unknown;
  try {
    document = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`--config ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const values = new Map<string, string>();
  if (document === null || document === undefined) return values;
  if (typeof document !== 'object' || Array.isArray(document)) throw new ConfigError(`--config ${file}: expected a mapping of settings`);
  for (const [key, value] of Object.entries(document)) {
    if (key === 'config' || !SETTINGS.some((s) => s.flag === key)) throw new ConfigError(`--config ${file}: unknown setting ${key}`);
    const text: unknown = Array.isArray(value) ? (value as unknown[]).join(',') : (value as unknown);
    if (typeof text !== 'string' && typeof text !== 'number' && typeof text !== 'boolean') {
      throw new ConfigError(`--config ${file}: ${key} must be a single value`);
    }
    values.set(key, String(text));
  }
  return values;
}

/** Every setting's raw text and where it came from: flag > environment > config file > default. */
export function collectSettings(argv: readonly string[], env: NodeJS.ProcessEnv): Map<string, RawValue> {
  const flags = parseArgv(argv);
  const configFile = flags.get('config') ?? env[envName('config')];
  const file = configFile !== undefined && configFile !== '' ? readConfigFile(configFile) : new Map<string, string>();
  const raw = new Map<string, RawValue>();
  for (const { flag, default: fallback } of SETTINGS) {
    const fromEnv = env[envName(flag)];
    const chosen: RawValue | undefined =
      flags.has(flag)
        ? { value: flags.get(flag) ?? '', source: 'flag' }
        : fromEnv !== undefined && fromEnv !== ''
          ? { value: fromEnv, source: 'environment' }
          : file.has(flag)
            ? { value: file.get(flag) ?? '', source: 'config file' }
            : fallback !== undefined
              ? { value: fallback, source: 'default' }
              : undefined;
    if (chosen) raw.set(flag, chosen);
  }
  return raw;
}

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const raw = collectSettings(argv, env);
  const input = Object.fromEntries([...raw].filter(([flag]) => flag !== 'config').map(([flag, v]) => [flag, v.value]));
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const flag = String(issue?.path[0] ?? '');
    const source = raw.get(flag)?.source;
    const where = source === 'environment' ? ` (from ${envName(flag)})` : source === 'config file' ? ' (from the config file)' : '';
    throw new ConfigError(`--${flag}${where}: ${issue?.message ?? 'invalid'}`);
  }
  const v = result.data;
  return Object.freeze({
    listen: Object.freeze(v.listen),
    implicitTlsHost: v['implicit-tls-listen']?.host,
    implicitTlsPort: v['implicit-tls-listen']?.port,
    pasvLow: v['pasv-ports'].low,
    pasvHigh: v['pasv-ports'].high,
    pasvAddress: v['pasv-address'],
    s3Endpoint: v['s3-endpoint'],
    s3Region: v['s3-region'],
    s3PathStyle: v['s3-path-style'],
    s3TimeoutMs: v['s3-timeout'],
    s3UnsignedPayload: v['s3-unsigned-payload'],
    s3Http: v['s3-http'],
    tlsCert: v['tls-cert'],
    tlsKey: v['tls-key'],
    tlsSessionReuse: v['tls-session-reuse'],
    tlsEngine: v['tls-engine'],
    allowClearData: v['allow-clear-data'],
    workers: v.workers,
    dataDir: v['data-dir'],
    partSize: v['part-size'],
    queueSize: v['queue-size'],
    uploadResume: v['upload-resume'] === 'on',
    uploadResumeWindowMs: v['upload-resume-window'],
    uploadBufferBudget: v['upload-buffer-budget'],
    idleTimeoutMs: v['idle-timeout'],
    loginTimeoutMs: v['login-timeout'],
    acceptTimeoutMs: v['accept-timeout'],
    stallTimeoutMs: v['stall-timeout'],
    drainTimeoutMs: v['drain-timeout'],
    maxConnections: v['max-connections'],
    maxConnectionsPerIp: v['max-connections-per-ip'],
    maxLoginFailures: v['max-login-failures'],
    banMs: v['ban-time'],
    allowList: Object.freeze(v['allow-list']),
    proxyProtocolFrom: v['proxy-protocol-from'],
    metricsHost: v.metrics?.host,
    metricsPort: v.metrics?.port,
    logLevel: v['log-level'],
    xferlog: v.xferlog,
  });
}

export function helpText(): string {
  const lines = [
    'Usage: s3ftpd [flags]',
    '',
    'Every setting is a flag, an environment variable S3FTPD_<FLAG> (dashes as underscores) or a key',
    'of the --config YAML file; precedence: flag > environment > file > default.',
    '',
  ];
  for (const s of SETTINGS) {
    const name = s.boolean ? `--${s.flag}` : `--${s.flag} VALUE`;
    const fallback = s.default !== undefined && s.default !== '' ? ` (default: ${s.default})` : '';
    lines.push(`  ${name.padEnd(30)} ${s.help}${fallback}`);
  }
  lines.push('  --help                         this text', '  --version                      the version');
  return lines.join('\n');
}
