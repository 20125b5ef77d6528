import { ECSClient } from '@aws-sdk/client-ecs';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  type KinesisRecord,
  LocalControlPlane,
  type LocalS3,
  NoLauncher,
  startS3,
} from '@immortal-lambda/local';
import { outcomeKey, outcomeRecord } from '@immortal-lambda/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adapters } from '../helpers/adapters.js';
import { lambdaContext, lambdaEnv, memoryLogger } from '../helpers/lambda.js';

const BUCKET = 'ordered-streams';
const PREFIX = 'immortal-lambda/outcomes/';
const MARGIN = 2_000;
// The handoff comes 100 ms in; a retry has no time to wait for the runner, so it answers at once.
const REMAINING = MARGIN + 100;

const plane = new LocalControlPlane({
  launcher: new NoLauncher(),
  clusters: ['jobs'],
  subnets: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
});
let s3: LocalS3;
let ecsClient: ECSClient;
let s3Client: S3Client;
let streams = 0;

beforeAll(async () => {
  const endpoint = await plane.start();
  plane.registerTaskDefinition({ family: 'immortal-runner', containerName: 'runner', environment: {} });
  s3 = await startS3({ bucket: BUCKET });
  ecsClient = new ECSClient({
    region: 'eu-west-1',
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  s3Client = new S3Client({
    region: 'eu-west-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
});

afterEach(async () => {
  await plane.streams.stop();
});

afterAll(async () => {
  await plane.stop();
  await s3.stop();
});

const numberOf = (record: KinesisRecord) =>
  (JSON.parse(Buffer.from(record.kinesis.data, 'base64').toString()) as { n: number }).n;

async function until(what: string, probe: () => boolean, timeoutMs = 15_000): Promise<void> {
  const started = Date.now();
  while (!probe()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Writes what the handed-off invocation's runner would: its first attempt succeeded with `result`. */
async function runnerSucceeded(requestId: string, result: unknown): Promise<void> {
  const record = outcomeRecord({
    functionName: 'report-job',
    requestId,
    status: 'succeeded',
    attempt: 1,
    writer: 'runner',
    result,
    updatedAt: new Date().toISOString(),
  });
  await s3Client.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: outcomeKey(PREFIX, 'report-job', requestId, 'attempt-1'),
      Body: JSON.stringify(record),
    }),
  );
}

describe.each(adapters)('a handed-off stream batch, through $name', (adapter) => {
  /**
   * The stream's mapping into the wrapped handler: a batch starting with record 1 outlasts the
   * function and is handed off (its task never runs here: the test writes its runner's outcome),
   * any other finishes in Lambda. Answers what ran in Lambda, each answer, and each request id.
   */
  function mapping(arn: string, ordered: boolean) {
    const ranInLambda: number[][] = [];
    const answers: string[] = [];
    const contexts: string[] = [];
    const wrapped = adapter.wrap(
      (event, _context, { signal }) => {
        const numbers = (event as { Records: KinesisRecord[] }).Records.map(numberOf);
        ranInLambda.push(numbers);
        if (numbers[0] !== 1) return Promise.resolve({ batchItemFailures: [] });
        return new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason)),
        );
      },
      {
        env: lambdaEnv(),
        marginMs: MARGIN,
        payloadBucket: BUCKET,
        ordered,
        logger: memoryLogger(),
        metrics: false,
        ecsClient,
        s3Client,
      },
    );
    plane.streams.consume(
      arn,
      async (event) => {
        const context = lambdaContext(REMAINING);
        contexts.push(context.awsRequestId);
        const answer = (await wrapped(event, context)) as {
          batchItemFailures?: { itemIdentifier: string }[];
        };
        answers.push(JSON.stringify(answer));
        return answer;
      },
      { batchSize: 3, retryDelayMs: 100, pollMs: 10 },
    );
    return { ranInLambda, answers, contexts };
  }

  /**
   * Two batches of three on one shard; the first outlasts the function and is handed off (its
   * task never runs here: the test writes its runner's outcome). Answers what the handler ran in
   * Lambda, each delivery, and when the runner's outcome was recorded.
   */
  async function run(ordered: boolean) {
    const arn = plane.streams.create(`ingest-${++streams}`);
    for (const n of [1, 2, 3, 4, 5, 6]) plane.streams.put(arn, { n });
    const { ranInLambda, contexts } = mapping(arn, ordered);
    const delivered = () =>
      plane.streams.history.filter((e) => e.streamArn === arn && e.action === 'delivered');
    await until('the handoff', () =>
      plane.tasks().some((task) => task.startedBy === `immortal-lambda/${contexts[0]}`),
    );
    // The runner works a while; then its outcome is recorded.
    await until(
      'three deliveries, or the shard read',
      () => delivered().length >= 3 || plane.streams.pending(arn) === 0,
    );
    const beforeOutcome = delivered().map((e) => e.first);
    const recordedAt = Date.now();
    await runnerSucceeded(String(contexts[0]), { batchItemFailures: [] });
    await until('the shard read to its end', () => plane.streams.pending(arn) === 0);
    return {
      arn,
      ranInLambda,
      beforeOutcome,
      recordedAt,
      delivered: delivered(),
      tasks: plane.tasks().length,
    };
  }

  it('with ordered: retries the batch, not the next, until the runner’s outcome is recorded, starting nothing more', async () => {
    // Prepare
    const tasksBefore = plane.tasks().length;

    // Act
    const { ranInLambda, beforeOutcome, recordedAt, delivered, tasks } = await run(true);

    // Assess: every delivery before the outcome was the held batch; the next came after it
    expect(new Set(beforeOutcome).size).toBe(1);
    const next = delivered.find((event) => event.first !== beforeOutcome[0]);
    expect(next?.at).toBeGreaterThanOrEqual(recordedAt);
    expect(ranInLambda).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(tasks - tasksBefore).toBe(1);
  });

  it('without ordered: the shard moves on at the handoff, and the next batch runs while the runner works', async () => {
    // Act
    const { ranInLambda, beforeOutcome } = await run(false);

    // Assess
    expect(new Set(beforeOutcome).size).toBeGreaterThan(1);
    expect(ranInLambda.slice(0, 2)).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
  });

  it.each([
    { runnerFailed: true, name: 'answers the runner’s own failures, so the retry starts from them' },
    { runnerFailed: false, name: 'runs here only the record a longer retry brought after the held ones' },
  ])('with ordered, once the runner finished: $name', async ({ runnerFailed }) => {
    // Prepare: a first batch of two, handed off; a third record arrives while the runner works
    const arn = plane.streams.create(`ingest-${++streams}`);
    const sequence = [1, 2].map((n) => plane.streams.put(arn, { n }));
    const { ranInLambda, answers, contexts } = mapping(arn, true);
    await until('the handoff', () =>
      plane.tasks().some((task) => task.startedBy === `immortal-lambda/${contexts[0]}`),
    );
    plane.streams.put(arn, { n: 3 });
    await until('a retry', () => answers.length >= 2);
    const failures = runnerFailed ? [{ itemIdentifier: String(sequence[1]) }] : [];

    // Act: the runner's outcome is recorded
    await runnerSucceeded(String(contexts[0]), { batchItemFailures: failures });
    await until('the shard read to its end', () => plane.streams.pending(arn) === 0);

    // Assess
    expect(ranInLambda[0]).toEqual([1, 2]);
    if (runnerFailed) {
      expect(answers).toContain(JSON.stringify({ batchItemFailures: failures }));
      expect(ranInLambda.slice(1)).toEqual([[2, 3]]);
    } else {
      expect(ranInLambda.slice(1)).toEqual([[3]]);
    }
  });
});
