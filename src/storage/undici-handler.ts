// The S3 client's HTTP transport on undici instead of node:http (--s3-http undici). The SDK keeps
// signing, retries and error parsing; undici moves the bytes, for less CPU per GiB: its parser and
// body stream cost less than node:http's socketOnData and IncomingMessage (bench/RESULTS.md 19, 21).
// Errors are given the names and codes the SDK's retry strategy and our classify() know from
// node:http, so a refused or timed-out S3 is retried and reported exactly as before.
import { Readable } from 'node:stream';
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import { HttpResponse, type HttpRequest } from '@smithy/core/transport';
import { buildQueryString } from '@smithy/core/protocols';
import type { HttpHandlerOptions } from '@smithy/types';

export interface UndiciHandlerOptions {
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Keep-alive connections per S3 origin (the SDK's default agent allows 50). */
  readonly connections?: number;
}

interface HandlerConfig {
  readonly connectionTimeout: number;
  readonly requestTimeout: number;
}

/** What node:http would have thrown for this undici error (code ECONNRESET, name TimeoutError, ...). */
function asNodeHttpError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const renamed = (name: string, nodeCode: string): Error => {
    const mapped = Object.assign(new Error(error.message, { cause: error }), { code: nodeCode });
    mapped.name = name;
    return mapped;
  };
  if (error instanceof undiciErrors.RequestAbortedError || error.name === 'AbortError') return renamed('AbortError', 'ABORT_ERR');
  if (error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
    return renamed('TimeoutError', 'ETIMEDOUT');
  }
  if (error instanceof undiciErrors.SocketError || code === 'UND_ERR_CLOSED') return renamed('Error', 'ECONNRESET');
  return error;
}

/** The request target exactly as the SDK's node:http handler builds it (sorted, escaped query). */
function pathWithQuery(request: HttpRequest): string {
  const query = request.query ? buildQueryString(request.query) : '';
  const fragment = request.fragment ? `#${request.fragment}` : '';
  return `${request.path}${query ? `?${query}` : ''}${fragment}`;
}

function responseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** undici refuses `expect: 100-continue` (the SDK adds it to large PutObjects); S3 does not need it. */
function withoutExpect(headers: Record<string, string>): Record<string, string> {
  if (!Object.keys(headers).some((name) => name.toLowerCase() === 'expect')) return headers;
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'expect'));
}

type RequestBody = Dispatcher.DispatchOptions['body'];

/** The SDK's request body as undici takes it (strings, bytes and Node streams pass as they are). */
function requestBody(body: unknown): RequestBody {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array || body instanceof Readable) return body;
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  throw new TypeError('unsupported S3 request body type');
}

export class UndiciHttpHandler {
  readonly metadata = { handlerProtocol: 'http/1.1' };
  readonly #agent: Agent;
  #config: HandlerConfig;

  constructor(options: UndiciHandlerOptions) {
    this.#config = { connectionTimeout: options.connectionTimeoutMs, requestTimeout: options.requestTimeoutMs };
    this.#agent = new Agent({
      connections: options.connections ?? 50,
      connect: { timeout: options.connectionTimeoutMs },
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  async handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    const signal = options.abortSignal as AbortSignal | undefined;
    if (signal?.aborted) throw asNodeHttpError(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
    const port = request.port === undefined ? '' : `:${request.port}`;
    const origin = `${request.protocol}//${request.hostname}${port}`;
    try {
      const response = await this.#agent.request({
        origin,
        path: pathWithQuery(request),
        method: request.method,
        headers: withoutExpect(request.headers),
        body: requestBody(request.body),
        signal,
      });
      // Whoever reads the body (a download's pipeline) sees its errors; an unread body must not
      // take the process down with an unhandled 'error'.
      response.body.on('error', () => undefined);
      return {
        response: new HttpResponse({ statusCode: response.statusCode, headers: responseHeaders(response.headers), body: response.body }),
      };
    } catch (error) {
      throw asNodeHttpError(error);
    }
  }

  updateHttpClientConfig(key: keyof HandlerConfig, value: number): void {
    this.#config = { ...this.#config, [key]: value };
  }

  httpHandlerConfigs(): HandlerConfig {
    return this.#config;
  }

  destroy(): void {
    void this.#agent.close();
  }
}
