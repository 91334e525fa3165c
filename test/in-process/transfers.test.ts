// Handler tests on the in-process gateway (test/helpers/in-process.ts): real FTPS, no child process.
import t from 'tap';
import { RawFtp } from '../helpers/raw-ftp.ts';
import { startInProcess } from '../helpers/in-process.ts';

t.test('upload, list and download through the in-process gateway', async (t) => {
  const gw = await startInProcess();
  t.teardown(() => gw.close());
  await gw.store.createBucket('box');
  const client = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
  t.teardown(() => client.quit());
  const body = Buffer.from('hello in-process\n'.repeat(1000));
  const stored = await client.transfer('STOR /box/a.txt', { upload: body });
  t.equal(stored.final?.code, 226, 'STOR completes');
  t.same((await gw.store.stat('box', 'a.txt'))?.size, body.length, 'the store holds every byte');
  t.match((await client.list('NLST /box')).join('\n'), /a\.txt/, 'NLST shows it');
  const fetched = await client.transfer('RETR /box/a.txt');
  t.equal(fetched.final?.code, 226);
  t.ok(fetched.data.equals(body), 'RETR returns the same bytes');
});

t.test('a failure while recording a finished transfer still ends it with a reply and frees the session', async (t) => {
  let failures = 0;
  const gw = await startInProcess({
    transferLog: () => {
      failures += 1;
      throw new Error('transfer log broken');
    },
  });
  t.teardown(() => gw.close());
  await gw.store.createBucket('box');
  await gw.store.createMarker('box', 'dir/');
  const client = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
  t.teardown(() => client.quit());
  const first = await client.transfer('STOR /box/one.txt', { upload: Buffer.from('one') });
  t.equal(first.final?.code, 226, 'the client still gets the final reply');
  t.equal(failures, 1, 'the transfer log was called and threw');
  const second = await client.transfer('STOR /box/two.txt', { upload: Buffer.from('two') });
  t.equal(second.first.code, 150, 'the next transfer is not refused as "in progress"');
  t.equal(second.final?.code, 226);
  t.equal((await client.send('NOOP')).code, 200, 'the session goes on');
});

t.test('commands pipelined after a refused AUTH are answered at once', async (t) => {
  const gw = await startInProcess();
  t.teardown(() => gw.close());
  const { client } = await RawFtp.connect(gw.host, gw.port);
  t.teardown(() => client.destroy());
  // AUTH without a mechanism is refused (501); FEAT and NOOP arrive in the same packet.
  client.writeRaw('AUTH\r\nFEAT\r\nNOOP\r\n');
  t.equal((await client.read(5000)).code, 501, 'AUTH refused');
  const feat = await client.read(5000);
  t.equal(feat.code, 211, 'FEAT answered without waiting for more bytes');
  t.match(feat.text, /TVFS/, 'TVFS is still announced');
  t.equal((await client.read(5000)).code, 200, 'NOOP answered too');
});

t.test('the same holds for AUTH refused on a TLS connection', async (t) => {
  const gw = await startInProcess();
  t.teardown(() => gw.close());
  const client = await RawFtp.login(gw.host, gw.port, gw.user, gw.password);
  t.teardown(() => client.quit());
  client.writeRaw('AUTH TLS\r\nNOOP\r\n');
  t.equal((await client.read(5000)).code, 503, 'TLS is already active');
  t.equal((await client.read(5000)).code, 200, 'NOOP answered at once');
});
