import { join } from 'node:path';
import type { LocalControlPlane, SqsBatchEvent } from '@immortal-lambda/local';
import { getInvocationStatus } from '@immortal-lambda/middleware/status';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Deployment, isBucketWideListing } from '../lib/deployment.js';
import { type DeployedPlane, deployedPlane, until } from './helpers/deployed-plane.js';
import { runLambda } from './helpers/lambda-leg.js';

const examples = join(import.meta.dirname, '..');
const queueFunction = join(examples, 'dist', 'queue');
// The handoff comes 1.5 s in; a batch of ten takes about 3 s, so it is handed off mid-way.
const TIMEOUT_MS = 4_000;
const MARGIN_MS = 2_500;
const VISIBILITY_S = 4;
const MAX_RECEIVES = 3;

let deployed: DeployedPlane;
let plane: LocalControlPlane;
let deployment: Deployment;
/** Each batch the mapping delivered and what the function answered, in order. */
const deliveries: { ids: string[]; requestId: string; answer: unknown; at: number }[] = [];

beforeAll(async () => {
  deployed = await deployedPlane(
    {
      name: 'render-queue',
      timeoutSeconds: TIMEOUT_MS / 1000,
      sqsSource: { visibilityTimeoutSeconds: VISIBILITY_S, maxReceiveCount: MAX_RECEIVES },
    },
    queueFunction,
  );
  ({ plane, deployment } = deployed);
});

afterAll(async () => {
  await deployed?.stop();
});

/** The function's event source mapping, as Lambda's: batches of ten, the function's answer deciding what is deleted. */
function consume(source: NonNullable<Deployment['functions'][string]['source']>): void {
  const fn = deployment.functions['render-queue'];
  plane.queues.consume(
    source.queueUrl,
    async (event: SqsBatchEvent) => {
      const leg = await runLambda({
        name: 'render-queue',
        folder: queueFunction,
        event,
        timeoutMs: TIMEOUT_MS,
        environment: {
          ...deployed.env,
          ...fn?.function.environment,
          FARGATE_FALLBACK_MARGIN_MS: String(MARGIN_MS),
        },
      });
      const answer = leg.ok ? leg.result : undefined;
      deliveries.push({
        ids: event.Records.map((r) => r.messageId),
        requestId: leg.id,
        answer,
        at: Date.now(),
      });
      if (!leg.ok) throw new Error(`${leg.error.errorType}: ${leg.error.errorMessage}`);
      return answer as { batchItemFailures?: { itemIdentifier: string }[] };
    },
    { batchSize: 10, maxConcurrency: 2, pollMs: 50 },
  );
}

describe('an SQS batch handed off mid-way is held in its queue until the runner has finished it', () => {
  it('deletes what the runner finished, redrives what it failed, and starts nothing for a duplicate delivery', async () => {
    // Prepare: eight jobs and two the handler cannot parse, sent to the function's queue
    const source = deployment.functions['render-queue']?.source;
    if (!source) throw new Error('the deployment has no source queue');
    plane.queues.create('render-queue-source', {
      visibilityTimeoutMs: source.visibilityTimeoutMs,
      maxReceiveCount: source.maxReceiveCount,
      deadLetterQueue: source.deadLetterQueue,
    });
    const bodies = [
      ...Array.from({ length: 8 }, () => JSON.stringify({ frames: 3, frameMs: 120 })),
      'not json',
      'not json either',
    ];
    for (const body of bodies) plane.queues.send(source.queueUrl, body);
    const ids = plane.queues.messageIds(source.queueUrl);
    const bad = ids.slice(8);

    // Act: the mapping polls; the first batch is handed off
    consume(source);
    const first = await until('the first batch', () => deliveries[0]);
    const task = await until('the runner task', () =>
      plane.tasks().find((candidate) => candidate.startedBy === `immortal-lambda/${first.requestId}`),
    );
    // While the runner works, one message's visibility lapses: SQS delivers it again.
    await until('the runner to render', () =>
      deployed.logs.some((entry) => entry.taskId === task.id && /rendered/.test(entry.line)),
    );
    const duringRun = plane.queues.depth(source.queueUrl);
    plane.queues.expireVisibility(source.queueUrl, ids[0] as string);
    const duplicate = await until('the duplicate delivery', () =>
      deliveries.find((d) => d.ids.includes(ids[0] as string) && d !== first),
    );
    const dlq = plane.queues.url(source.deadLetterQueue);
    await until(
      'the failed messages in the dead-letter queue',
      () => plane.queues.depth(dlq) === bad.length,
      90_000,
    );
    await until('the source queue empty', () => plane.queues.depth(source.queueUrl) === 0);

    // Assess: the handed-off batch was answered as failed, whole
    expect(first.ids).toHaveLength(10);
    expect(first.answer).toEqual({ batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })) });
    expect(duringRun).toBe(10);
    // The duplicate was answered as failed without a task of its own, and without running it here.
    expect(duplicate.answer).toEqual({ batchItemFailures: [{ itemIdentifier: ids[0] }] });
    expect(plane.tasks()).toHaveLength(1);
    // The runner deleted the eight it finished, none before its handler had rendered them all.
    const lastRendered = Math.max(
      ...deployed.logs
        .filter((entry) => entry.taskId === task.id && /rendered/.test(entry.line))
        .map((entry) => entry.at),
    );
    const deleted = plane.queues.history.filter((event) => event.action === 'deleted');
    expect(deleted.map((event) => event.messageId).sort()).toEqual(ids.slice(0, 8).sort());
    expect(deleted.every((event) => event.at >= lastRendered)).toBe(true);
    // The two it failed came back after their visibility timeout, ran in Lambda again, and were redriven.
    expect(plane.queues.messageIds(dlq).sort()).toEqual([...bad].sort());
    const retried = deliveries.filter((d) => d !== first && d !== duplicate);
    expect(retried.length).toBeGreaterThan(0);
    expect(retried.flatMap((d) => d.ids).every((id) => bad.includes(id))).toBe(true);
    const status = await getInvocationStatus(
      { functionName: 'render-queue', requestId: first.requestId },
      { bucket: deployment.bucket },
    );
    expect(status).toMatchObject({
      status: 'succeeded',
      result: { batchItemFailures: bad.map((itemIdentifier) => ({ itemIdentifier })) },
    });
    expect(deployment.refused.filter((call) => !isBucketWideListing(call))).toEqual([]);
  });
});
