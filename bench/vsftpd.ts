// A throwaway vsftpd (Debian's /usr/sbin/vsftpd) for bench/vsftpd-ceiling.ts: explicit FTPS on local
// disk, anonymous login with an upload directory, all of it (config, certificate, files) in a
// temporary directory, listening on 127.0.0.1 only, in the foreground as a child of the bench.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export interface Vsftpd {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** Where uploads land, and the FTP path of that directory. */
  readonly uploadDir: string;
  readonly ftpDir: string;
  /** Starts measuring vsftpd with all its session processes: see treeCpuMeter. */
  readonly cpuMeter: () => () => number;
  /** Session processes alive (the listener not counted). */
  readonly processes: () => number;
  stop(): Promise<void>;
}

export interface VsftpdSettings {
  readonly binary: string;
  /** Parent of the temporary directory (the disk under test). */
  readonly baseDir: string;
  readonly pasvPorts: string;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * CPU nanoseconds of `root` and each of its living descendants, by PID. From /proc/PID/schedstat
 * (time on a CPU, user and system, exact), not the utime/stime of /proc/PID/stat: those are whole
 * clock ticks per process, and 64 sessions each using less than a tick in a phase would count zero.
 * vsftpd processes have one thread, so the main thread's figure is the process's.
 */
function treeNanoseconds(root: number): Map<number, number> {
  const stats = new Map<number, { ppid: number; ns: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone
    }
    // Field 2 (the name) may hold spaces: the fields after it start behind the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    let ns: number;
    try {
      ns = Number(readFileSync(`/proc/${entry}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      continue; // gone
    }
    stats.set(Number(entry), { ppid: Number(fields[1]), ns });
  }
  const tree = new Map([[root, stats.get(root)?.ns ?? 0]]);
  // Bounded: each pass adds at least one process to the tree or stops.
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, { ppid, ns }] of stats) {
      if (!tree.has(pid) && tree.has(ppid)) {
        tree.set(pid, ns);
        grew = true;
      }
    }
  }
  return tree;
}

/**
 * Starts measuring the CPU of `root` and its descendants; the function returned gives the user +
 * system seconds they used since. Per process, so a session that ends meanwhile (vsftpd's session
 * processes are reparented to init, not reaped by the listener) neither subtracts its whole past
 * nor adds it through a cutime; processes forked meanwhile count in full.
 */
export function treeCpuMeter(root: number): () => number {
  const before = treeNanoseconds(root);
  return () => {
    let ns = 0;
    for (const [pid, now] of treeNanoseconds(root)) ns += now - (before.get(pid) ?? 0);
    return ns / 1e9;
  };
}

function config(dir: string, port: number, pasvPorts: string): string {
  const [low, high] = pasvPorts.split('-');
  return `# Written by bench/vsftpd-ceiling.ts; compiled-in defaults (Debian vsftpd) for everything else.
listen=YES
listen_ipv6=NO
background=NO
listen_address=127.0.0.1
listen_port=${port}
pasv_min_port=${low}
pasv_max_port=${high}
anonymous_enable=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
# The bench overwrites and reads back what it uploaded.
anon_other_write_enable=YES
anon_world_readable_only=NO
anon_umask=022
anon_root=${dir}/root
secure_chroot_dir=${dir}/empty
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
# Data connections must resume the control connection's TLS session, as on the gateway.
require_ssl_reuse=YES
ssl_request_cert=NO
# The compiled-in default (DES-CBC3-SHA) is refused by current OpenSSL clients.
ssl_ciphers=HIGH
rsa_cert_file=${dir}/cert.pem
rsa_private_key_file=${dir}/key.pem
xferlog_enable=NO
max_clients=0
max_per_ip=0
`;
}

/** Resolves once the server sends its 220 greeting on `port`; rejects after `ms`. */
async function greeted(port: number, ms: number, exited: () => string | undefined): Promise<void> {
  const deadline = performance.now() + ms;
  // Bounded by the deadline.
  while (performance.now() < deadline) {
    const why = exited();
    if (why !== undefined) throw new Error(why);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.setTimeout(1000, () => socket.destroy());
      socket.once('data', (chunk: Buffer) => {
        socket.destroy();
        resolve(chunk.toString().startsWith('220'));
      });
      socket.once('error', () => resolve(false));
      socket.once('close', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`vsftpd did not greet on 127.0.0.1:${port} within ${ms} ms`);
}

export async function startVsftpd(settings: VsftpdSettings): Promise<Vsftpd> {
  const dir = mkdtempSync(path.join(settings.baseDir, 's3ftpd-bench-vsftpd-'));
  // vsftpd refuses an anonymous root the session can write to; uploads go to a subdirectory.
  mkdirSync(path.join(dir, 'root', 'pub'), { recursive: true });
  chmodSync(path.join(dir, 'root', 'pub'), 0o777);
  mkdirSync(path.join(dir, 'empty'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  const port = await freePort();
  const conf = path.join(dir, 'vsftpd.conf');
  writeFileSync(conf, config(dir, port, settings.pasvPorts), { mode: 0o600 });
  // vsftpd needs root (chroot, privilege separation) and a config file owned by the user running it.
  const asRoot = process.getuid?.() === 0;
  if (!asRoot) execFileSync('sudo', ['-n', 'chown', 'root:root', conf]);
  const proc = spawn(asRoot ? settings.binary : 'sudo', asRoot ? [conf] : ['-n', settings.binary, conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const pid = proc.pid;
  // Every directory is ours (pub is world-writable), so no privilege is needed to remove it all.
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  const exited = (): string | undefined => (proc.exitCode !== null || proc.signalCode !== null ? `vsftpd exited (${proc.exitCode ?? proc.signalCode}): ${output}` : undefined);
  try {
    if (pid === undefined) throw new Error(`cannot start ${settings.binary}`);
    await greeted(port, 10_000, exited);
  } catch (error) {
    proc.kill('SIGKILL');
    remove();
    throw error;
  }
  return {
    process: proc,
    pid,
    port,
    uploadDir: path.join(dir, 'root', 'pub'),
    ftpDir: '/pub',
    cpuMeter: () => treeCpuMeter(pid),
    processes: () => treeNanoseconds(pid).size - 1,
    async stop() {
      if (exited() === undefined) {
        const gone = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
      }
      remove();
    },
  };
}
