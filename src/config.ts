// Settings: one schema for flags and S3FTPD_* environment variables, validated into a frozen Config.

export type SessionReusePolicy = 'required' | 'optional';

export interface Config {
  readonly listenHost: string;
  readonly listenPort: number;
  readonly pasvLow: number;
  readonly pasvHigh: number;
  readonly pasvAddress: string | undefined;
  readonly s3Endpoint: string | undefined;
  readonly s3Region: string;
  readonly s3PathStyle: boolean;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  readonly tlsSessionReuse: SessionReusePolicy;
  readonly allowClearData: boolean;
  readonly workers: number;
  readonly dataDir: string;
  readonly partSize: number;
  readonly queueSize: number;
  readonly idleTimeoutMs: number;
  readonly acceptTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly maxLoginFailures: number;
  readonly banMs: number;
  readonly allowList: readonly string[];
  readonly implicitTlsHost: string | undefined;
  readonly implicitTlsPort: number | undefined;
}

type Kind = 'string' | 'boolean';

interface Setting {
  readonly flag: string;
  readonly kind: Kind;
  readonly default: string | undefined;
  readonly help: string;
}

export const SETTINGS: readonly Setting[] = [
  { flag: 'listen', kind: 'string', default: '127.0.0.1:2121', help: 'control connection address HOST:PORT' },
  { flag: 'pasv-ports', kind: 'string', default: '10100-12000', help: 'passive data port range LOW-HIGH' },
  { flag: 'pasv-address', kind: 'string', default: undefined, help: 'IP announced in 227 replies (default: the control connection\'s local address)' },
  { flag: 's3-endpoint', kind: 'string', default: undefined, help: 'S3 endpoint URL (default: the embedded local store)' },
  { flag: 's3-region', kind: 'string', default: 'us-east-1', help: 'S3 region for signing' },
  { flag: 's3-path-style', kind: 'boolean', default: 'false', help: 'path-style S3 addressing (needed by most self-hosted S3)' },
  { flag: 'tls-cert', kind: 'string', default: undefined, help: 'PEM certificate file (default: a generated self-signed one)' },
  { flag: 'tls-key', kind: 'string', default: undefined, help: 'PEM private key file' },
  { flag: 'tls-session-reuse', kind: 'string', default: 'required', help: 'data connections must resume the control TLS session: required|optional' },
  { flag: 'allow-clear-data', kind: 'boolean', default: 'false', help: 'allow PROT C (unencrypted data connections)' },
  { flag: 'workers', kind: 'string', default: '2', help: 'data-plane worker threads' },
  { flag: 'data-dir', kind: 'string', default: './data', help: 'directory of the embedded store' },
  { flag: 'part-size', kind: 'string', default: '8388608', help: 'multipart upload part size in bytes (min 5 MiB)' },
  { flag: 'queue-size', kind: 'string', default: '2', help: 'parts uploaded in parallel per upload' },
  { flag: 'idle-timeout', kind: 'string', default: '900', help: 'seconds a control connection may sit idle (no transfer running)' },
  { flag: 'accept-timeout', kind: 'string', default: '30', help: 'seconds a passive port waits for its data connection' },
  { flag: 'stall-timeout', kind: 'string', default: '300', help: 'seconds a data connection may move no bytes before it is dropped' },
  { flag: 'drain-timeout', kind: 'string', default: '30', help: 'seconds SIGTERM lets running transfers finish before aborting them' },
  { flag: 'max-connections', kind: 'string', default: '4096', help: 'control connections in total (421 past it)' },
  { flag: 'max-connections-per-ip', kind: 'string', default: '64', help: 'control connections from one address (421 past it)' },
  { flag: 'max-login-failures', kind: 'string', default: '5', help: 'failed logins from one address before it is banned' },
  { flag: 'ban-time', kind: 'string', default: '900', help: 'seconds a banned address is refused (421 at connect)' },
  { flag: 'allow-list', kind: 'string', default: '', help: 'comma-separated addresses never banned' },
  { flag: 'implicit-tls-listen', kind: 'string', default: undefined, help: 'also serve implicit FTPS (TLS from the first byte) on HOST:PORT, 990 in production' },
];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function envName(flag: string): string {
  return `S3FTPD_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Reads flags (`--name value`, `--name=value`, bare booleans) over environment over defaults. */
export function collectSettings(argv: readonly string[], env: NodeJS.ProcessEnv): Map<string, string> {
  const values = new Map<string, string>();
  for (const setting of SETTINGS) {
    if (setting.default !== undefined) values.set(setting.flag, setting.default);
    const fromEnv = env[envName(setting.flag)];
    if (fromEnv !== undefined && fromEnv !== '') values.set(setting.flag, fromEnv);
  }
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    const setting = match ? SETTINGS.find((s) => s.flag === match[1]) : undefined;
    if (!match || !setting) throw new ConfigError(`unknown argument: ${arg}`);
    if (match[2] !== undefined) values.set(setting.flag, match[2]);
    else if (setting.kind === 'boolean') values.set(setting.flag, 'true');
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`--${setting.flag} needs a value`);
      values.set(setting.flag, next);
      i += 1;
    }
  }
  return values;
}

function parsePort(text: string, what: string, min = 1): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < min || port > 65535) throw new ConfigError(`${what}: not a port: ${text}`);
  return port;
}

function parseBoolean(text: string, flag: string): boolean {
  if (/^(true|1|yes|on)$/i.test(text)) return true;
  if (/^(false|0|no|off)$/i.test(text)) return false;
  throw new ConfigError(`--${flag}: not a boolean: ${text}`);
}

function parseInteger(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ConfigError(`--${flag}: expected an integer from ${min} to ${max}, got ${text}`);
  }
  return value;
}

export function splitHostPort(text: string, flag: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  if (!match) throw new ConfigError(`--${flag}: expected HOST:PORT, got ${text}`);
  // Port 0 lets the system choose (tests and benches read the chosen port from the log line).
  return { host: match[1] ?? match[2] ?? '', port: parsePort(match[3] ?? '', `--${flag}`, 0) };
}

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const v = collectSettings(argv, env);
  const get = (flag: string): string | undefined => v.get(flag);
  const listen = splitHostPort(get('listen') ?? '', 'listen');
  const range = /^(\d+)-(\d+)$/.exec(get('pasv-ports') ?? '');
  if (!range) throw new ConfigError(`--pasv-ports: expected LOW-HIGH, got ${get('pasv-ports')}`);
  const pasvLow = parsePort(range[1] ?? '', '--pasv-ports');
  const pasvHigh = parsePort(range[2] ?? '', '--pasv-ports');
  if (pasvLow > pasvHigh) throw new ConfigError('--pasv-ports: LOW is above HIGH');
  const reuse = get('tls-session-reuse');
  if (reuse !== 'required' && reuse !== 'optional') {
    throw new ConfigError(`--tls-session-reuse: expected required or optional, got ${reuse}`);
  }
  const tlsCert = get('tls-cert');
  const tlsKey = get('tls-key');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key go together');
  const endpoint = get('s3-endpoint');
  if (endpoint !== undefined && !/^https?:\/\/\S+$/.test(endpoint)) {
    throw new ConfigError(`--s3-endpoint: expected an http(s) URL, got ${endpoint}`);
  }
  const seconds = (flag: string): number => parseInteger(get(flag) ?? '', flag, 1, 86_400) * 1000;
  const implicitText = get('implicit-tls-listen');
  const implicit = implicitText === undefined ? undefined : splitHostPort(implicitText, 'implicit-tls-listen');
  return Object.freeze({
    listenHost: listen.host,
    listenPort: listen.port,
    pasvLow,
    pasvHigh,
    pasvAddress: get('pasv-address'),
    s3Endpoint: endpoint,
    s3Region: get('s3-region') ?? 'us-east-1',
    s3PathStyle: parseBoolean(get('s3-path-style') ?? 'false', 's3-path-style'),
    tlsCert,
    tlsKey,
    tlsSessionReuse: reuse,
    allowClearData: parseBoolean(get('allow-clear-data') ?? 'false', 'allow-clear-data'),
    workers: parseInteger(get('workers') ?? '2', 'workers', 1, 64),
    dataDir: get('data-dir') ?? './data',
    partSize: parseInteger(get('part-size') ?? '', 'part-size', 5 * 1024 * 1024, 5 * 1024 ** 3),
    queueSize: parseInteger(get('queue-size') ?? '', 'queue-size', 1, 64),
    idleTimeoutMs: seconds('idle-timeout'),
    acceptTimeoutMs: seconds('accept-timeout'),
    stallTimeoutMs: seconds('stall-timeout'),
    drainTimeoutMs: seconds('drain-timeout'),
    maxConnections: parseInteger(get('max-connections') ?? '', 'max-connections', 1, 1_000_000),
    maxConnectionsPerIp: parseInteger(get('max-connections-per-ip') ?? '', 'max-connections-per-ip', 1, 1_000_000),
    maxLoginFailures: parseInteger(get('max-login-failures') ?? '', 'max-login-failures', 1, 1000),
    banMs: seconds('ban-time'),
    allowList: (get('allow-list') ?? '').split(',').map((a) => a.trim()).filter((a) => a !== ''),
    implicitTlsHost: implicit?.host,
    implicitTlsPort: implicit?.port,
  });
}

export function helpText(): string {
  const lines = ['Usage: s3ftpd [flags]', '', 'Every flag can also be set as S3FTPD_<FLAG> (dashes as underscores).', ''];
  for (const s of SETTINGS) {
    const name = s.kind === 'boolean' ? `--${s.flag}` : `--${s.flag} VALUE`;
    lines.push(`  ${name.padEnd(28)} ${s.help}${s.default !== undefined ? ` (default: ${s.default})` : ''}`);
  }
  return lines.join('\n');
}
