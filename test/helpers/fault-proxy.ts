// A small HTTP-aware TCP proxy for fault injection between the gateway and a real S3 server.
// It reads each HTTP/1.1 request's head on a client connection and, by the rules set at run time,
// forwards it (optionally after a delay), answers 503 SlowDown itself, resets the connection
// (optionally after forwarding part of the body), swallows it (S3 hangs), or refuses connections
// altogether (S3 down). Responses are relayed byte for byte; requests are handled one at a time,
// as the AWS SDK sends them (no pipelining).
import * as net from 'node:net';

export interface RequestMatch {
  /** HTTP method, case-insensitive; any when absent. */
  readonly method?: string;
  /** Tested against the request target (path and query); any when absent. */
  readonly target?: RegExp;
}

/** Matchers for the S3 calls the tests aim at. */
export const S3Calls = {
  uploadPart: { method: 'PUT', target: /[?&]uploadId=/ },
  completeMultipartUpload: { method: 'POST', target: /[?&]uploadId=/ },
  createMultipartUpload: { method: 'POST', target: /[?&]uploads(?:[=&]|$)/ },
  headObject: { method: 'HEAD' },
  listObjectsV2: { method: 'GET', target: /[?&]list-type=2/ },
} satisfies Record<string, RequestMatch>;

type FaultKind = 'slowdown' | 'reset' | 'swallow';
type Action = 'pass' | FaultKind;

interface Rule {
  readonly kind: FaultKind;
  readonly match: RequestMatch;
  remaining: number;
  readonly afterBodyBytes: number;
}

export interface SeenRequest {
  readonly method: string;
  readonly target: string;
  readonly action: Action;
}

interface Head {
  readonly method: string;
  readonly target: string;
  readonly bodyLength: number;
  readonly chunked: boolean;
  readonly expectContinue: boolean;
}

const MAX_HEAD = 64 * 1024;
const MAX_SEEN = 2000;

function parseHead(text: string): Head | undefined {
  const lines = text.split('\r\n');
  const [method, target] = (lines[0] ?? '').split(' ');
  if (!method || !target) return undefined;
  let bodyLength = 0;
  let chunked = false;
  let expectContinue = false;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') bodyLength = Number(value) || 0;
    else if (name === 'transfer-encoding') chunked = /chunked/i.test(value);
    else if (name === 'expect') expectContinue = /100-continue/i.test(value);
  }
  return { method: method.toUpperCase(), target, bodyLength, chunked, expectContinue };
}

function matches(match: RequestMatch, head: Head): boolean {
  if (match.method !== undefined && match.method.toUpperCase() !== head.method) return false;
  return match.target === undefined || match.target.test(head.target);
}

function slowDownResponse(head: Head, id: number): Buffer {
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>` +
    `<Resource>${head.target.split('?')[0] ?? ''}</Resource><RequestId>fault-proxy-${id}</RequestId></Error>`;
  const headers = [
    'HTTP/1.1 503 Slow Down',
    'Content-Type: application/xml',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `x-amz-request-id: fault-proxy-${id}`,
    `Date: ${new Date().toUTCString()}`,
    'Connection: close',
  ];
  // A HEAD response carries no body.
  return Buffer.from(`${headers.join('\r\n')}\r\n\r\n${head.method === 'HEAD' ? '' : body}`);
}

export class FaultProxy {
  readonly #server: net.Server;
  readonly #upstream: { host: string; port: number };
  readonly #sockets = new Set<net.Socket>();
  #rules: Rule[] = [];
  #delayMs = 0;
  #refusing = false;
  #ids = 0;
  port = 0;
  /** The most recent requests (bounded) and what the proxy did with each. */
  readonly seen: SeenRequest[] = [];
  readonly counts = { requests: 0, slowdowns: 0, resets: 0, refused: 0, swallowed: 0 };

  private constructor(upstream: URL) {
    this.#upstream = { host: upstream.hostname, port: Number(upstream.port || 80) };
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  static async start(upstream: string): Promise<FaultProxy> {
    const proxy = new FaultProxy(new URL(upstream));
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
    });
    proxy.port = (proxy.#server.address() as net.AddressInfo).port;
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Forwards everything unchanged: clears every rule, the delay, refusing and swallowing. */
  passThrough(): void {
    this.#rules = [];
    this.#delayMs = 0;
    this.#refusing = false;
  }

  /** Delays every request by `ms` before forwarding it. */
  delay(ms: number): void {
    this.#delayMs = ms;
  }

  /** Answers 503 SlowDown to the next `count` requests matching `match` (Infinity: all of them). */
  slowDown(count: number, match: RequestMatch = {}): void {
    this.#rules.push({ kind: 'slowdown', match, remaining: count, afterBodyBytes: 0 });
  }

  /** Resets the connection of the next `count` matching requests, after forwarding `afterBodyBytes` of each body. */
  reset(count: number, match: RequestMatch = {}, afterBodyBytes = 0): void {
    this.#rules.push({ kind: 'reset', match, remaining: count, afterBodyBytes });
  }

  /** S3 down: every open connection is dropped and new ones are closed at once. */
  refuse(): void {
    this.#refusing = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  /** S3 hangs: the next `count` matching requests are read but never forwarded or answered. */
  swallow(count: number, match: RequestMatch = {}): void {
    this.#rules.push({ kind: 'swallow', match, remaining: count, afterBodyBytes: 0 });
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #record(head: Head, action: Action): void {
    this.counts.requests += 1;
    this.seen.push({ method: head.method, target: head.target, action });
    if (this.seen.length > MAX_SEEN) this.seen.shift();
  }

  #decide(head: Head): Rule | undefined {
    const rule = this.#rules.find((r) => r.remaining > 0 && matches(r.match, head));
    if (rule) rule.remaining -= 1;
    return rule;
  }

  #track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
  }

  #accept(client: net.Socket): void {
    this.#track(client);
    if (this.#refusing) {
      this.counts.refused += 1;
      client.destroy();
      return;
    }
    let upstream: net.Socket | undefined;
    let buffer: Buffer = Buffer.alloc(0);
    // head: reading a request head; body: forwarding `bodyLeft` bytes; discard: dropping them before
    // a 503; raw: forwarding everything (a chunked body); wait: a delayed head; dead: closed.
    let state: 'head' | 'body' | 'discard' | 'raw' | 'wait' | 'dead' = 'head';
    let bodyLeft = 0;
    let resetAfter = Infinity;
    let pendingHead: Head | undefined;

    const die = (reset: boolean): void => {
      state = 'dead';
      if (reset) client.resetAndDestroy();
      else client.destroy();
      upstream?.destroy();
    };
    const toUpstream = (chunk: Buffer): void => {
      if (!upstream) {
        upstream = net.connect(this.#upstream);
        this.#track(upstream);
        upstream.on('data', (data: Buffer) => {
          if (state !== 'dead') client.write(data);
        });
        upstream.once('close', () => die(false));
        upstream.on('drain', () => client.resume());
      }
      if (!upstream.write(chunk)) client.pause();
    };
    const answerSlowDown = (head: Head): void => {
      this.counts.slowdowns += 1;
      state = 'dead';
      client.end(slowDownResponse(head, (this.#ids += 1)));
      upstream?.destroy();
    };
    const begin = (head: Head, raw: Buffer): void => {
      const rule = this.#decide(head);
      if (rule?.kind === 'swallow') {
        this.counts.swallowed += 1;
        this.#record(head, 'swallow');
        state = 'discard';
        bodyLeft = Infinity;
        return;
      }
      this.#record(head, rule?.kind ?? 'pass');
      bodyLeft = head.bodyLength;
      if (rule?.kind === 'slowdown') {
        // With Expect: 100-continue the body never comes; otherwise read it before answering.
        if (head.expectContinue || bodyLeft === 0) answerSlowDown(head);
        else {
          pendingHead = head;
          state = 'discard';
        }
        return;
      }
      if (rule?.kind === 'reset' && (rule.afterBodyBytes === 0 || bodyLeft === 0)) {
        this.counts.resets += 1;
        die(true);
        return;
      }
      resetAfter = rule?.kind === 'reset' ? rule.afterBodyBytes : Infinity;
      toUpstream(raw);
      state = head.chunked ? 'raw' : bodyLeft > 0 ? 'body' : 'head';
    };

    const pump = (): void => {
      for (let guard = 0; guard < 10_000 && buffer.length > 0; guard += 1) {
        if (state === 'wait' || state === 'dead') return;
        if (state === 'raw') {
          toUpstream(buffer);
          buffer = Buffer.alloc(0);
          return;
        }
        if (state === 'head') {
          const end = buffer.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buffer.length > MAX_HEAD) state = 'raw';
            return;
          }
          const raw = buffer.subarray(0, end + 4);
          buffer = buffer.subarray(end + 4);
          const head = parseHead(raw.toString('latin1'));
          if (!head) {
            die(false);
            return;
          }
          if (this.#delayMs > 0) {
            state = 'wait';
            setTimeout(() => {
              if (state !== 'wait') return;
              begin(head, raw);
              pump();
            }, this.#delayMs);
            return;
          }
          begin(head, raw);
          continue;
        }
        // body or discard
        const take = Math.min(bodyLeft, buffer.length, state === 'body' ? resetAfter : Infinity);
        const chunk = buffer.subarray(0, take);
        buffer = buffer.subarray(take);
        bodyLeft -= take;
        if (state === 'body') {
          toUpstream(chunk);
          resetAfter -= take;
          if (resetAfter <= 0) {
            this.counts.resets += 1;
            die(true);
            return;
          }
        }
        if (bodyLeft === 0) {
          if (state === 'discard' && pendingHead) {
            answerSlowDown(pendingHead);
            return;
          }
          state = 'head';
        }
      }
    };
    client.on('data', (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      pump();
    });
    client.once('close', () => {
      state = 'dead';
      upstream?.destroy();
    });
  }
}
