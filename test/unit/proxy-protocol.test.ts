// PROXY protocol reader: spec cases for v1 and v2, every split point of a header, real loopback
// sockets (bytes after the header survive, TLS included), random input, and the allow-list.
import t from 'tap';
import fc from 'fast-check';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { generate } from 'selfsigned';
import {
  parseProxyHeader, readProxyHeader, parseCidrList, ProxyHeaderError, V1_MAX_BYTES, V2_MAX_BYTES,
  type ProxyHeader, type ProxyHeaderErrorCode,
} from '../../src/net/proxy-protocol.ts';

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const LOCAL = 0x20;
const PROXY = 0x21;

// Independent of the parser on purpose: the encoder the tests trust is written from the spec.
function v2(versionCommand: number, familyProtocol: number, addresses: Buffer, tlvs: Buffer = Buffer.alloc(0), declared?: number): Buffer {
  const fixed = Buffer.alloc(4);
  fixed.writeUInt8(versionCommand, 0);
  fixed.writeUInt8(familyProtocol, 1);
  fixed.writeUInt16BE(declared ?? addresses.length + tlvs.length, 2);
  return Buffer.concat([SIGNATURE, fixed, addresses, tlvs]);
}
function tlv(type: number, value: string): Buffer {
  const head = Buffer.alloc(3);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(Buffer.byteLength(value), 1);
  return Buffer.concat([head, Buffer.from(value)]);
}
function ports(source: number, destination: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt16BE(source, 0);
  bytes.writeUInt16BE(destination, 2);
  return bytes;
}
function ipv6Bytes(text: string): Buffer {
  const withoutV4 = text.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`);
  const [head = '', tail] = withoutV4.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) => bytes.writeUInt16BE(parseInt(group, 16), index * 2));
  return bytes;
}
// How an address the parser returns maps back to 16 bytes: IPv4 comes back for mapped IPv6.
function asIpv6Bytes(text: string): Buffer {
  return net.isIPv4(text) ? ipv6Bytes(`::ffff:${text}`) : ipv6Bytes(text);
}

const v4Addresses = Buffer.concat([Buffer.from([192, 0, 2, 1, 198, 51, 100, 7]), ports(51234, 21)]);
const v6Addresses = Buffer.concat([ipv6Bytes('2001:db8::1'), ipv6Bytes('2001:db8:0:0:1::2'), ports(40000, 990)]);
const proxied = (source: string, sourcePort: number, destination: string, destinationPort: number, version: 1 | 2, tlvs: Array<{ type: number; value: Buffer }> = []): ProxyHeader =>
  ({ kind: 'proxied', address: { source, sourcePort, destination, destinationPort, version }, tlvs });

const good: Array<[string, Buffer, ProxyHeader]> = [
  ['v1 TCP4', Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.7 51234 21\r\n'), proxied('192.0.2.1', 51234, '198.51.100.7', 21, 1)],
  ['v1 TCP4 ports 0 and 65535', Buffer.from('PROXY TCP4 10.0.0.1 10.0.0.2 0 65535\r\n'), proxied('10.0.0.1', 0, '10.0.0.2', 65535, 1)],
  ['v1 TCP6', Buffer.from('PROXY TCP6 2001:DB8:0::1 2001:db8::2 1 2\r\n'), proxied('2001:db8::1', 1, '2001:db8::2', 2, 1)],
  ['v1 TCP6 IPv4-mapped', Buffer.from('PROXY TCP6 ::ffff:192.0.2.9 ::1 3 4\r\n'), proxied('192.0.2.9', 3, '::1', 4, 1)],
  ['v1 TCP6 longest line', Buffer.from('PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n'),
    proxied('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 65535, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 65535, 1)],
  ['v1 UNKNOWN', Buffer.from('PROXY UNKNOWN\r\n'), { kind: 'local' }],
  ['v1 UNKNOWN of exactly 107 bytes', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(V1_MAX_BYTES - 16)}\r\n`), { kind: 'local' }],
  ['v1 UNKNOWN with addresses', Buffer.from('PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n'), { kind: 'local' }],
  ['v2 PROXY IPv4', v2(PROXY, 0x11, v4Addresses), proxied('192.0.2.1', 51234, '198.51.100.7', 21, 2)],
  ['v2 PROXY IPv6', v2(PROXY, 0x21, v6Addresses), proxied('2001:db8::1', 40000, '2001:db8::1:0:0:2', 990, 2)],
  ['v2 PROXY IPv4 with TLVs', v2(PROXY, 0x11, v4Addresses, Buffer.concat([tlv(0x01, 'ftp'), tlv(0x04, ''), tlv(0x02, 'ftp.example')])),
    proxied('192.0.2.1', 51234, '198.51.100.7', 21, 2, [{ type: 1, value: Buffer.from('ftp') }, { type: 4, value: Buffer.alloc(0) }, { type: 2, value: Buffer.from('ftp.example') }])],
  ['v2 PROXY IPv6 with TLV', v2(PROXY, 0x21, v6Addresses, tlv(0xea, 'vpce-0123')), proxied('2001:db8::1', 40000, '2001:db8::1:0:0:2', 990, 2, [{ type: 0xea, value: Buffer.from('vpce-0123') }])],
  ['v2 LOCAL', v2(LOCAL, 0x00, Buffer.alloc(0)), { kind: 'local' }],
  ['v2 LOCAL ignores its family and block', v2(LOCAL, 0x31, Buffer.alloc(216, 7)), { kind: 'local' }],
];

t.test('good headers parse, and say how many bytes they used', async (t) => {
  for (const [name, header, expected] of good) {
    const result = parseProxyHeader(Buffer.concat([header, Buffer.from('USER anonymous\r\n')]));
    t.same(result, { state: 'done', header: expected, length: header.length }, name);
  }
});

const bad: Array<[string, Buffer, ProxyHeaderErrorCode]> = [
  ['no header at all', Buffer.from('USER anonymous\r\n'), 'malformed'],
  ['TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), 'malformed'],
  ['lowercase proxy', Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'malformed'],
  ['v1 too long without CRLF', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), 'too-long'],
  ['v1 CRLF just past 107 bytes', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(V1_MAX_BYTES - 15)}\r\n`), 'too-long'],
  ['v1 CR without LF', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX'), 'malformed'],
  ['v1 bare LF', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r\n'), 'malformed'],
  ['v1 bad IPv4', Buffer.from('PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n'), 'malformed'],
  ['v1 IPv4 with leading zero', Buffer.from('PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n'), 'malformed'],
  ['v1 IPv6 under TCP4', Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n'), 'malformed'],
  ['v1 IPv4 under TCP6', Buffer.from('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'), 'malformed'],
  ['v1 IPv6 with zone', Buffer.from('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), 'malformed'],
  ['v1 port > 65535', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), 'malformed'],
  ['v1 port with leading zero', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 021 2\r\n'), 'malformed'],
  ['v1 port with sign', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 +21 2\r\n'), 'malformed'],
  ['v1 extra space', Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'), 'malformed'],
  ['v1 trailing space', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n'), 'malformed'],
  ['v1 missing port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), 'malformed'],
  ['v1 missing everything', Buffer.from('PROXY \r\n'), 'malformed'],
  ['v1 UDP4', Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'malformed'],
  ['v2 bad signature', Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540b', 'hex'), Buffer.alloc(20)]), 'malformed'],
  ['v2 version 1', v2(0x11, 0x11, v4Addresses), 'unsupported'],
  ['v2 version 3', v2(0x31, 0x11, v4Addresses), 'unsupported'],
  ['v2 command 2', v2(0x22, 0x11, v4Addresses), 'malformed'],
  ['v2 IPv4 block too short', v2(PROXY, 0x11, v4Addresses.subarray(0, 11)), 'malformed'],
  ['v2 IPv6 block too short', v2(PROXY, 0x21, v4Addresses), 'malformed'],
  ['v2 TLV longer than the header', v2(PROXY, 0x11, v4Addresses, Buffer.concat([tlv(1, 'ftp'), Buffer.from([0x02, 0x00, 0x09, 0x61])])), 'malformed'],
  ['v2 TLV cut inside its own header', v2(PROXY, 0x11, v4Addresses, Buffer.from([0x02, 0x00])), 'malformed'],
  ['v2 PROXY UNSPEC', v2(PROXY, 0x00, Buffer.alloc(0)), 'unsupported'],
  ['v2 PROXY UDP over IPv4', v2(PROXY, 0x12, v4Addresses), 'unsupported'],
  ['v2 PROXY unix stream', v2(PROXY, 0x31, Buffer.alloc(216)), 'unsupported'],
  ['v2 longer than the cap', v2(PROXY, 0x11, Buffer.alloc(0), undefined, 0xffff), 'too-long'],
];

t.test('bad headers are rejected with the right code', async (t) => {
  for (const [name, header, code] of bad) {
    t.throws(() => parseProxyHeader(header), { name: 'ProxyHeaderError', code }, name);
  }
  t.throws(() => parseProxyHeader(v2(PROXY, 0x11, Buffer.alloc(0), undefined, 0xffff).subarray(0, 16)), { code: 'too-long' },
    'an oversized v2 length is refused from its first 16 bytes, without waiting for the body');
});

t.test('every header split at every byte is incomplete until its last byte', async (t) => {
  for (const [name, header, expected] of good) {
    const splitsIncomplete = Array.from({ length: header.length }, (_, cut) => parseProxyHeader(header.subarray(0, cut)).state);
    t.same(splitsIncomplete, Array<string>(header.length).fill('incomplete'), `${name}: all ${header.length} prefixes incomplete`);
    t.same(parseProxyHeader(header), { state: 'done', header: expected, length: header.length }, `${name}: complete`);
  }
});

async function socketPair(t: { teardown(cleanup: () => void): void }): Promise<{ client: net.Socket; accepted: net.Socket }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  const [accepted] = (await once(server, 'connection')) as [net.Socket];
  client.setNoDelay(true);
  t.teardown(() => {
    client.destroy();
    accepted.destroy();
    server.close();
  });
  return { client, accepted };
}

// Gives up after a while with what it has, so lost bytes fail an assertion instead of hanging.
async function readExactly(socket: net.Socket, count: number, waitMs = 2000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, waitMs);
    function done(): void {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve();
    }
    function onData(chunk: Buffer): void {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= count) done();
    }
    socket.on('data', onData);
  });
  return Buffer.concat(chunks);
}

t.test('readProxyHeader over loopback TCP', async (t) => {
  const header = Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.7 51234 21\r\n');
  const expected = proxied('192.0.2.1', 51234, '198.51.100.7', 21, 1);
  const following = Buffer.from('USER anonymous\r\nPASS x\r\n');

  await t.test('header and following bytes in one write: nothing after the header is lost', async (t) => {
    const { client, accepted } = await socketPair(t);
    client.write(Buffer.concat([header, following]));
    t.same(await readProxyHeader(accepted, { timeoutMs: 2000 }), expected);
    t.same(await readExactly(accepted, following.length), following);
  });

  await t.test('bytes already buffered before the read starts', async (t) => {
    const { client, accepted } = await socketPair(t);
    client.write(Buffer.concat([v2(PROXY, 0x21, v6Addresses, tlv(1, 'ftp')), following]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const result = await readProxyHeader(accepted, { timeoutMs: 2000 });
    t.equal(result.kind === 'proxied' && result.address.source, '2001:db8::1');
    t.same(await readExactly(accepted, following.length), following);
  });

  await t.test('header sent one byte at a time', async (t) => {
    const { client, accepted } = await socketPair(t);
    const reading = readProxyHeader(accepted, { timeoutMs: 5000 });
    for (const byte of Buffer.concat([header, following])) {
      client.write(Buffer.from([byte]));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    t.same(await reading, expected);
    t.same(await readExactly(accepted, following.length), following);
  });

  await t.test('timeout when nothing comes', async (t) => {
    const { accepted } = await socketPair(t);
    const started = Date.now();
    await t.rejects(readProxyHeader(accepted, { timeoutMs: 100 }), { code: 'timeout' });
    t.ok(Date.now() - started < 1500, 'gives up near the timeout');
  });

  await t.test('close before the header is complete', async (t) => {
    const { client, accepted } = await socketPair(t);
    client.end(header.subarray(0, 20));
    await t.rejects(readProxyHeader(accepted, { timeoutMs: 2000 }), { code: 'closed' });
  });

  await t.test('reset before the header is complete', async (t) => {
    const { client, accepted } = await socketPair(t);
    const reading = readProxyHeader(accepted, { timeoutMs: 2000 });
    client.write(header.subarray(0, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.resetAndDestroy();
    await t.rejects(reading, { code: 'closed' });
  });

  await t.test('a malformed header is refused as soon as it is seen', async (t) => {
    const { client, accepted } = await socketPair(t);
    client.write('GET / HTTP/1.1\r\n');
    await t.rejects(readProxyHeader(accepted, { timeoutMs: 5000 }), { code: 'malformed' });
  });

  await t.test('TLS handshake bytes after the header reach the TLS wrap (implicit FTPS)', { timeout: 10_000 }, async (t) => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, algorithm: 'sha256' });
    const { client, accepted } = await socketPair(t);
    client.write(v2(PROXY, 0x11, v4Addresses));
    const tlsClient = tls.connect({ socket: client, rejectUnauthorized: false });
    t.teardown(() => tlsClient.destroy());
    const result = await readProxyHeader(accepted, { timeoutMs: 2000 });
    t.equal(result.kind, 'proxied');
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the ClientHello sit in our buffer
    const tlsServer = new tls.TLSSocket(accepted, { isServer: true, cert: pems.cert, key: pems.private });
    await once(tlsClient, 'secureConnect');
    tlsClient.write('220 after TLS\r\n');
    const [echoed] = (await once(tlsServer, 'data')) as [Buffer];
    t.equal(echoed.toString(), '220 after TLS\r\n');
  });
});

const RUNS = 3000;

t.test('random bytes: only ProxyHeaderError, never more waiting past the caps', async (t) => {
  const prefixes = [Buffer.alloc(0), SIGNATURE, Buffer.concat([SIGNATURE, Buffer.from([PROXY, 0x11])]), Buffer.from('PROXY '), Buffer.from('PROXY TCP6 ')];
  const input = fc.tuple(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 400 })).map(([prefix, rest]) => Buffer.concat([prefix, rest]));
  fc.assert(fc.property(input, (bytes) => {
    try {
      const result = parseProxyHeader(bytes);
      if (result.state === 'incomplete') return bytes.length < Math.max(V1_MAX_BYTES, V2_MAX_BYTES);
      return result.length > 0 && result.length <= bytes.length;
    } catch (error) {
      return error instanceof ProxyHeaderError;
    }
  }), { numRuns: RUNS });
  t.pass(`${RUNS} random inputs`);
});

t.test('encoded random headers parse back to what was encoded', async (t) => {
  const port = fc.integer({ min: 0, max: 0xffff });
  const v1Header = fc.oneof(
    fc.tuple(fc.ipV4(), fc.ipV4(), port, port).map(([s, d, sp, dp]) => ({ text: `PROXY TCP4 ${s} ${d} ${sp} ${dp}\r\n`, s, d, sp, dp, v6: false })),
    fc.tuple(fc.ipV6(), fc.ipV6(), port, port).map(([s, d, sp, dp]) => ({ text: `PROXY TCP6 ${s} ${d} ${sp} ${dp}\r\n`, s, d, sp, dp, v6: true })),
  );
  fc.assert(fc.property(v1Header, fc.uint8Array({ maxLength: 20 }), ({ text, s, d, sp, dp, v6 }, after) => {
    const result = parseProxyHeader(Buffer.concat([Buffer.from(text), after]));
    if (result.state !== 'done' || result.header.kind !== 'proxied' || result.length !== text.length) return false;
    const { address } = result.header;
    const same = (parsed: string, given: string): boolean => (v6 ? asIpv6Bytes(parsed).equals(ipv6Bytes(given)) : parsed === given);
    return same(address.source, s) && same(address.destination, d) && address.sourcePort === sp && address.destinationPort === dp && address.version === 1;
  }), { numRuns: RUNS });

  const tlvList = fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 6 });
  const v2Header = fc.tuple(fc.boolean(), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), port, port, tlvList);
  fc.assert(fc.property(v2Header, ([useV6, source, destination, sp, dp, tlvs]) => {
    const width = useV6 ? 16 : 4;
    const addresses = Buffer.concat([source.subarray(0, width), destination.subarray(0, width), ports(sp, dp)]);
    const tlvBytes = Buffer.concat(tlvs.map(([type, value]) => Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value])));
    const header = v2(PROXY, useV6 ? 0x21 : 0x11, addresses, tlvBytes);
    const result = parseProxyHeader(header);
    if (result.state !== 'done' || result.header.kind !== 'proxied' || result.length !== header.length) return false;
    const { address } = result.header;
    const bytesOf = (text: string): Buffer => (useV6 ? asIpv6Bytes(text) : Buffer.from(text.split('.').map(Number)));
    return bytesOf(address.source).equals(source.subarray(0, width)) && bytesOf(address.destination).equals(destination.subarray(0, width))
      && address.sourcePort === sp && address.destinationPort === dp
      && result.header.tlvs.length === tlvs.length && result.header.tlvs.every((x, i) => x.type === tlvs[i]?.[0] && x.value.equals(tlvs[i][1]));
  }), { numRuns: RUNS });
  t.pass(`${2 * RUNS} round trips`);
});

t.test('CIDR allow-list', async (t) => {
  const list = parseCidrList(' 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,::ffff:172.16.0.0/108, 0.0.0.0/32');
  const cases: Array<[string, boolean]> = [
    ['10.1.2.3', true], ['10.255.255.255', true], ['11.0.0.1', false], ['9.255.255.255', false],
    ['::ffff:10.1.2.3', true], ['::ffff:a01:203', true], ['::FFFF:10.1.2.3', true],
    ['192.168.1.7', true], ['::ffff:192.168.1.7', true], ['192.168.1.8', false],
    ['2001:db8:ffff::1', true], ['2001:DB8::', true], ['2001:db9::1', false], ['::1', false],
    ['172.16.5.5', true], ['::ffff:172.16.5.5', true], ['172.32.0.1', false],
    ['0.0.0.0', true], ['::', false], ['fe80::1%eth0', false], ['not an address', false], ['', false],
  ];
  for (const [address, expected] of cases) t.equal(list.contains(address), expected, `${address || '(empty)'} ${expected ? 'matches' : 'does not match'}`);
  t.equal(parseCidrList('').contains('10.0.0.1'), false, 'an empty list trusts nobody');
  t.equal(parseCidrList('::/0').contains('1.2.3.4'), true, 'an IPv6 rule that covers ::ffff:0:0/96 covers IPv4');
  t.equal(parseCidrList('2000::/3').contains('1.2.3.4'), false, 'one that does not, does not');
  t.equal(parseCidrList('0.0.0.0/0').contains('::ffff:1.2.3.4'), true);

  for (const text of ['10.0.0.0/33', '::/129', '10.0.0/8', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/ 8', 'fe80::1%eth0', 'example.com', '10.0.0.0/8,,1.2.3.4', '10.0.0.0/8 1.2.3.4']) {
    t.throws(() => parseCidrList(text), /proxy allow-list entry/, `refuses ${JSON.stringify(text)}`);
  }
});
