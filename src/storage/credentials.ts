// The embedded store's single access key: created on first start, only a hash of the secret kept.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes, randomInt, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { STATE_DIR } from './local.ts';

const scrypt = promisify(scryptCallback) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;
const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

interface StoredCredentials {
  readonly accessKeyId: string;
  readonly salt: string;
  readonly secretHash: string;
}

export interface LocalCredentials {
  readonly accessKeyId: string;
  /** Present only when the key was created by this call; it is never stored. */
  readonly newSecret: string | undefined;
  verify(accessKeyId: string, secret: string): Promise<boolean>;
}

// Letters and digits only, like an S3 secret's length: a secret starting with '-' reads as an
// option to command-line clients (`rclone obscure`, `lftp -u`), and '/' or '+' need escaping in URLs.
const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const SECRET_LENGTH = 40;

function randomSecret(): string {
  return Array.from({ length: SECRET_LENGTH }, () => SECRET_ALPHABET[randomInt(SECRET_ALPHABET.length)]).join('');
}

function randomAccessKey(): string {
  const bytes = randomBytes(20);
  return Array.from(bytes, (b) => KEY_ALPHABET[b % KEY_ALPHABET.length]).join('');
}

export async function loadOrCreateCredentials(dataDir: string): Promise<LocalCredentials> {
  const file = path.join(dataDir, STATE_DIR, 'credentials.json');
  let stored: StoredCredentials;
  let newSecret: string | undefined;
  try {
    stored = JSON.parse(await fs.readFile(file, 'utf8')) as StoredCredentials;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    newSecret = randomSecret();
    const salt = randomBytes(16);
    stored = {
      accessKeyId: randomAccessKey(),
      salt: salt.toString('hex'),
      secretHash: (await scrypt(newSecret, salt, 32)).toString('hex'),
    };
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await fs.writeFile(file, JSON.stringify(stored, null, 2), { mode: 0o600, flag: 'wx' });
  }
  const expected = Buffer.from(stored.secretHash, 'hex');
  const salt = Buffer.from(stored.salt, 'hex');
  return {
    accessKeyId: stored.accessKeyId,
    newSecret,
    async verify(accessKeyId: string, secret: string): Promise<boolean> {
      const actual = await scrypt(secret, salt, expected.length);
      // Hash even for a wrong key id so both failures take the same time.
      return timingSafeEqual(actual, expected) && accessKeyId === stored.accessKeyId;
    },
  };
}
