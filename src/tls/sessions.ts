// Session-id resumption of TLS 1.2 sessions across threads. A TLS 1.2 client that does not take
// tickets (curl sets SSL_OP_NO_TICKET; so do other OpenSSL and Schannel clients) resumes by session
// id, which needs the server to keep the session, and Node keeps none itself. The main thread
// records the sessions its control connections make, by binding (the session id context); each
// passive task carries its binding's sessions to the worker, whose data connection can resume
// those and no other. TLS 1.3 needs none of this: its tickets carry the session.
import { EventEmitter } from 'node:events';

export interface TlsSessionRecord {
  readonly id: Uint8Array;
  /** The serialized session, as OpenSSL gives it. */
  readonly data: Uint8Array;
}

/** What a server-side TLSSocket does with sessions: record the new ones, resume the known ones. */
export interface SessionHooks {
  readonly onNew?: (record: TlsSessionRecord) => void;
  readonly known?: readonly TlsSessionRecord[];
}

/**
 * The events Node's TLSSocket raises on its `server` for session-id resumption ('newSession',
 * 'resumeSession'); a standalone socket (AUTH TLS upgrades, data connections) has no tls.Server.
 */
export function sessionEvents(hooks: SessionHooks): EventEmitter {
  const events = new EventEmitter();
  const { onNew, known } = hooks;
  if (onNew) {
    events.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
      // The handshake waits for done(); a throw would otherwise reach Node as an unhandled 'error'.
      try {
        onNew({ id: new Uint8Array(id), data: new Uint8Array(data) });
      } finally {
        done();
      }
    });
  }
  if (known) {
    events.on('resumeSession', (id: Buffer, done: (error: Error | null, data: Buffer | null) => void) => {
      const found = known.find((record) => Buffer.compare(record.id, id) === 0);
      done(null, found ? Buffer.from(found.data) : null);
    });
  }
  return events;
}

/** The recorded sessions by binding, bounded: a few per binding, least recently recorded or used go. */
export class TlsSessionStore {
  readonly #byBinding = new Map<string, TlsSessionRecord[]>();
  readonly #perBinding: number;
  readonly #bindings: number;

  constructor(perBinding = 4, bindings = 10_000) {
    this.#perBinding = perBinding;
    this.#bindings = bindings;
  }

  record(binding: string, record: TlsSessionRecord): void {
    const records = this.#byBinding.get(binding) ?? [];
    this.#byBinding.delete(binding);
    this.#byBinding.set(binding, [...records, record].slice(-this.#perBinding));
    for (const oldest of this.#byBinding.keys()) {
      if (this.#byBinding.size <= this.#bindings) break;
      this.#byBinding.delete(oldest);
    }
  }

  /** A binding in use (a PASV of its connection) counts as recent, so busy ones are kept longest. */
  sessionsOf(binding: string): readonly TlsSessionRecord[] {
    const records = this.#byBinding.get(binding);
    if (records === undefined) return [];
    this.#byBinding.delete(binding);
    this.#byBinding.set(binding, records);
    return records;
  }

  forget(binding: string): void {
    this.#byBinding.delete(binding);
  }

  get size(): number {
    return this.#byBinding.size;
  }
}
