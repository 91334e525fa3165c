import t from 'tap';
import { parseConfig, ConfigError, envName } from '../../src/config.ts';

t.test('defaults', async (t) => {
  const c = parseConfig([], {});
  t.equal(c.listen[0]?.host, '127.0.0.1');
  t.equal(c.listen[0]?.port, 2121);
  t.equal(c.pasvLow, 10100);
  t.equal(c.pasvHigh, 12000);
  t.equal(c.tlsSessionReuse, 'required');
  t.equal(c.allowClearData, false);
  t.equal(c.s3Endpoint, undefined);
  t.ok(Object.isFrozen(c));
});

t.test('flags override environment', async (t) => {
  const env = { S3FTPD_LISTEN: '0.0.0.0:21', S3FTPD_S3_PATH_STYLE: 'true', S3FTPD_PASV_PORTS: '2000-2010' };
  const c = parseConfig(['--listen', '[::1]:2100', '--allow-clear-data', '--tls-session-reuse=optional'], env);
  t.equal(c.listen[0]?.host, '::1');
  t.equal(c.listen[0]?.port, 2100);
  t.equal(c.s3PathStyle, true);
  t.equal(c.allowClearData, true);
  t.equal(c.tlsSessionReuse, 'optional');
  t.equal(c.pasvLow, 2000);
  t.equal(envName('pasv-address'), 'S3FTPD_PASV_ADDRESS');
});

t.test('several listen addresses, IPv6 among them', async (t) => {
  const c = parseConfig(['--listen', '127.0.0.1:21, [::]:2121'], {});
  t.same(c.listen, [
    { host: '127.0.0.1', port: 21 },
    { host: '::', port: 2121 },
  ]);
  t.equal(c.listen[0]?.port, 21, 'the first is the main one');
  t.throws(() => parseConfig(['--listen', '127.0.0.1:21,nope'], {}), /--listen/);
});

t.test('bad settings name themselves', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--listen', 'nope'], /--listen/],
    [['--pasv-ports', '12000-10000'], /--pasv-ports/],
    [['--pasv-ports', '1-99999'], /--pasv-ports/],
    [['--tls-session-reuse', 'maybe'], /--tls-session-reuse/],
    [['--tls-cert', 'a.pem'], /--tls-key/],
    [['--s3-endpoint', 'ftp://x'], /--s3-endpoint/],
    [['--workers', '0'], /--workers/],
    [['--bogus'], /unknown argument/],
    [['--listen'], /needs a value/],
  ];
  for (const [argv, message] of cases) t.throws(() => parseConfig(argv, {}), message, argv.join(' '));
  t.throws(() => parseConfig(['--bogus'], {}), ConfigError);
});

t.test('config file: precedence flag > env > file > default, and clear errors', async (t) => {
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/s3ftpd-config-`);
  const file = `${dir}/s3ftpd.yaml`;
  writeFileSync(file, 'listen: 0.0.0.0:2100\nworkers: 3\npasv-ports: 20000-20010\ns3-path-style: true\nallow-list: [10.0.0.1, 10.0.0.2]\n');
  const fromFile = parseConfig(['--config', file], {});
  t.equal(fromFile.listen[0]?.port, 2100);
  t.equal(fromFile.workers, 3);
  t.equal(fromFile.pasvLow, 20000);
  t.equal(fromFile.s3PathStyle, true);
  t.same(fromFile.allowList, ['10.0.0.1', '10.0.0.2']);
  t.equal(fromFile.queueSize, 2, 'default where neither sets it');
  const envOverFile = parseConfig(['--config', file], { S3FTPD_WORKERS: '4' });
  t.equal(envOverFile.workers, 4);
  const flagOverEnv = parseConfig(['--config', file, '--workers', '5'], { S3FTPD_WORKERS: '4' });
  t.equal(flagOverEnv.workers, 5);
  t.equal(parseConfig([], { S3FTPD_CONFIG: file }).listen[0]?.port, 2100, 'file named by the environment');

  writeFileSync(file, 'workers: lots\n');
  t.throws(() => parseConfig(['--config', file], {}), /--workers \(from the config file\)/);
  writeFileSync(file, 'bogus: 1\n');
  t.throws(() => parseConfig(['--config', file], {}), /unknown setting bogus/);
  writeFileSync(file, ': : :\n  - [\n');
  t.throws(() => parseConfig(['--config', file], {}), /--config/);
  t.throws(() => parseConfig(['--config', `${dir}/missing.yaml`], {}), /--config/);
  t.throws(() => parseConfig([], { S3FTPD_PART_SIZE: '1' }), /--part-size \(from S3FTPD_PART_SIZE\)/);
});

t.test('sizes take binary units; the upload buffer budget must hold one part', async (t) => {
  const cases: Array<[text: string, bytes: number]> = [
    ['8388608', 8 * 1024 ** 2],
    ['8MiB', 8 * 1024 ** 2],
    ['8m', 8 * 1024 ** 2],
    ['6144KiB', 6 * 1024 ** 2],
    ['256MiB', 256 * 1024 ** 2],
    [' 16 MiB ', 16 * 1024 ** 2],
  ];
  for (const [text, bytes] of cases) t.equal(parseConfig(['--part-size', text], {}).partSize, bytes, `--part-size ${text}`);
  t.equal(parseConfig([], {}).uploadBufferBudget, 512 * 1024 ** 2, 'default budget 512 MiB');
  t.equal(parseConfig(['--upload-buffer-budget', '2GiB'], {}).uploadBufferBudget, 2 * 1024 ** 3);
  t.throws(() => parseConfig(['--part-size', '8 bananas'], {}), /--part-size: expected a size like/);
  t.throws(() => parseConfig(['--part-size', '4MiB'], {}), /--part-size: expected at least 5242880 bytes/);
  t.throws(
    () => parseConfig(['--part-size', '64MiB'], { S3FTPD_UPLOAD_BUFFER_BUDGET: '32MiB' }),
    /--upload-buffer-budget \(from S3FTPD_UPLOAD_BUFFER_BUDGET\): must be at least --part-size/,
  );
});
