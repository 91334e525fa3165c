// Node treats a TCP FIN without a TLS close_notify as an ordinary end of stream, which would let a
// killed or cut-off upload be committed truncated. Putting a small duplex between the TCP socket
// and TLS lets us see whether TLS had already ended (close_notify) when the TCP stream ended.
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { Duplex } from 'node:stream';

export interface CheckedTlsSocket {
  readonly socket: tls.TLSSocket;
  /** True once the peer ended TLS with close_notify; false when TCP ended first; undefined before either. */
  readonly closedCleanly: () => boolean | undefined;
}

interface WithReadableState {
  readonly _readableState?: { readonly ended?: boolean };
}

/** Whether the stream has pushed its end (set synchronously, unlike the 'end' event). */
function hasPushedEnd(stream: tls.TLSSocket): boolean {
  return (stream as unknown as WithReadableState)._readableState?.ended === true;
}

export function wrapWithEofCheck(raw: net.Socket, context: tls.SecureContext): CheckedTlsSocket {
  let clean: boolean | undefined;
  let secure: tls.TLSSocket | undefined;
  const between = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      raw.write(chunk, callback);
    },
    final(callback) {
      raw.end();
      callback();
    },
    destroy(error, callback) {
      raw.destroy(error ?? undefined);
      callback(error);
    },
  });
  raw.on('data', (chunk: Buffer) => {
    if (!between.push(chunk)) raw.pause();
  });
  raw.on('end', () => between.push(null));
  raw.on('error', (error) => between.destroy(error));
  raw.on('close', () => {
    if (!between.destroyed && !between.readableEnded) between.destroy();
  });
  // Registered before TLS attaches its own listener, so this runs after every byte reached TLS
  // and before TLS hears of the end of the TCP stream.
  between.on('end', () => {
    if (clean === undefined) clean = secure !== undefined && hasPushedEnd(secure);
  });
  secure = new tls.TLSSocket(between, { isServer: true, secureContext: context });
  return { socket: secure, closedCleanly: () => clean };
}
