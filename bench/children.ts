// The processes a bench run measures, each a child of its own so /proc can tell their costs apart:
// the S3 sink, the built gateway, and the direct-SDK agent.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as path from 'node:path';
import type { AgentJob, AgentMessage, AgentSettings } from './direct-agent.ts';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const NODE = process.execPath;
const START_TIMEOUT_MS = 30_000;
const KEEP_OUTPUT = 64 * 1024;

export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** The last 64 KiB of the child's stdout and stderr. */
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Spawns `node args…` and waits until its output matches `ready`. */
async function startNode(args: readonly string[], ready: RegExp, label: string, env: NodeJS.ProcessEnv = process.env): Promise<{ child: Child; match: RegExpExecArray }> {
  const proc = spawn(NODE, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  const keep = (chunk: Buffer): void => {
    text += chunk.toString();
    if (text.length > KEEP_OUTPUT * 2) text = text.slice(-KEEP_OUTPUT);
  };
  proc.stderr?.on('data', keep);
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start in time:\n${text}`)), START_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      keep(chunk);
      const found = ready.exec(text);
      if (found) {
        clearTimeout(timer);
        proc.off('exit', onExit);
        proc.stdout?.off('data', onData);
        proc.stdout?.on('data', keep);
        resolve(found);
      }
    };
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${label} exited with ${code}:\n${text}`));
    };
    proc.stdout?.on('data', onData);
    proc.once('exit', onExit);
  });
  const pid = proc.pid;
  if (pid === undefined) throw new Error(`${label}: no pid`);
  const child: Child = {
    process: proc,
    pid,
    output: () => text.slice(-KEEP_OUTPUT),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      // A profiled gateway writes its profiles on exit: give it time before insisting.
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return { child, match };
}

export async function startSink(bucket: string): Promise<{ child: Child; url: string }> {
  const { child, match } = await startNode(
    [path.join(ROOT, 'bench/s3-sink.ts'), '--listen', '127.0.0.1:0', '--bucket', bucket],
    /s3-sink listening on (http:\/\/\S+)/,
    's3-sink',
  );
  return { child, url: match[1] ?? '' };
}

export interface GatewaySettings {
  readonly script: string;
  readonly endpoint: string;
  readonly region: string;
  readonly workers: number;
  readonly partSize: number;
  readonly queueSize: number;
  readonly pasvPorts: string;
  readonly extraArgs: readonly string[];
  /** Write V8 CPU profiles (main thread and workers) here when the gateway exits. */
  readonly cpuProfDir: string | undefined;
  readonly nodeArgs?: readonly string[];
}

export async function startGateway(settings: GatewaySettings): Promise<{ child: Child; port: number }> {
  const env: NodeJS.ProcessEnv = {};
  // Flags only: no S3FTPD_* setting from the caller's environment leaks in, except the log level.
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('S3FTPD_') || key === 'S3FTPD_LOG_LEVEL') env[key] = value;
  }
  const args = [
    ...(settings.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', settings.cpuProfDir] : []),
    ...(settings.nodeArgs ?? []),
    settings.script,
    '--listen', '127.0.0.1:0',
    '--s3-endpoint', settings.endpoint,
    '--s3-path-style',
    '--s3-region', settings.region,
    '--workers', String(settings.workers),
    '--tls-session-reuse', 'required',
    '--part-size', String(settings.partSize),
    '--queue-size', String(settings.queueSize),
    '--pasv-ports', settings.pasvPorts,
    // Every bench client comes from 127.0.0.1; the per-address limit (64 by default) is not under test.
    '--max-connections-per-ip', '4096',
    ...settings.extraArgs,
  ];
  const { child, match } = await startNode(args, /s3ftpd listening on \S+:(\d+)/, 'gateway', env);
  return { child, port: Number(match[1]) };
}

export interface Agent {
  readonly child: Child;
  run(job: Omit<AgentJob, 'id'>, onProgress: (bytes: number) => void, timeoutMs: number): Promise<Extract<AgentMessage, { type: 'done' }>>;
}

export async function startAgent(settings: AgentSettings): Promise<Agent> {
  const { child } = await startNode([path.join(ROOT, 'bench/direct-agent.ts'), JSON.stringify(settings)], /"type":"ready"/, 'direct agent');
  const waiting = new Map<number, { progress: (bytes: number) => void; done: (message: Extract<AgentMessage, { type: 'done' }>) => void }>();
  const stdout = child.process.stdout;
  if (!stdout) throw new Error('direct agent has no stdout');
  createInterface({ input: stdout }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const message = JSON.parse(line) as AgentMessage;
    if (message.type === 'progress') waiting.get(message.id)?.progress(message.bytes);
    else if (message.type === 'done') {
      waiting.get(message.id)?.done(message);
      waiting.delete(message.id);
    }
  });
  let nextId = 0;
  return {
    child,
    run(job, onProgress, timeoutMs) {
      nextId += 1;
      const id = nextId;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`direct agent: job ${id} not done after ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, {
          progress: onProgress,
          done: (message) => {
            clearTimeout(timer);
            resolve(message);
          },
        });
        child.process.stdin?.write(`${JSON.stringify({ ...job, id })}\n`);
      });
    },
  };
}
