// Telnet IAC sequences on the control connection (RFC 959 §4.1.3: clients send IAC IP / IAC DM
// before ABOR). Pure.
const IAC = 0xff;
const WILL = 0xfb;
const DONT = 0xfe;

/** Removes IAC commands from a line; IAC IAC stands for a literal 0xFF byte. */
export function stripTelnet(line: Buffer): Buffer {
  if (!line.includes(IAC)) return line;
  const out = Buffer.alloc(line.length);
  let length = 0;
  for (let i = 0; i < line.length; i += 1) {
    const byte = line[i] ?? 0;
    if (byte !== IAC) {
      out[length++] = byte;
      continue;
    }
    const next = line[i + 1];
    if (next === IAC) {
      out[length++] = IAC;
      i += 1;
    } else if (next !== undefined && next >= WILL && next <= DONT) {
      i += 2; // option negotiation carries one option byte
    } else {
      i += 1;
    }
  }
  return out.subarray(0, length);
}
