// Finds the gateway's --metrics listener and reads its Prometheus text exposition, for tests that
// check a gauge or a counter while transfers run.
import { eventually } from './ftp-steps.ts';
import type { Gateway } from './gateway.ts';

/**
 * The metrics listener's address (`http://HOST:PORT`, to which /metrics, /healthz and /readyz are
 * added) once the gateway has printed it; '' when it has not within 5 s.
 */
export async function metricsAddress(gw: Pick<Gateway, 'logs'>): Promise<string> {
  let address = '';
  await eventually(async () => (address = /s3ftpd metrics on (http:\/\/\S+)\/metrics/.exec(gw.logs())?.[1] ?? '') !== '', 5000);
  return address;
}

/** Sums the samples of `name` whose labels include `labels`; undefined when there is none. */
export function metricSum(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total = (total ?? 0) + Number(m[3]);
  }
  return total;
}
