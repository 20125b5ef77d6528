import { join } from 'node:path';
import type { KinesisRecord } from '@immortal-lambda/local';
import { getInvocationStatus } from '@immortal-lambda/middleware/status';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBucketWideListing } from '../lib/deployment.js';
import { type DeployedPlane, deployedPlane, until } from './helpers/deployed-plane.js';
import { runLambda } from './helpers/lambda-leg.js';

const examples = join(import.meta.dirname, '..');
const ingest = join(examples, 'dist', 'ingest');
// The handoff comes 1.5 s in; the first batch takes about 3 s, so it is handed off mid-way.
const TIMEOUT_MS = 4_000;
const MARGIN_MS = 2_500;

let deployed: DeployedPlane;

beforeAll(async () => {
  deployed = await deployedPlane(
    { name: 'ingest-job', timeoutSeconds: TIMEOUT_MS / 1000, orderedStream: true },
    ingest,
  );
});

afterAll(async () => {
  await deployed?.stop();
});

describe('a stream batch handed off with ordered, its runner real', () => {
  it('does not let the shard’s next batch run before the runner’s outcome is recorded', async () => {
    // Prepare: a batch of three long jobs, then a batch of three short ones, on one shard
    const { plane, deployment, env, logs } = deployed;
    const fn = deployment.functions['ingest-job'];
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
            ...fn?.function.environment,
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
