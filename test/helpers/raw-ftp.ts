// A minimal FTPS client that exposes every reply code, for testing the contract row by row.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';

export interface FtpReply {
  readonly code: number;
  /** Every line of the reply, CRLF removed. */
  readonly lines: string[];
  readonly text: string;
}

export interface TransferResult {
  readonly first: FtpReply;
  readonly final: FtpReply | undefined;
  readonly data: Buffer;
}

export interface ConnectOptions {
  /** The local address to connect from (e.g. 127.0.0.2, to look like another client). */
  readonly localAddress?: string;
  /** TLS client options for the control and data connections (e.g. maxVersion, secureOptions). */
  readonly tls?: tls.ConnectionOptions;
}

export class RawFtp {
  #socket: net.Socket | tls.TLSSocket;
  #buffer = '';
  #pending: string[] = [];
  #replies: FtpReply[] = [];
  #waiters: Array<(reply: FtpReply) => void> = [];
  #closed = false;
  readonly host: string;

  readonly #tlsOptions: tls.ConnectionOptions;
  /** The control connection's local address (ConnectOptions.localAddress), used for data connections too. */
  readonly localAddress: string | undefined;

  private constructor(socket: net.Socket, host: string, tlsOptions: tls.ConnectionOptions, localAddress: string | undefined) {
    this.#socket = socket;
    this.host = host;
    this.#tlsOptions = tlsOptions;
    this.localAddress = localAddress;
    this.#listen(socket);
  }

  static async connect(host: string, port: number, options: ConnectOptions = {}): Promise<{ client: RawFtp; greeting: FtpReply }> {
    const socket = net.connect({ host, port, noDelay: true, localAddress: options.localAddress });
    await once(socket, 'connect');
    const client = new RawFtp(socket, host, options.tls ?? {}, options.localAddress);
    const greeting = await client.read();
    return { client, greeting };
  }

  /** Connects, upgrades to TLS, logs in and sets PBSZ 0 / PROT P. */
  static async login(host: string, port: number, user: string, password: string, options: ConnectOptions = {}): Promise<RawFtp> {
    const { client } = await RawFtp.connect(host, port, options);
    await client.expect('AUTH TLS', 234);
    await client.upgrade();
    await client.expect(`USER ${user}`, 331);
    await client.expect(`PASS ${password}`, 230);
    await client.expect('PBSZ 0', 200);
    await client.expect('PROT P', 200);
    return client;
  }

  #listen(socket: net.Socket | tls.TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.#onData(text));
    socket.on('close', () => {
      this.#closed = true;
      for (const waiter of this.#waiters.splice(0)) waiter({ code: 0, lines: ['(connection closed)'], text: '(connection closed)' });
    });
    socket.on('error', () => undefined);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #onData(text: string): void {
    this.#buffer += text;
    for (let i = this.#buffer.indexOf('\r\n'); i >= 0; i = this.#buffer.indexOf('\r\n')) {
      const line = this.#buffer.slice(0, i);
      this.#buffer = this.#buffer.slice(i + 2);
      this.#pending.push(line);
      const first = this.#pending[0] ?? '';
      const code = first.slice(0, 3);
      const multi = first[3] === '-';
      if (!multi || (this.#pending.length > 1 && line.startsWith(`${code} `))) {
        const lines = this.#pending;
        this.#pending = [];
        const reply = { code: Number(code), lines, text: lines.join('\n') };
        const waiter = this.#waiters.shift();
        if (waiter) waiter(reply);
        else this.#replies.push(reply);
      }
    }
  }

  read(timeoutMs = 30_000): Promise<FtpReply> {
    const queued = this.#replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.resolve({ code: 0, lines: ['(connection closed)'], text: '(connection closed)' });
    return new Promise((resolve, reject) => {
      const waiter = (reply: FtpReply): void => {
        clearTimeout(timer);
        resolve(reply);
      };
      // A timed-out read gives up its place, so the next reply goes to the next reader.
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error('timed out waiting for a reply'));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  writeRaw(data: string | Buffer): void {
    this.#socket.write(data);
  }

  async send(line: string): Promise<FtpReply> {
    this.#socket.write(`${line}\r\n`);
    return this.read();
  }

  async expect(line: string, code: number): Promise<FtpReply> {
    const reply = await this.send(line);
    if (reply.code !== code) throw new Error(`${line.split(' ')[0]}: expected ${code}, got ${reply.text}`);
    return reply;
  }

  async upgrade(): Promise<void> {
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tls.connect({ ...this.#tlsOptions, socket: plain, rejectUnauthorized: false, servername: undefined });
    await once(secure, 'secureConnect');
    this.#socket = secure;
    this.#listen(secure);
  }

  get tlsSession(): Buffer | undefined {
    return this.#socket instanceof tls.TLSSocket ? this.#socket.getSession() : undefined;
  }

  /** Sends EPSV and returns the port. */
  async epsv(): Promise<number> {
    const reply = await this.expect('EPSV', 229);
    const match = /\(\|\|\|(\d+)\|\)/.exec(reply.text);
    if (!match) throw new Error(`bad EPSV reply: ${reply.text}`);
    return Number(match[1]);
  }

  /**
   * Opens the data connection from the control connection's local address (or `localAddress`);
   * TLS resumes the control session unless `resume` is false.
   */
  async openData(port: number, options: { tls?: boolean; resume?: boolean; localAddress?: string } = {}): Promise<net.Socket> {
    const raw = net.connect({ host: this.host, port, noDelay: true, localAddress: options.localAddress ?? this.localAddress });
    await once(raw, 'connect');
    if (options.tls === false) return raw;
    const secure = tls.connect({
      ...this.#tlsOptions,
      socket: raw,
      rejectUnauthorized: false,
      session: options.resume === false ? undefined : this.tlsSession,
    });
    secure.on('error', () => undefined);
    await once(secure, 'secureConnect');
    return secure;
  }

  /** EPSV, the command, then the data: uploads `upload` or collects what the server sends. */
  async transfer(command: string, options: { upload?: Buffer; resume?: boolean } = {}): Promise<TransferResult> {
    const port = await this.epsv();
    const data = await this.openData(port, { resume: options.resume });
    const chunks: Buffer[] = [];
    data.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise<void>((resolve) => {
      data.once('close', () => resolve());
    });
    const first = await this.send(command);
    if (first.code !== 150) {
      data.destroy();
      return { first, final: undefined, data: Buffer.alloc(0) };
    }
    if (options.upload) {
      data.end(options.upload);
    }
    await closed;
    const final = await this.read();
    return { first, final, data: Buffer.concat(chunks) };
  }

  async list(command: string): Promise<string[]> {
    const result = await this.transfer(command);
    if (result.final?.code !== 226) throw new Error(`${command}: ${result.first.text} / ${result.final?.text}`);
    return result.data.toString('utf8').split('\r\n').filter((l) => l !== '');
  }

  async quit(): Promise<void> {
    if (this.#closed) return;
    await this.send('QUIT').catch(() => undefined);
    this.#socket.destroy();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
