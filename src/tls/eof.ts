// Node treats a TCP FIN without a TLS close_notify as an ordinary end of stream, which would let a
// killed or cut-off upload be committed truncated. Putting a small duplex between the TCP socket
// and TLS lets us see whether TLS had already ended (close_notify) when the TCP stream ended.
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { Duplex } from 'node:stream';
import { wrapServerSocket } from './context.ts';
import type { SessionHooks } from './sessions.ts';

/**
 * Notes when TLS pushes the end of the cleartext stream. A TLSSocket pushes it synchronously when
 * the peer's close_notify is decrypted; the 'end' event only follows once a reader has taken every
 * byte, which for a paused upload can be long after the TCP end.
 */
function watchPushedEnd(stream: tls.TLSSocket): () => boolean {
  let pushedEnd = false;
  const push = stream.push.bind(stream);
  stream.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null) pushedEnd = true;
    return push(chunk, encoding);
  };
  return () => pushedEnd;
}

/**
 * A Duplex over a TCP socket that passes bytes both ways with backpressure but leaves the socket's
 * end and close to the caller, so TLS can be layered on it while the TCP events stay visible.
 */
export function duplexOver(raw: net.Socket): Duplex {
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
  return between;
}

/**
 * The server side of TLS over `raw`, ending only after the peer's close_notify: a bare TCP end
 * makes it fail with an error instead. `raw` must come from a server with allowHalfOpen, so TLS
 * can still answer after the peer's FIN.
 */
export function wrapWithEofCheck(raw: net.Socket, context: tls.SecureContext, sessions: SessionHooks = {}): tls.TLSSocket {
  const between = duplexOver(raw);
  let tcpEnded = false;
  raw.on('end', () => {
    tcpEnded = true;
    between.push(null);
  });
  raw.on('error', (error) => between.destroy(error));
  // After a normal TCP end, bytes may still wait in `between` for a slow reader: only a connection
  // that closed without ending (a reset) cuts them off.
  raw.on('close', () => {
    if (!tcpEnded && !between.destroyed) between.destroy(new Error('data connection reset'));
  });
  // Registered before TLS attaches its own listener, so this runs after every byte reached TLS
  // and before TLS hears of the end of the TCP stream. Without close_notify the TLS socket fails
  // instead of ending, so whoever reads it (an upload) sees an error, never a clean end.
  let closeNotifyArrived = (): boolean => false;
  let cutShort = (): void => undefined;
  between.on('end', () => {
    if (!closeNotifyArrived()) cutShort();
  });
  const secure = wrapServerSocket(between, context, sessions);
  closeNotifyArrived = watchPushedEnd(secure);
  cutShort = () => secure.destroy(new Error('data connection ended without TLS close_notify'));
  return secure;
}
