// Prometheus metrics (prom-client) and the /metrics, /healthz and /readyz endpoints. S3 calls made
// in worker threads are timed there and sent here in batches (metrics/s3-calls.ts).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BroadcastChannel } from 'node:worker_threads';
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import { log } from './log.ts';
import type { StorageCallObserver } from './storage/driver.ts';
import { observeS3Calls } from './metrics/s3-calls.ts';

export class Metrics {
  readonly registry = new Registry();
  readonly sessions = new Gauge({ name: 's3ftpd_sessions', help: 'Open control connections', registers: [this.registry] });
  readonly logins = new Counter({ name: 's3ftpd_logins_total', help: 'Login attempts by result', labelNames: ['result'], registers: [this.registry] });
  readonly bans = new Counter({ name: 's3ftpd_bans_total', help: 'Addresses banned after failed logins', registers: [this.registry] });
  readonly refusedConnections = new Counter({
    name: 's3ftpd_refused_connections_total',
    help: 'Connections refused at connect, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly transfersInFlight = new Gauge({ name: 's3ftpd_transfers_in_flight', help: 'Running transfers', registers: [this.registry] });
  readonly passivePorts = new Gauge({ name: 's3ftpd_passive_ports_in_use', help: 'Passive endpoints open', registers: [this.registry] });
  readonly uploadBufferBytes = new Gauge({
    name: 's3ftpd_upload_buffer_bytes',
    help: 'Bytes held in upload part buffers by all workers (bounded by --upload-buffer-budget)',
    registers: [this.registry],
  });
  readonly bytes = new Counter({ name: 's3ftpd_bytes_total', help: 'Bytes transferred by direction', labelNames: ['direction'], registers: [this.registry] });
  readonly transfers = new Histogram({
    name: 's3ftpd_transfer_duration_seconds',
    help: 'Transfer duration by operation and result',
    labelNames: ['op', 'result'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800],
    registers: [this.registry],
  });
  readonly s3Latency = new Histogram({
    name: 's3ftpd_s3_request_duration_seconds',
    help: 'S3 request latency by operation',
    labelNames: ['operation'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly s3Errors = new Counter({ name: 's3ftpd_s3_errors_total', help: 'S3 errors by code', labelNames: ['code'], registers: [this.registry] });
  readonly poolUtilization = new Gauge({ name: 's3ftpd_worker_pool_utilization', help: 'Piscina pool utilisation (0-1)', registers: [this.registry] });
  #channel: BroadcastChannel;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 's3ftpd_' });
    const observe: StorageCallObserver = ({ operation, seconds, error }) => {
      this.s3Latency.observe({ operation }, seconds);
      if (error !== undefined) this.s3Errors.inc({ code: error });
    };
    this.#channel = observeS3Calls(observe);
  }

  close(): void {
    this.#channel.close();
  }
}

export interface Probes {
  /** Resolves true when storage answers and the pool has threads. */
  ready(): Promise<boolean>;
  utilization(): number;
  passivePorts(): number;
  uploadBufferBytes(): number;
}

export async function serveMetrics(metrics: Metrics, probes: Probes, host: string, port: number): Promise<{ address: AddressInfo; close: () => void }> {
  const server = http.createServer((request, response) => {
    const reply = (status: number, type: string, body: string): void => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    const route = (request.url ?? '/').split('?')[0];
    if (route === '/metrics') {
      metrics.poolUtilization.set(probes.utilization());
      metrics.passivePorts.set(probes.passivePorts());
      metrics.uploadBufferBytes.set(probes.uploadBufferBytes());
      metrics.registry.metrics().then(
        (text) => reply(200, metrics.registry.contentType, text),
        (error: unknown) => reply(500, 'text/plain', String(error)),
      );
    } else if (route === '/healthz') {
      reply(200, 'text/plain', 'ok\n');
    } else if (route === '/readyz') {
      probes.ready().then(
        (ready) => reply(ready ? 200 : 503, 'text/plain', ready ? 'ready\n' : 'not ready\n'),
        () => reply(503, 'text/plain', 'not ready\n'),
      );
    } else {
      reply(404, 'text/plain', 'not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve());
  });
  const address = server.address() as AddressInfo;
  log.info('metrics listening', { address: `${address.address}:${address.port}` });
  return { address, close: () => server.close() };
}
