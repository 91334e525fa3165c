// Summarises V8 .cpuprofile files (from `node --cpu-prof`, e.g. bench/transfer.ts --cpu-prof DIR):
// where the busy time went, by function (self and inclusive) and by package or Node subsystem.
//
//   node bench/cpuprof-top.ts FILE_OR_DIR... [--top 25] [--area NAME]   (--area: only that package/subsystem)
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

const IDLE = new Set(['(idle)', '(program)']);

function label(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  if (frame.url === '') return name;
  const file = frame.url.replace(/^file:\/\/.*?node_modules\//, '').replace(/^file:\/\/.*?\/(src|dist|bench)\//, '$1/');
  return `${name} ${file}:${frame.lineNumber + 1}`;
}

function area(frame: CallFrame): string {
  const url = frame.url;
  if (url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').replace(/\/[^/]*$/, '').replace(/^node:([^/]+).*/, 'node:$1');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] ?? url;
  const own = /\/(src|dist|bench)\/(.*)$/.exec(url);
  if (own) return `s3ftpd ${own[2]}`;
  return url;
}

function files(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const arg of args) {
    if (statSync(arg).isDirectory()) {
      for (const name of readdirSync(arg)) if (name.endsWith('.cpuprofile')) out.push(path.join(arg, name));
    } else out.push(arg);
  }
  return out;
}

function add<K>(map: Map<K, number>, key: K, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}

function main(): void {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 25;
  const areaAt = args.indexOf('--area');
  const onlyArea = areaAt >= 0 ? args.splice(areaAt, 2)[1] : undefined;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let busy = 0;
  let wall = 0;
  for (const file of files(args)) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    wall += (profile.endTime - profile.startTime) / 1000;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const time = new Map<number, number>();
    profile.samples.forEach((id, i) => add(time, id, (profile.timeDeltas[i] ?? 0) / 1000));
    let fileBusy = 0;
    for (const [id, ms] of time) {
      const node = byId.get(id);
      if (!node || IDLE.has(node.callFrame.functionName)) continue;
      fileBusy += ms;
      if (onlyArea === undefined || area(node.callFrame) === onlyArea) add(self, label(node.callFrame), ms);
      add(areas, area(node.callFrame), ms);
      // Inclusive: charge every distinct function on the stack once.
      const seen = new Set<string>();
      for (let at: number | undefined = id, depth = 0; at !== undefined && depth < 10_000; at = parent.get(at), depth += 1) {
        const frame = byId.get(at)?.callFrame;
        if (!frame || frame.functionName === '(root)') continue;
        const key = label(frame);
        if (seen.has(key)) continue;
        seen.add(key);
        add(inclusive, key, ms);
      }
    }
    busy += fileBusy;
    process.stdout.write(`${path.basename(file)}: ${(fileBusy / 1000).toFixed(2)} s busy of ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s\n`);
  }
  const table = (title: string, map: Map<string, number>): void => {
    process.stdout.write(`\n${title}\n`);
    for (const [key, ms] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`  ${((100 * ms) / busy).toFixed(1).padStart(5)}%  ${(ms / 1000).toFixed(2).padStart(7)} s  ${key}\n`);
    }
  };
  process.stdout.write(`\ntotal busy ${(busy / 1000).toFixed(2)} s (profiles span ${(wall / 1000).toFixed(1)} s together)\n`);
  table('by area (self time)', areas);
  table('by function, self time', self);
  table('by function, inclusive time', inclusive);
}

main();
