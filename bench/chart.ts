// Draws bench results (the JSON of `bench/transfer.ts --json`) as an SVG: throughput and gateway
// CPU-s/GiB against concurrency, uploads and downloads, gateway and direct SDK (medians of runs).
//
//   node bench/chart.ts bench/out/results.json bench/throughput.svg
import { readFileSync, writeFileSync } from 'node:fs';
import { median, type PhaseResult } from './report.ts';

type Result = Pick<PhaseResult, 'op' | 'mode' | 'concurrency' | 'mbps' | 'cpuPerGiB' | 'errors'>;

const [input, output = 'bench/throughput.svg'] = process.argv.slice(2);
if (!input) {
  process.stderr.write('usage: node bench/chart.ts RESULTS.json [OUT.svg]\n');
  process.exit(2);
}
const results = (JSON.parse(readFileSync(input, 'utf8')) as { results: Result[] }).results.filter((r) => r.errors.length === 0);
const concurrencies = [...new Set(results.map((r) => r.concurrency))].sort((a, b) => a - b);
const series = (['up', 'down'] as const).flatMap((op) =>
  (['gateway', 'direct'] as const).map((mode) => ({
    op,
    mode,
    points: concurrencies.map((c) => {
      const runs = results.filter((r) => r.op === op && r.mode === mode && r.concurrency === c);
      return { c, mbps: median(runs.map((r) => r.mbps)), cpu: median(runs.map((r) => r.cpuPerGiB)) };
    }),
  })),
);

const W = 420;
const H = 260;
const M = { left: 56, right: 16, top: 36, bottom: 44 };
const colour = { 'up gateway': '#d62728', 'up direct': '#ff9896', 'down gateway': '#1f77b4', 'down direct': '#aec7e8' } as const;

function panel(x0: number, title: string, unit: string, value: (p: { mbps: number; cpu: number }) => number): string {
  const max = Math.max(1, ...series.flatMap((s) => s.points.map(value))) * 1.1;
  const px = (i: number): number => x0 + M.left + (i * (W - M.left - M.right)) / Math.max(1, concurrencies.length - 1);
  const py = (v: number): number => M.top + (H - M.top - M.bottom) * (1 - v / max);
  const parts = [`<text x="${x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">${title}</text>`];
  for (let k = 0; k <= 4; k += 1) {
    const v = (max * k) / 4;
    parts.push(`<line x1="${x0 + M.left}" x2="${x0 + W - M.right}" y1="${py(v)}" y2="${py(v)}" stroke="#eee"/>`);
    parts.push(`<text x="${x0 + M.left - 6}" y="${py(v) + 4}" text-anchor="end">${v.toFixed(v < 10 ? 1 : 0)}</text>`);
  }
  concurrencies.forEach((c, i) => parts.push(`<text x="${px(i)}" y="${H - M.bottom + 16}" text-anchor="middle">${c}</text>`));
  parts.push(`<text x="${x0 + W / 2}" y="${H - 8}" text-anchor="middle">concurrent transfers</text>`);
  parts.push(`<text transform="translate(${x0 + 14},${H / 2}) rotate(-90)" text-anchor="middle">${unit}</text>`);
  for (const s of series) {
    if (unit.startsWith('CPU') && s.mode === 'direct') continue;
    const stroke = colour[`${s.op} ${s.mode}`];
    const points = s.points.map((p, i) => `${px(i)},${py(value(p))}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${stroke}" stroke-width="2" points="${points}"/>`);
    s.points.forEach((p, i) => parts.push(`<circle cx="${px(i)}" cy="${py(value(p))}" r="3" fill="${stroke}"/>`));
  }
  return parts.join('\n');
}

const legend = Object.entries(colour)
  .map(([name, stroke], i) => `<rect x="${16 + i * 150}" y="${H + 6}" width="12" height="12" fill="${stroke}"/><text x="${32 + i * 150}" y="${H + 16}">${name === 'up gateway' ? 'upload, gateway' : name === 'up direct' ? 'upload, direct SDK' : name === 'down gateway' ? 'download, gateway' : 'download, direct SDK'}</text>`)
  .join('\n');
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 28}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
${panel(0, 'Throughput (MB/s)', 'MB/s', (p) => p.mbps)}
${panel(W, 'Gateway CPU per GiB', 'CPU-s/GiB', (p) => p.cpu)}
${legend}
</svg>
`;
writeFileSync(output, svg);
process.stdout.write(`wrote ${output} from ${results.length} results\n`);
