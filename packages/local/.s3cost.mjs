// experiment (not committed): CPU of the S3 process per PutObject, through the front vs straight to s3rver
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:http';
import S3rver from 's3rver';
import { startS3 } from './dist/index.js';
import { S3Client, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';

const N = Number(process.env.N ?? 3000);
if (process.argv[2] === 'load') {
  const endpoint = process.argv[3];
  const agent = new Agent({ keepAlive: true, maxSockets: 50 });
  const s3 = new S3Client({ endpoint, region: 'eu-west-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestHandler: { httpAgent: agent } });
  const body = JSON.stringify({ status: 'queued', x: 'y'.repeat(500) });
  const t0 = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 50 }, async () => { while (next < N) { const k = next++; await s3.send(new PutObjectCommand({ Bucket: 'b', Key: `immortal-lambda/outcomes/fn/req-${process.argv[4]}-${k}/handed-off.json`, Body: body })); await s3.send(new GetObjectCommand({ Bucket: 'b', Key: `immortal-lambda/outcomes/fn/req-${process.argv[4]}-${k}/handed-off.json` })).then((r) => r.Body.transformToString()); } }));
  process.send({ ms: Date.now() - t0 });
  process.exit(0);
}
const run = async (endpoint, tag) => {
  const before = process.cpuUsage();
  const child = fork(new URL(import.meta.url).pathname, ['load', endpoint, tag]);
  const { ms } = await new Promise((r) => child.once('message', r));
  const cpu = process.cpuUsage(before);
  console.log(tag, `${N} put+get in ${ms} ms, S3 process CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms = ${((cpu.user + cpu.system) / 1000 / (2 * N)).toFixed(2)} ms per call`);
};
const direct = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: mkdtempSync(join(tmpdir(), 's3c-')), allowMismatchedSignatures: true, configureBuckets: [{ name: 'b', configs: [] }] });
const { port } = await direct.run();
await run(`http://127.0.0.1:${port}`, 'direct-1');
if (process.env.ONLY_DIRECT) { await direct.close(); process.exit(0); }
const front = await startS3({ bucket: 'b' });
await run(front.endpoint, 'front-1');
await run(`http://127.0.0.1:${port}`, 'direct-2');
await run(front.endpoint, 'front-2');
await direct.close(); await front.stop();
