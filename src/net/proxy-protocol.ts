// PROXY protocol (HAProxy proxy-protocol.txt, v1 text and v2 binary) for connections that a
// trusted load balancer opens on a client's behalf, and the allow-list of who is trusted.
import net from 'node:net';

export interface ProxiedAddress {
  readonly source: string;
  readonly sourcePort: number;
  readonly destination: string;
  readonly destinationPort: number;
  readonly version: 1 | 2;
}

/** A v2 type-length-value extension, kept raw so it can be logged; we act on none of them. */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

/** 'local': the balancer speaks for itself (health checks, v1 UNKNOWN); use the socket's own address. */
export type ProxyHeader =
  | { readonly kind: 'proxied'; readonly address: ProxiedAddress; readonly tlvs: readonly ProxyTlv[] }
  | { readonly kind: 'local' };

export type ProxyHeaderErrorCode = 'malformed' | 'timeout' | 'closed' | 'too-long' | 'unsupported';

export class ProxyHeaderError extends Error {
  override readonly name = 'ProxyHeaderError';
  readonly code: ProxyHeaderErrorCode;
  constructor(code: ProxyHeaderErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export type ParseResult = { readonly state: 'incomplete' } | { readonly state: 'done'; readonly header: ProxyHeader; readonly length: number };

/** The spec's own bound: "PROXY UNKNOWN" plus two IPv6 addresses and ports, with CRLF. */
export const V1_MAX_BYTES = 107;
/**
 * v2 may announce up to 65,535 bytes, but what real balancers send is far smaller: addresses take
 * at most 216 bytes (unix), and HAProxy's TLVs (ALPN, authority <= 255, unique id <= 128, SSL
 * details, netns) or AWS/Azure endpoint ids add a few hundred more. 4 KiB leaves room for all of
 * that with padding while bounding what an unauthenticated peer makes us hold per connection.
 */
export const V2_MAX_BYTES = 4096;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_BYTES = 16;
const CR = 0x0d;
const LF = 0x0a;

const incomplete: ParseResult = { state: 'incomplete' };

/** Pure: parses from the start of `buffer`; throws ProxyHeaderError once the bytes cannot become a header. */
export function parseProxyHeader(buffer: Buffer): ParseResult {
  if (startsLike(buffer, V2_SIGNATURE)) {
    return buffer.length < V2_SIGNATURE.length ? incomplete : parseV2(buffer);
  }
  if (startsLike(buffer, V1_PREFIX)) {
    return buffer.length < V1_PREFIX.length ? incomplete : parseV1(buffer);
  }
  throw new ProxyHeaderError('malformed', 'connection does not start with a PROXY protocol header');
}

// True while what has arrived so far is still a prefix of `signature` (or the other way round),
// so a header split anywhere in its signature waits instead of failing.
function startsLike(buffer: Buffer, signature: Buffer): boolean {
  const common = Math.min(buffer.length, signature.length);
  return buffer.subarray(0, common).equals(signature.subarray(0, common));
}

const V1_TCP = /^PROXY (TCP4|TCP6) ([0-9A-Fa-f:.]+) ([0-9A-Fa-f:.]+) (0|[1-9][0-9]{0,4}) (0|[1-9][0-9]{0,4})\r\n$/;
// The spec tells receivers to ignore whatever follows UNKNOWN on the line.
const V1_UNKNOWN = /^PROXY UNKNOWN(?: [\x20-\x7e]*)?\r\n$/;

function parseV1(buffer: Buffer): ParseResult {
  const searched = buffer.subarray(0, V1_MAX_BYTES);
  const cr = searched.indexOf(CR);
  if (cr === -1) {
    if (buffer.length >= V1_MAX_BYTES) throw new ProxyHeaderError('too-long', `PROXY v1 line has no CRLF within ${V1_MAX_BYTES} bytes`);
    return incomplete;
  }
  if (cr + 1 >= V1_MAX_BYTES) throw new ProxyHeaderError('too-long', `PROXY v1 line has no CRLF within ${V1_MAX_BYTES} bytes`);
  if (cr + 1 >= buffer.length) return incomplete;
  if (buffer[cr + 1] !== LF) throw new ProxyHeaderError('malformed', 'PROXY v1 line has a CR not followed by LF');
  const length = cr + 2;
  const line = buffer.toString('latin1', 0, length);
  if (V1_UNKNOWN.test(line)) return { state: 'done', header: { kind: 'local' }, length };
  const fields = V1_TCP.exec(line);
  if (fields === null) throw new ProxyHeaderError('malformed', `malformed PROXY v1 line ${JSON.stringify(line)}`);
  const [, protocol, source = '', destination = '', sourcePort, destinationPort] = fields;
  const family = protocol === 'TCP4' ? 'ipv4' : 'ipv6';
  const address: ProxiedAddress = {
    source: v1Address(source, family),
    destination: v1Address(destination, family),
    sourcePort: v1Port(sourcePort),
    destinationPort: v1Port(destinationPort),
    version: 1,
  };
  return { state: 'done', header: { kind: 'proxied', address, tlvs: [] }, length };
}

function v1Address(text: string, family: 'ipv4' | 'ipv6'): string {
  const valid = family === 'ipv4' ? net.isIPv4(text) : net.isIPv6(text);
  if (!valid) throw new ProxyHeaderError('malformed', `PROXY v1 ${family} address ${JSON.stringify(text)} is not valid`);
  return family === 'ipv4' ? text : plainIpv6(text);
}

function v1Port(text: string | undefined): number {
  const port = Number(text);
  if (!(port <= 0xffff)) throw new ProxyHeaderError('malformed', `PROXY v1 port ${JSON.stringify(text)} is out of range`);
  return port;
}

const COMMAND_LOCAL = 0x0;
const COMMAND_PROXY = 0x1;
const FAMILY_TCP4 = 0x11;
const FAMILY_TCP6 = 0x21;

function parseV2(buffer: Buffer): ParseResult {
  if (buffer.length < V2_FIXED_BYTES) return incomplete;
  const versionCommand = buffer.readUInt8(12);
  const version = versionCommand >> 4;
  const command = versionCommand & 0x0f;
  if (version !== 2) throw new ProxyHeaderError('unsupported', `PROXY binary header has version ${version}, not 2`);
  if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY) throw new ProxyHeaderError('malformed', `PROXY v2 command ${command} is not LOCAL or PROXY`);
  const familyProtocol = buffer.readUInt8(13);
  const length = V2_FIXED_BYTES + buffer.readUInt16BE(14);
  // Rejected before the body arrives, so nobody can make us wait for (and hold) 64 KiB.
  if (length > V2_MAX_BYTES) throw new ProxyHeaderError('too-long', `PROXY v2 header of ${length} bytes exceeds ${V2_MAX_BYTES}`);
  if (buffer.length < length) return incomplete;
  // The spec: for LOCAL the receiver must ignore the family and whatever block follows.
  if (command === COMMAND_LOCAL) return { state: 'done', header: { kind: 'local' }, length };
  const body = buffer.subarray(V2_FIXED_BYTES, length);
  let address: ProxiedAddress;
  let addressBytes: number;
  if (familyProtocol === FAMILY_TCP4) {
    addressBytes = 12;
    if (body.length < addressBytes) throw new ProxyHeaderError('malformed', 'PROXY v2 length is too short for TCP over IPv4');
    address = { source: [...body.subarray(0, 4)].join('.'), destination: [...body.subarray(4, 8)].join('.'), sourcePort: body.readUInt16BE(8), destinationPort: body.readUInt16BE(10), version: 2 };
  } else if (familyProtocol === FAMILY_TCP6) {
    addressBytes = 36;
    if (body.length < addressBytes) throw new ProxyHeaderError('malformed', 'PROXY v2 length is too short for TCP over IPv6');
    address = { source: ipv6FromBytes(body.subarray(0, 16)), destination: ipv6FromBytes(body.subarray(16, 32)), sourcePort: body.readUInt16BE(32), destinationPort: body.readUInt16BE(34), version: 2 };
  } else {
    // UNSPEC, UDP or unix: there is no TCP client address to act on, and falling back to the
    // balancer's own address would make bans and logs hit every client behind it.
    throw new ProxyHeaderError('unsupported', `PROXY v2 family/protocol 0x${familyProtocol.toString(16).padStart(2, '0')} is not TCP over IPv4 or IPv6`);
  }
  return { state: 'done', header: { kind: 'proxied', address, tlvs: parseTlvs(body.subarray(addressBytes)) }, length };
}

function parseTlvs(bytes: Buffer): ProxyTlv[] {
  const tlvs: ProxyTlv[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 3) throw new ProxyHeaderError('malformed', 'PROXY v2 TLV header overruns the declared length');
    const type = bytes.readUInt8(offset);
    const valueLength = bytes.readUInt16BE(offset + 1);
    const start = offset + 3;
    if (start + valueLength > bytes.length) throw new ProxyHeaderError('malformed', `PROXY v2 TLV 0x${type.toString(16)} overruns the declared length`);
    // Copied so a logged TLV does not pin the connection's receive buffer.
    tlvs.push({ type, value: Buffer.from(bytes.subarray(start, start + valueLength)) });
    offset = start + valueLength;
  }
  return tlvs;
}

function ipv6FromBytes(bytes: Buffer): string {
  const groups: string[] = [];
  for (let offset = 0; offset < 16; offset += 2) groups.push(bytes.readUInt16BE(offset).toString(16));
  return plainIpv6(groups.join(':'));
}

// Node's canonical form, and an IPv4-mapped address as the IPv4 address it stands for, matching
// how the rest of the server names peers (see plainAddress in net-address.ts).
function plainIpv6(text: string): string {
  const canonical = new net.SocketAddress({ address: text, family: 'ipv6' }).address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(canonical);
  return mapped?.[1] ?? canonical;
}

/**
 * Reads one PROXY header from a fresh socket nobody else reads yet. Bytes after the header are
 * put back with unshift, so a TLS wrap or the FTP line reader sees them. Rejects with
 * ProxyHeaderError; the caller decides whether to destroy the socket.
 */
export function readProxyHeader(socket: net.Socket, options: { readonly timeoutMs: number }): Promise<ProxyHeader> {
  return new Promise<ProxyHeader>((resolve, reject) => {
    if (socket.destroyed || socket.readableEnded) {
      reject(new ProxyHeaderError('closed', 'connection closed before its PROXY header'));
      return;
    }
    let received: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (outcome: ProxyHeader | ProxyHeaderError, rest?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onClosed);
      socket.off('close', onClosed);
      socket.off('error', onError);
      if (rest !== undefined && rest.length > 0) socket.unshift(rest);
      if (outcome instanceof ProxyHeaderError) reject(outcome);
      else resolve(outcome);
    };
    // 'readable' with read() rather than 'data': once our listener is gone the stream returns to
    // its initial, unflowing state, so the next reader starts exactly where we stopped.
    const onReadable = (): void => {
      let chunk: unknown;
      while (!settled && (chunk = socket.read()) !== null) {
        if (!Buffer.isBuffer(chunk)) {
          finish(new ProxyHeaderError('malformed', 'socket has an encoding set; PROXY header needs raw bytes'));
          return;
        }
        received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
        let result: ParseResult;
        try {
          result = parseProxyHeader(received);
        } catch (error) {
          finish(error instanceof ProxyHeaderError ? error : new ProxyHeaderError('malformed', String(error), { cause: error }));
          return;
        }
        if (result.state === 'done') finish(result.header, received.subarray(result.length));
      }
    };
    const onClosed = (): void => finish(new ProxyHeaderError('closed', `connection closed after ${received.length} bytes of its PROXY header`));
    const onError = (error: Error): void => finish(new ProxyHeaderError('closed', `connection failed before its PROXY header: ${error.message}`, { cause: error }));
    const timer = setTimeout(() => finish(new ProxyHeaderError('timeout', `no complete PROXY header within ${options.timeoutMs} ms`)), options.timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onClosed);
    socket.once('close', onClosed);
    socket.once('error', onError);
  });
}

export interface CidrList {
  /** The entries as given, for logs and error messages. */
  readonly entries: readonly string[];
  contains(address: string): boolean;
}

/** Parses 'a.b.c.d/n, x::/n, plain addresses' (comma-separated); an empty text trusts nobody. */
export function parseCidrList(text: string): CidrList {
  const blockList = new net.BlockList();
  const entries = text.trim() === '' ? [] : text.split(',').map((entry) => entry.trim());
  for (const entry of entries) {
    const match = /^([^/]*)(?:\/(\d{1,3}))?$/.exec(entry);
    const base = match?.[1] ?? '';
    const family = net.isIPv4(base) ? 'ipv4' : net.isIPv6(base) && !base.includes('%') ? 'ipv6' : undefined;
    if (family === undefined) throw new Error(`proxy allow-list entry ${JSON.stringify(entry)} is not an IPv4 or IPv6 address or CIDR block`);
    const maxPrefix = family === 'ipv4' ? 32 : 128;
    const prefix = match?.[2] === undefined ? maxPrefix : Number(match[2]);
    if (prefix > maxPrefix) throw new Error(`proxy allow-list entry ${JSON.stringify(entry)} has a prefix longer than ${maxPrefix} bits`);
    blockList.addSubnet(base, prefix, family);
  }
  return {
    entries,
    contains(address: string): boolean {
      // Dual-stack listeners report IPv4 peers as ::ffff:a.b.c.d; they must match IPv4 rules.
      if (address.includes('%')) return false;
      const plain = net.isIPv6(address) ? plainIpv6(address) : address;
      if (net.isIPv4(plain)) return blockList.check(plain, 'ipv4');
      if (net.isIPv6(plain)) return blockList.check(plain, 'ipv6');
      return false;
    },
  };
}

/** How long a trusted balancer may take to send its header before the connection is dropped. */
export const PROXY_HEADER_TIMEOUT_MS = 5000;

/**
 * The client's address on a fresh connection: its peer, or, when the peer is a trusted balancer,
 * the address its PROXY header carries (a LOCAL header, a health check, speaks for the balancer).
 * Rejects with ProxyHeaderError when a trusted peer sends no valid header.
 */
export async function clientAddressOf(socket: net.Socket, peer: string, trusted: CidrList): Promise<string> {
  if (!trusted.contains(peer)) return peer;
  const header = await readProxyHeader(socket, { timeoutMs: PROXY_HEADER_TIMEOUT_MS });
  return header.kind === 'proxied' ? header.address.source : peer;
}
