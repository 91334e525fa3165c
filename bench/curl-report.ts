// The table of bench/curl-transfer.ts: medians over the runs without errors, and for paced rows
// their CPU per GiB against the full-speed row of the same run.
import { formatSize } from './pattern.ts';
import { median } from './report.ts';

export type Client = 'curl' | 'bench';
export type Op = 'up' | 'down';

export interface Phase {
  readonly variant: string;
  readonly client: Client;
  readonly op: Op;
  readonly concurrency: number;
  /** Bytes/s per client, 0 = full speed. */
  readonly rate: number;
  readonly run: number;
  readonly size: number;
}
export interface Result extends Phase {
  readonly mbps: number;
  readonly cpuPerGiB: number;
  readonly clientCpuPerGiB: number;
  readonly storeCpuPerGiB: number | undefined;
  readonly otherCores: number;
  readonly errors: string[];
}
export function renderTable(results: readonly Result[], title: string): string {
  const key = (r: Phase): string => `${r.client}|${r.op}|${String(r.concurrency).padStart(4)}|${String(r.rate).padStart(12)}|${r.variant}`;
  const groups = new Map<string, Result[]>();
  for (const r of results) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
  const fixed = (v: number | undefined, d: number): string => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(d));
  const lines = [
    `**${title}**`,
    '',
    '| variant | client | op | conc. | rate per client | per transfer | MB/s | gateway CPU-s/GiB | paced / full speed | client CPU-s/GiB | S3 server CPU-s/GiB | other load | runs ok |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const k of [...groups.keys()].sort()) {
    const all = groups.get(k) ?? [];
    const ok = all.filter((r) => r.errors.length === 0);
    const first = all[0];
    if (!first) continue;
    const m = (pick: (r: Result) => number | undefined): number | undefined => {
      const values = ok.map(pick).filter((v): v is number => v !== undefined);
      return values.length > 0 ? median(values) : undefined;
    };
    const ratio = m((r) => {
      if (r.rate === 0) return undefined;
      const full = results.find((f) => f.rate === 0 && f.run === r.run && key({ ...f, rate: r.rate }) === key(r) && f.errors.length === 0);
      return full ? r.cpuPerGiB / full.cpuPerGiB : undefined;
    });
    const mbps = m((r) => r.mbps);
    // A limit the clients never reached (the machine was slower) does not make a paced row.
    const unbound = first.rate > 0 && mbps !== undefined && mbps < 0.9 * (first.rate * first.concurrency) / 1e6 ? ' (limit not reached)' : '';
    lines.push(
      `| ${first.variant} | ${first.client} | ${first.op} | ${first.concurrency} | ${first.rate > 0 ? `${(first.rate / 1e6).toFixed(1)} MB/s` : 'full speed'} | ${formatSize(first.size)} | ` +
        `${fixed(mbps, 0)}${unbound} | ${fixed(m((r) => r.cpuPerGiB), 2)} | ${ratio === undefined ? '' : `${ratio.toFixed(2)}${ratio <= 1.25 ? '' : ' (> 1.25)'}`} | ` +
        `${fixed(m((r) => r.clientCpuPerGiB), 2)} | ${fixed(m((r) => r.storeCpuPerGiB), 2)} | ${fixed(m((r) => r.otherCores), 2)} | ${ok.length}/${all.length} |`,
    );
  }
  lines.push(
    '',
    'gateway CPU-s/GiB = user+sys seconds of the whole gateway process (workers included) per 2^30 bytes. paced / full speed = median of the per-run ratios ' +
      'of that CPU figure to the full-speed row with the same variant, client, op and concurrency (target ≤ 1.25). client CPU = the curl processes (reaped children) or this process (bench client). ' +
      'S3 server CPU = the sink, or every radosgw/ceph-osd/ceph-mon on the machine. Other load = cores busy outside the bench.',
  );
  return lines.join('\n');
}
