// The data connections' TLS engine in native/ (loaded by ../native.ts), typed; when it is not
// there the gateway uses Node's TLS for data connections.
import { nativeAddon, nativeAddonProblem, type NativeAddon } from '../native.ts';
import type { TlsMaterial } from './material.ts';

/** An SSL_CTX with the certificate, key and ticket keys; opaque to JS. */
export type NativeContext = object & { readonly __nativeTlsContext: never };

/** One server-side TLS connection on memory BIOs (native/src/tls_engine.cc). */
export interface NativeEngine {
  /** Feeds ciphertext; returns the plaintext it completed, exactly sized, or null. */
  receive(ciphertext: Uint8Array | null): Buffer | null;
  /** Feeds ciphertext and decrypts into out[offset..] (what does not fit stays); returns bytes written. */
  receiveInto(ciphertext: Uint8Array | null, out: Uint8Array, offset: number): number;
  /** Feeds ciphertext; whether plaintext waits (not taken). */
  peek(ciphertext: Uint8Array | null): boolean;
  /** Encrypts the chunks into `out` after any pending handshake output; returns the bytes used. */
  encrypt(chunks: readonly Uint8Array[], out: Uint8Array): number;
  /** Ciphertext the engine produced on its own (handshake, tickets, alerts), or null. */
  takeOutput(): Buffer | null;
  /** Sessions made since the last call (control connections only), or null. */
  takeNewSessions(): Array<{ id: Buffer; data: Buffer }> | null;
  /** Queues our close_notify. */
  shutdown(): void;
  state(): number;
  error(): string;
  protocol(): string | null;
  free(): void;
}

export const EngineState = {
  handshakeDone: 1,
  closeNotify: 2,
  failed: 4,
  sessionReused: 8,
  outputPending: 16,
  newSessions: 32,
} as const;

interface Binding {
  createContext(cert: string, key: string, ticketKeys: Uint8Array, ciphers: string, suites: string, timeoutSeconds: number): NativeContext;
  readonly Engine: new (
    context: NativeContext,
    sessionIdContext: string,
    known: ReadonlyArray<{ id: Uint8Array; data: Uint8Array }>,
    control: boolean,
  ) => NativeEngine;
}

const binding = nativeAddon as (NativeAddon & Binding) | undefined;

/** Why the engine is not available (not built, or failed to load); undefined when it is. */
export const nativeTlsProblem: string | undefined = nativeAddonProblem;

export function nativeTlsAvailable(): boolean {
  return binding !== undefined;
}

/** A native context for `material`, with the same TLS policy as createServerContext (context.ts). */
export function createNativeContext(material: TlsMaterial, ciphers: string, suites: string, timeoutSeconds: number): NativeContext {
  if (!binding) throw new Error(`native TLS engine unavailable: ${nativeAddonProblem ?? 'not built'}`);
  return binding.createContext(material.cert, material.key, material.ticketKeys, ciphers, suites, timeoutSeconds);
}

export function createNativeEngine(
  context: NativeContext,
  sessionIdContext: string,
  known: ReadonlyArray<{ readonly id: Uint8Array; readonly data: Uint8Array }>,
  control = false,
): NativeEngine {
  if (!binding) throw new Error('native TLS engine unavailable');
  return new binding.Engine(context, sessionIdContext, known.map(({ id, data }) => ({ id, data })), control);
}
