import t from 'tap';
import { parseConfig, ConfigError, envName } from '../../src/config.ts';

t.test('defaults', async (t) => {
  const c = parseConfig([], {});
  t.equal(c.listenHost, '127.0.0.1');
  t.equal(c.listenPort, 2121);
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
  t.equal(c.listenHost, '::1');
  t.equal(c.listenPort, 2100);
  t.equal(c.s3PathStyle, true);
  t.equal(c.allowClearData, true);
  t.equal(c.tlsSessionReuse, 'optional');
  t.equal(c.pasvLow, 2000);
  t.equal(envName('pasv-address'), 'S3FTPD_PASV_ADDRESS');
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
