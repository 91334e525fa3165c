// One markdown table from the phase results: medians over the runs without errors.
import { formatSize } from './pattern.ts';
import type { Mode, Op } from './options.ts';

export interface PhaseResult {
  readonly workers: number;
  readonly op: Op;
  readonly mode: Mode;
  readonly concurrency: number;
  readonly run: number;
  /** Bytes per transfer. */
  readonly size: number;
  readonly bytes: number;
  readonly seconds: number;
  /** 10^6 bytes per second, all concurrent transfers together. */
  readonly mbps: number;
  /** CPU seconds (user + system, all threads) of the gateway (gateway mode) or SDK process (direct) per GiB moved. */
  readonly cpuPerGiB: number;
  /** The bench process's own CPU per GiB: the FTPS clients (gateway mode only). */
  readonly clientCpuPerGiB: number | undefined;
  /** CPU of the S3 server (the sink, or radosgw + Ceph daemons, whoever else uses them) per GiB. */
  readonly storeCpuPerGiB: number | undefined;
  /** Peak RSS of the gateway or SDK process during the phase, bytes. */
  readonly peakRss: number;
  /** True when VmHWM could not be reset, so the peak covers the process's whole life. */
  readonly peakSinceStart: boolean;
  /** RSS of that process when the phase started (memory kept from earlier phases), bytes. */
  readonly rssStart: number;
  /** Cores kept busy by processes outside the bench during the phase (the machine may be shared). */
  readonly otherCores: number;
  readonly errors: string[];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits);
}

export function renderTable(results: readonly PhaseResult[], context: { title: string }): string {
  const groups = new Map<string, PhaseResult[]>();
  for (const r of results) {
    const key = `${r.workers}|${r.op}|${r.concurrency}|${r.mode}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const opOrder: Record<Op, number> = { up: 0, down: 1 };
  const modeOrder: Record<Mode, number> = { gateway: 0, direct: 1 };
  const keys = [...groups.keys()].sort((a, b) => {
    const [wa, oa, ca, ma] = a.split('|');
    const [wb, ob, cb, mb] = b.split('|');
    return (
      Number(wa) - Number(wb) ||
      opOrder[oa as Op] - opOrder[ob as Op] ||
      Number(ca) - Number(cb) ||
      modeOrder[ma as Mode] - modeOrder[mb as Mode]
    );
  });
  const lines = [
    `**${context.title}**`,
    '',
    '| op | conc. | per transfer | workers | path | MB/s | CPU-s/GiB | peak RSS MiB (at start) | FTPS client CPU-s/GiB | S3 server CPU-s/GiB | gateway/direct | other load | runs ok |',
    '|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const key of keys) {
    const all = groups.get(key) ?? [];
    const ok = all.filter((r) => r.errors.length === 0);
    const first = all[0];
    if (!first) continue;
    let ratio: number | undefined;
    if (first.mode === 'gateway') {
      const ratios: number[] = [];
      for (const g of ok) {
        const d = results.find(
          (r) => r.mode === 'direct' && r.workers === g.workers && r.op === g.op && r.concurrency === g.concurrency && r.run === g.run && r.errors.length === 0,
        );
        if (d) ratios.push(g.mbps / d.mbps);
      }
      if (ratios.length > 0) ratio = median(ratios);
    }
    const m = (pick: (r: PhaseResult) => number | undefined): number | undefined => {
      const values = ok.map(pick).filter((v): v is number => v !== undefined);
      return values.length > 0 ? median(values) : undefined;
    };
    const peak = m((r) => r.peakRss);
    const rssStart = m((r) => r.rssStart);
    lines.push(
      `| ${first.op} | ${first.concurrency} | ${formatSize(first.size)} | ${first.workers} | ${first.mode === 'gateway' ? 'FTPS → gateway' : 'direct SDK'} | ` +
        `${fixed(m((r) => r.mbps), 0)} | ${fixed(m((r) => r.cpuPerGiB), 2)} | ${fixed(peak === undefined ? undefined : peak / 1024 ** 2, 0)}${ok.some((r) => r.peakSinceStart) ? '*' : ''} (${fixed(rssStart === undefined ? undefined : rssStart / 1024 ** 2, 0)}) | ` +
        `${fixed(m((r) => r.clientCpuPerGiB), 2)} | ${fixed(m((r) => r.storeCpuPerGiB), 2)} | ${fixed(ratio, 2)} | ${fixed(m((r) => r.otherCores), 2)} | ${ok.length}/${all.length} |`,
    );
  }
  lines.push(
    '',
    'MB/s = 10^6 bytes/s over all concurrent transfers (first byte of the phase to the last 226 / response end). ' +
      'CPU-s/GiB = user+sys seconds of the whole gateway process (worker threads included) for gateway rows, of the SDK process for direct rows, per 2^30 bytes. ' +
      'Peak RSS = VmHWM of that process, reset before each phase' +
      (results.some((r) => r.peakSinceStart) ? ' (* = could not be reset: peak since start)' : '') +
      '; in brackets its RSS when the phase started (memory kept from earlier phases). ' +
      'S3 server CPU = the sink process, or radosgw + ceph-osd + ceph-mon (which other users of that radosgw also load). ' +
      'Other load = cores kept busy by processes outside the bench during the phase (median). gateway/direct = median of the per-run throughput ratios, measured back to back in the same run.',
  );
  return lines.join('\n');
}
