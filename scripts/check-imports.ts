// The import picture of src/: folders and the arrows between them, checked against the layering
// cli → server → control → data → storage/tls/metrics → leaves (no arrow back up) and for import
// cycles between files. Prints the picture; exits 1 on a violation. Run: node scripts/check-imports.ts
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '../src');

/** Lower runs first; an import may only point to the same or a higher layer. */
const LAYERS: ReadonlyArray<readonly string[]> = [
  ['cli'],
  ['server'],
  ['control'],
  ['data'],
  ['storage', 'tls', 'metrics'],
  ['config', 'log', 'paths', 'listing', 'native', 'net', 'net-address', 'xferlog'],
];

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return filesUnder(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

/** `control/handlers/x.ts` → control; `server.ts` → server. */
function unitOf(file: string): string {
  const relative = path.relative(SRC, file);
  const [first = ''] = relative.split(path.sep);
  return first.endsWith('.ts') ? first.slice(0, -3) : first;
}

function layerOf(unit: string): number {
  const index = LAYERS.findIndex((layer) => layer.includes(unit));
  if (index < 0) throw new Error(`scripts/check-imports.ts: no layer for src/${unit}; add it to LAYERS`);
  return index;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/^(?:import|export)\b[^;]*?from\s+'(\.[^']+)'/gms)) {
    const target = match[1];
    if (target !== undefined) found.push(path.resolve(path.dirname(file), target));
  }
  return found;
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

const files = filesUnder(SRC);
const graph = new Map(files.map((file) => [file, importsOf(file)]));
const arrows = new Map<string, number>();
const problems: string[] = [];
for (const [file, targets] of graph) {
  const from = unitOf(file);
  for (const target of targets) {
    const to = unitOf(target);
    if (from === to) continue;
    arrows.set(`${from} → ${to}`, (arrows.get(`${from} → ${to}`) ?? 0) + 1);
    if (layerOf(to) < layerOf(from)) problems.push(`upward import: ${path.relative(SRC, file)} → ${path.relative(SRC, target)}`);
  }
}
for (const cycle of cycles(graph)) problems.push(`import cycle: ${cycle.map((f) => path.relative(SRC, f)).join(' → ')}`);

process.stdout.write(`src/ imports (${files.length} files), by folder:\n`);
for (const [arrow, count] of [...arrows].sort()) process.stdout.write(`  ${arrow} (${count})\n`);
for (const problem of problems) process.stderr.write(`${problem}\n`);
process.exitCode = problems.length > 0 ? 1 : 0;
