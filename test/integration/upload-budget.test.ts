// --upload-buffer-budget on a real S3: many concurrent multipart uploads share a small budget of
// part buffers. Every upload completes byte-equal, the part buffers never exceed the budget while
// they run (sampled from /metrics), and they are all given back afterwards, also after an upload
// whose data connection broke off.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { backends } from '../helpers/gateway.ts';
import { metricsAddress, metricSum } from '../helpers/metrics.ts';
import { eventually, gatewayFor, newBucket, openTransfer, session, writeAll } from '../helpers/ftp-steps.ts';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const BUDGET = 12 * MiB;
const UPLOADS = 6;

if (backends().includes('s3')) {
  t.test('uploads wait for part buffers instead of exceeding --upload-buffer-budget (s3)', async (t) => {
    const gw = await gatewayFor(t, 's3', {
      extraArgs: ['--workers', '2', '--part-size', '5MiB', '--queue-size', '2', '--upload-buffer-budget', '12MiB', '--metrics', '127.0.0.1:0'],
    });
    const url = await metricsAddress(gw);
    const bufferBytes = async (): Promise<number> => metricSum(await (await fetch(`${url}/metrics`)).text(), 's3ftpd_upload_buffer_bytes') ?? -1;
    const name = await newBucket(t, gw, 'budget');

    let sampling = true;
    let peak = 0;
    let samples = 0;
    const sampler = (async (): Promise<void> => {
      while (sampling && samples < 5000) {
        peak = Math.max(peak, await bufferBytes());
        samples += 1;
        await sleep(20);
      }
    })();

    // One upload breaks off after its first 7 MiB: it must fail and give its buffers back.
    const broken = await session(t, gw);
    const cut = await openTransfer(broken, `STOR /${name}/reset.bin`);
    t.equal(cut.first.code, 150);
    await writeAll(cut.data, randomBytes(7 * MiB));
    // Closed without a TLS close_notify: the gateway must treat it as broken.
    cut.data.destroy();
    const cutReply = await broken.read(30_000);
    t.match(String(cutReply.code), /^4(26|51)$/, `the broken upload fails (${cutReply.code} ${cutReply.text})`);

    const bodies = Array.from({ length: UPLOADS }, (_, i) => randomBytes(3 * PART + 1000 * (i + 1)));
    const results = await Promise.all(
      bodies.map(async (body, i) => {
        const ftp = await session(t, gw);
        const result = await ftp.transfer(`STOR /${name}/u${i}.bin`, { upload: body });
        return result.final?.code ?? result.first.code;
      }),
    );
    sampling = false;
    await sampler;
    t.same(results, bodies.map(() => 226), `${UPLOADS} concurrent 15 MiB uploads all 226`);
    for (const [i, body] of bodies.entries()) {
      const stored = await gw.probe.get(name, `u${i}.bin`);
      t.ok(stored?.equals(body), `u${i}.bin stored whole (${stored?.length ?? 'missing'} of ${body.length} bytes)`);
    }
    t.equal(await gw.probe.get(name, 'reset.bin'), undefined, 'nothing stored for the broken upload');
    // Its whole 5 MiB part stays as a resumable upload (SPEC §7), recorded, not leaked: DELE removes it.
    t.equal(await gw.probe.openUploads(name), 1, 'only the broken upload is left open: it is resumable');
    t.same(await gw.probe.keys(name, '.s3ftpd-resume/'), ['.s3ftpd-resume/reset.bin'], 'and recorded as resumable');
    t.equal((await broken.send(`SIZE /${name}/reset.bin`)).text, `213 ${PART}`, 'SIZE: its one whole part');
    t.equal((await broken.send(`DELE /${name}/reset.bin`)).code, 250, 'DELE removes it');
    t.ok(await eventually(async () => (await gw.probe.openUploads(name)) === 0), 'then no multipart upload is left open');
    t.ok(samples >= 10, `part buffers sampled ${samples} times`);
    t.ok(peak > 0, `part buffers were in use (peak ${peak / MiB} MiB)`);
    t.ok(peak <= BUDGET, `peak part-buffer bytes ${peak / MiB} MiB within the 12 MiB budget`);
    // Idle buffers are given back after 5 s.
    t.ok(await eventually(async () => (await bufferBytes()) === 0, 10_000), 'every part buffer given back when idle');
  });
}
