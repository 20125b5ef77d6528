import { join } from 'node:path';
import {
  type KinesisRecord,
  LocalControlPlane,
  type LocalS3,
  type LocalTask,
  startS3,
} from '@immortal-lambda/local';
import { getInvocationStatus } from '@immortal-lambda/middleware/status';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Deployment,
  deployExample,
  isBucketWideListing,
  registerTaskDefinitions,
} from '../lib/deployment.js';
import { runLambda } from './helpers/lambda-leg.js';

const examples = join(import.meta.dirname, '..');
const ingest = join(examples, 'dist', 'ingest');
// The handoff comes 1.5 s in; the first batch takes about 3 s, so it is handed off mid-way.
const TIMEOUT_MS = 4_000;
const MARGIN_MS = 2_500;

let s3: LocalS3;
let plane: LocalControlPlane;
let deployment: Deployment;
let env: Record<string, string>;
/** Each runner log line, with when the test saw it. */
const logs: { taskId: string; line: string; at: number }[] = [];

beforeAll(async () => {
  deployment = deployExample({
    functions: [{ name: 'ingest-job', timeoutSeconds: TIMEOUT_MS / 1000, orderedStream: true }],
  });
  s3 = await startS3({ bucket: deployment.bucket, authorize: deployment.authorize });
  plane = new LocalControlPlane({
    s3Endpoint: s3.endpoint,
    authorize: deployment.authorize,
    clusters: [deployment.cluster],
    subnets: deployment.subnets,
  });
  registerTaskDefinitions(plane, deployment);
  plane.registerFunction({
    name: 'ingest-job',
    folder: ingest,
    handler: 'index.handler',
    environment: deployment.functions['ingest-job']?.variables ?? {},
  });
  plane.on('task-log', ({ task, line }: { task: LocalTask; line: string }) =>
    logs.push({ taskId: task.id, line, at: Date.now() }),
  );
  await plane.start();
  env = {
    ...plane.environment({ s3Endpoint: s3.endpoint, bucket: s3.bucket }),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  Object.assign(process.env, env);
});

afterAll(async () => {
  await plane?.stop();
  await s3?.stop();
});

async function until(what: string, probe: () => boolean, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  while (!probe()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a stream batch handed off with ordered, its runner real', () => {
  it('does not let the shard’s next batch run before the runner’s outcome is recorded', async () => {
    // Prepare: a batch of three long jobs, then a batch of three short ones, on one shard
    const deployed = deployment.functions['ingest-job'];
    const arn = plane.streams.create('ingest-job-stream');
    for (const steps of [10, 10, 10, 1, 1, 1]) plane.streams.put(arn, { steps, stepMs: 100 });
    const invocations: { first: string; requestId: string; at: number; answer: unknown }[] = [];

    // Act: the mapping reads the shard; its retries come every 300 ms
    plane.streams.consume(
      arn,
      async (event: { Records: KinesisRecord[] }) => {
        const leg = await runLambda({
          name: 'ingest-job',
          folder: ingest,
          event,
          timeoutMs: TIMEOUT_MS,
          environment: {
            ...env,
            ...deployed?.function.environment,
            FARGATE_FALLBACK_MARGIN_MS: String(MARGIN_MS),
          },
        });
        if (!leg.ok) throw new Error(`${leg.error.errorType}: ${leg.error.errorMessage}`);
        const first = String(event.Records[0]?.kinesis.sequenceNumber);
        invocations.push({ first, requestId: leg.id, at: Date.now(), answer: leg.result });
        return leg.result as { batchItemFailures?: { itemIdentifier: string }[] };
      },
      { batchSize: 3, retryDelayMs: 300 },
    );
    await until('the shard read to its end', () => plane.streams.pending(arn) === 0, 90_000);

    // Assess: one task, for the first batch; its outcome recorded before the second batch ran
    const handedOff = invocations[0];
    const tasks = plane.tasks();
    expect(tasks.map((task) => task.startedBy)).toEqual([`immortal-lambda/${handedOff?.requestId}`]);
    const status = await getInvocationStatus(
      { functionName: 'ingest-job', requestId: String(handedOff?.requestId) },
      { bucket: deployment.bucket },
    );
    expect(status).toMatchObject({ status: 'succeeded' });
    const ingested = logs.filter((entry) => entry.taskId === tasks[0]?.id && /ingested/.test(entry.line));
    const lastIngested = Math.max(...ingested.map((entry) => entry.at));
    const second = invocations.find((invocation) => invocation.first !== handedOff?.first);
    expect(second?.at).toBeGreaterThan(lastIngested);
    // Every invocation of the first batch before the release answered it failed from its first record.
    const retries = invocations.filter((invocation) => invocation.first === handedOff?.first);
    expect(retries.length).toBeGreaterThan(1);
    expect(retries.slice(0, -1).map((invocation) => invocation.answer)).toEqual(
      retries.slice(0, -1).map(() => ({ batchItemFailures: [{ itemIdentifier: handedOff?.first }] })),
    );
    expect(retries.at(-1)?.answer).toEqual({ batchItemFailures: [] });
    expect(deployment.refused.filter((call) => !isBucketWideListing(call))).toEqual([]);
  });
});
