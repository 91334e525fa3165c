// The embedded store's generated login: a secret of 40 letters and digits (never starting with
// '-', which command-line clients would read as an option), verified against its scrypt hash.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadOrCreateCredentials } from '../../src/storage/credentials.ts';

t.test('generated secrets are 40 letters and digits, and verify', async (t) => {
  for (let i = 0; i < 5; i += 1) {
    const dir = await mkdtemp(path.join(tmpdir(), 's3ftpd-cred-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const created = await loadOrCreateCredentials(dir);
    const secret = created.newSecret ?? '';
    t.match(secret, /^[A-Za-z0-9]{40}$/, `secret ${i + 1} is 40 letters and digits`);
    const again = await loadOrCreateCredentials(dir);
    t.equal(again.newSecret, undefined, 'a second start shows no secret');
    t.equal(await again.verify(again.accessKeyId, secret), true, 'the shown secret logs in');
    t.equal(await again.verify(again.accessKeyId, `${secret}x`), false, 'another does not');
  }
});
