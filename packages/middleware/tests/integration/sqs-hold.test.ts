import { ECSClient } from '@aws-sdk/client-ecs';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { LocalControlPlane, type LocalS3, NoLauncher, startS3 } from '@immortal-lambda/local';
import { heldMessageKey, outcomeKey, outcomeRecord, parseHeldMessage } from '@immortal-lambda/protocol';
import { deleteMessages } from '@immortal-lambda/protocol/sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FallbackHandler, HandoffReceipt } from '../../src/types.js';
import { adapters } from '../helpers/adapters.js';
import { lambdaContext, lambdaEnv, memoryLogger, untilAborted } from '../helpers/lambda.js';

const BUCKET = 'held-batches';
const PREFIX = 'immortal-lambda/outcomes/';
const MARGIN = 2_000;
// The handoff comes 100 ms in, with two seconds before its guard for the calls against the plane.
const REMAINING = MARGIN + 100;
const QUEUE_VISIBILITY_MS = 30_000;

let now = Date.now();
const plane = new LocalControlPlane({
  launcher: new NoLauncher(),
  clusters: ['jobs'],
  subnets: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
  now: () => now,
});
let s3: LocalS3;
let ecsClient: ECSClient;
let s3Client: S3Client;
let sqsClient: SQSClient;
let queueUrl: string;
let queueName: string;
let queues = 0;

beforeAll(async () => {
  const endpoint = await plane.start();
  plane.registerTaskDefinition({ family: 'immortal-runner', containerName: 'runner', environment: {} });
  s3 = await startS3({ bucket: BUCKET });
  const local = { region: 'eu-west-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
  ecsClient = new ECSClient({ ...local, endpoint });
  sqsClient = new SQSClient({ ...local, endpoint, useQueueUrlAsEndpoint: false });
  s3Client = new S3Client({
    region: 'eu-west-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
});

afterAll(async () => {
  await plane.stop();
  await s3.stop();
});

beforeEach(() => {
  now = Date.now();
  plane.resetRecords();
  // A queue of its own for each test: nothing one leaves in flight is delivered to the next.
  queueName = `imports-${++queues}`;
  queueUrl = plane.queues.create(queueName, { visibilityTimeoutMs: QUEUE_VISIBILITY_MS });
});

/** Sends `bodies` to the queue and receives them as the event source mapping would hand them over. */
function batch(bodies: string[]) {
  for (const body of bodies) plane.queues.send(queueUrl, body);
  return eventOf(plane.queues.receive(queueUrl, 10));
}

function eventOf(messages: ReturnType<LocalControlPlane['queues']['receive']>, name = queueName) {
  return {
    Records: messages.map((message) => ({
      messageId: message.id,
      receiptHandle: message.receiptHandle,
      body: message.body,
      attributes: { ApproximateReceiveCount: String(message.receives) },
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:eu-west-1:123456789012:${name}`,
    })),
  };
}

/** SQS delivers these messages again (their visibility lapsed), with new receipt handles. */
function redeliver(ids: string[]) {
  for (const id of ids) plane.queues.expireVisibility(queueUrl, id);
  return eventOf(plane.queues.receive(queueUrl, 10).filter((message) => ids.includes(message.id)));
}

async function marker(messageId: string) {
  const object = await s3Client.send(
    new GetObjectCommand({ Bucket: BUCKET, Key: heldMessageKey(PREFIX, 'report-job', messageId) }),
  );
  return parseHeldMessage((await object.Body?.transformToString()) ?? '');
}

describe.each(adapters)('a handed-off SQS batch, through $name', (adapter) => {
  const seen: unknown[][] = [];
  const wrap = (fn: FallbackHandler<unknown, unknown>, options: { holdSqsBatches?: boolean } = {}) =>
    adapter.wrap(
      (event, context, extras) => {
        seen.push((event as { Records: { messageId: string }[] }).Records.map((record) => record.messageId));
        return fn(event, context, extras);
      },
      {
        env: lambdaEnv(),
        marginMs: MARGIN,
        payloadBucket: BUCKET,
        logger: memoryLogger(),
        metrics: false,
        ecsClient,
        s3Client,
        sqsClient,
        ...options,
      },
    );

  beforeEach(() => {
    seen.length = 0;
  });

  it('is answered with every message as a batch item failure, each marked with the invocation and kept invisible', async () => {
    // Prepare
    const event = batch(['a', 'b', 'c']);
    const context = lambdaContext(REMAINING);

    // Act
    const answer = await wrap(untilAborted)(event, context);
    now += QUEUE_VISIBILITY_MS + 1_000;
    const pastQueueTimeout = plane.queues.receive(queueUrl, 10);
    now += 30 * 60 * 1000;
    const pastHold = plane.queues.receive(queueUrl, 10);

    // Assess
    const ids = event.Records.map((record) => record.messageId);
    expect(answer).toEqual({ batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })) });
    const markers = await Promise.all(ids.map(marker));
    expect(markers.map((held) => [held?.requestId, held?.queueUrl])).toEqual(
      ids.map(() => [context.awsRequestId, queueUrl]),
    );
    expect(plane.calls).toContain('SQS.ChangeMessageVisibilityBatch');
    expect(pastQueueTimeout).toEqual([]);
    expect(pastHold.map((message) => message.id).sort()).toEqual([...ids].sort());
  });

  it('answers the receipt, and holds nothing, with holdSqsBatches: false', async () => {
    // Prepare
    const event = batch(['a']);

    // Act
    const answer = (await wrap(untilAborted, { holdSqsBatches: false })(
      event,
      lambdaContext(REMAINING),
    )) as HandoffReceipt;

    // Assess
    expect(answer.status).toBe('handed-off');
    expect(answer.heldMessages).toBeUndefined();
    expect(plane.calls).not.toContain('SQS.ChangeMessageVisibilityBatch');
  });

  it('leaves a redelivered message out while its holder works, passing its new receipt handle on, and starts nothing', async () => {
    // Prepare: the batch handed off, then one of its messages delivered again
    const event = batch(['a', 'b']);
    await wrap(untilAborted)(event, lambdaContext(REMAINING));
    const first = String(event.Records[0]?.messageId);
    const again = redeliver([first]);
    const tasksBefore = plane.tasks().length;

    // Act
    const answer = await wrap(async () => ({ batchItemFailures: [] }))(again, lambdaContext(REMAINING));

    // Assess
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: first }] });
    expect(seen).toEqual([[first, String(event.Records[1]?.messageId)]]);
    expect(plane.tasks()).toHaveLength(tasksBefore);
    expect((await marker(first))?.receiptHandle).toBe(again.Records[0]?.receiptHandle);
  });

  it('lets Lambda delete a redelivered message its holder finished, and runs again one its holder failed', async () => {
    // Prepare: the batch handed off; its runner succeeded and failed the second message
    const event = batch(['done', 'failed']);
    const holder = lambdaContext(REMAINING);
    await wrap(untilAborted)(event, holder);
    const [done, failed] = event.Records.map((record) => record.messageId) as [string, string];
    const record = outcomeRecord({
      functionName: 'report-job',
      requestId: holder.awsRequestId,
      status: 'succeeded',
      attempt: 1,
      writer: 'runner',
      result: { batchItemFailures: [{ itemIdentifier: failed }] },
      updatedAt: new Date(now).toISOString(),
    });
    await s3Client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: outcomeKey(PREFIX, 'report-job', holder.awsRequestId, 'attempt-1'),
        Body: JSON.stringify(record),
      }),
    );
    seen.length = 0;

    // Act
    const answer = await wrap(async () => ({ batchItemFailures: [] }))(
      redeliver([done, failed]),
      lambdaContext(REMAINING),
    );

    // Assess
    expect(seen).toEqual([[failed]]);
    expect(answer).toEqual({ batchItemFailures: [] });
  });

  it('costs nothing more for a first delivery: no marker is read', async () => {
    // Prepare
    const event = batch(['quick']);

    // Act
    const answer = await wrap(async () => ({ batchItemFailures: [] }))(event, lambdaContext(60_000));

    // Assess
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(plane.calls).toEqual([]);
  });

  it.each([
    { hold: true, name: 'holds a FIFO group’s next message back until the runner has deleted the held ones' },
    { hold: false, name: 'without holding, delivers a FIFO group’s next message while the runner works' },
  ])('$name', async ({ hold }) => {
    // Prepare: two messages of one group and one of another, handed off
    const name = `orders-${++queues}.fifo`;
    const fifo = plane.queues.create(name, { visibilityTimeoutMs: QUEUE_VISIBILITY_MS });
    for (const [body, groupId] of [
      ['a1', 'g1'],
      ['a2', 'g1'],
      ['b1', 'g2'],
    ] as const)
      plane.queues.send(fifo, body, { groupId });
    const event = eventOf(plane.queues.receive(fifo, 10), name);
    await wrap(untilAborted, { holdSqsBatches: hold })(event, lambdaContext(REMAINING));
    const held = event.Records.map((record) => ({ ...record, queueUrl: fifo }));
    // Without holding, Lambda deletes the batch when the receipt returns.
    if (!hold) for (const record of held) plane.queues.deleteReceived(fifo, record.receiptHandle);
    plane.queues.send(fifo, 'a3', { groupId: 'g1' });

    // Act: the mapping polls while the runner works, then after the runner deleted what it finished
    const whileRunning = plane.queues.receive(fifo, 10).map((message) => message.body);
    if (hold) await deleteMessages(sqsClient, held);
    const afterRunner = plane.queues.receive(fifo, 10).map((message) => message.body);

    // Assess
    expect(event.Records.map((record) => record.body)).toEqual(['a1', 'a2', 'b1']);
    expect(whileRunning).toEqual(hold ? [] : ['a3']);
    expect(afterRunner).toEqual(hold ? ['a3'] : []);
  });
});
