import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  type OutcomeRecord,
  outcomeKey,
  parseOutcome,
  parseQueuedLaunch,
  type QueuedLaunch,
} from '@immortal-lambda/protocol';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { systemClock } from '../clock.js';
import type { ResolvedConfig } from '../config.js';
import { describeError, isolatedLogger, jsonLogger } from '../logger.js';
import { readObjectText, readOutcomes, writeOutcome } from '../outcome-store.js';
import { abortAfter } from '../retry.js';
import { startTask } from '../run-task/start-task.js';
import { BOUNDED_CLIENT, loadEcs, loadS3 } from '../sdk.js';
import type { Clock, FallbackLogger } from '../types.js';

/**
 * Options of {@link launchQueued}: clients and side effects, injectable for tests.
 *
 * @example
 * ```ts
 * import type { LaunchQueuedOptions } from '@immortal-lambda/middleware/safety-net';
 * const options: LaunchQueuedOptions = { reserveMs: 5_000 };
 * ```
 */
export interface LaunchQueuedOptions {
  ecsClient?: ECSClient;
  s3Client?: S3Client;
  logger?: FallbackLogger;
  clock?: Clock;
  random?: () => number;
  /** Time kept back from the launcher's own timeout to report the batch (default 3 s). */
  reserveMs?: number;
}

/** What became of one queued launch. */
type Launched = { taskArn: string } | { skipped: string } | { failed: string };

/**
 * The launcher: a Lambda handler for the launch queue's SQS event source (with
 * `ReportBatchItemFailures`). Each message is a handoff that met Fargate's launch rate or found no
 * capacity; the launcher makes the RunTask call the wrapper would have made, with the same client
 * token and parameters, so that ECS starts exactly one task whatever was tried before, retrying
 * throttling with short backoff until its own time runs low. A started launch is recorded
 * (`launched`, with the task) and deleted; one that could not start yet is reported as a batch item
 * failure, and SQS delivers it again after its visibility timeout; one whose handler finished in
 * Lambda meanwhile (`not-needed`) is dropped. A message that is not a queued launch, or a RunTask
 * that ECS refuses outright, is reported too, and goes to the queue's dead-letter queue after its
 * receives: alarm on it.
 *
 * @example
 * ```ts
 * import { launchQueued } from '@immortal-lambda/middleware/safety-net';
 * export const handler = launchQueued();
 * ```
 */
export function launchQueued(
  options: LaunchQueuedOptions = {},
): (event: SQSEvent, context?: Pick<Context, 'getRemainingTimeInMillis'>) => Promise<SQSBatchResponse> {
  const logger = isolatedLogger(options.logger ?? jsonLogger);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  let ecs = options.ecsClient;
  let s3 = options.s3Client;
  const clients = async () => {
    ecs ??= new (await loadEcs()).ECSClient(BOUNDED_CLIENT);
    s3 ??= new (await loadS3()).S3Client(BOUNDED_CLIENT);
    return { ecs, s3 };
  };
  return async (event, context) => {
    const budgetMs = Math.max(
      1_000,
      (context?.getRemainingTimeInMillis() ?? 60_000) - (options.reserveMs ?? 3_000),
    );
    const work = abortAfter(clock, budgetMs, () => new Error('the launcher ran out of time'));
    try {
      const { ecs: ecsClient, s3: s3Client } = await clients();
      const results = await Promise.all(
        (event.Records ?? []).map(async (record) => ({
          record,
          launched: await launchOne(record, {
            ecsClient,
            s3Client,
            clock,
            random,
            signal: work.signal,
            budgetMs,
          }),
        })),
      );
      for (const { record, launched } of results) report(logger, record, launched);
      return {
        batchItemFailures: results
          .filter(({ launched }) => 'failed' in launched)
          .map(({ record }) => ({ itemIdentifier: record.messageId })),
      };
    } finally {
      work.dispose();
    }
  };
}

/** One message: read, checked against the invocation's records, started, recorded. */
async function launchOne(
  record: SQSRecord,
  deps: {
    ecsClient: ECSClient;
    s3Client: S3Client;
    clock: Clock;
    random: () => number;
    signal: AbortSignal;
    budgetMs: number;
  },
): Promise<Launched> {
  let launch: QueuedLaunch;
  try {
    launch = parseQueuedLaunch(record.body);
  } catch (error) {
    return { failed: `not a queued launch: ${(error as Error).message}` };
  }
  try {
    if (await finishedInLambda(deps.s3Client, launch))
      return { skipped: 'the handler finished in Lambda while the launch was queued (not-needed)' };
    const started = await startTask({
      config: configOf(launch),
      client: deps.ecsClient,
      requestId: launch.requestId,
      functionName: launch.functionName,
      functionVersion: launch.functionVersion,
      overrides: launch.overrides,
      clock: deps.clock,
      random: deps.random,
      signal: deps.signal,
      budgetMs: deps.budgetMs,
      // The launch rate refills a token every 50 ms: short waits keep the queue moving at its pace.
      backoff: { baseMs: 50, capMs: 500 },
    });
    await writeOutcome(deps.s3Client, atOf(launch), 'launched', {
      status: 'handed-off',
      attempt: 1,
      writer: 'launcher',
      functionVersion: launch.functionVersion,
      taskArn: started.taskArn,
      updatedAt: new Date(deps.clock.now()).toISOString(),
    });
    return { taskArn: started.taskArn };
  } catch (error) {
    return { failed: describeError(error).message as string };
  }
}

/**
 * Whether the wrapper recorded the invocation `not-needed` (its handler finished in Lambda). The
 * wrapper keeps its status in one object (`handed-off`, which `queued` and `not-needed` write), so
 * that one object is read. When it is not there (not written yet, or S3's 403 for a missing key
 * to a role whose `s3:ListBucket` is limited by prefix), a listing of the invocation's folder
 * tells, as before: one GetObject per launch instead of a listing and a read of every record.
 */
async function finishedInLambda(s3: S3Client, launch: QueuedLaunch): Promise<boolean> {
  const at = atOf(launch);
  const key = outcomeKey(at.prefix, at.functionName, at.requestId, 'handed-off');
  const text = await readObjectText(s3, at.bucket, key).catch((error: unknown) => {
    if ((error as { name?: string }).name === 'AccessDenied') return undefined;
    throw error;
  });
  if (text !== undefined) return isNotNeeded(parseOutcome(text));
  const records = await readOutcomes(s3, at);
  return records.some(isNotNeeded);
}

const isNotNeeded = (record: OutcomeRecord | undefined) =>
  record?.writer === 'wrapper' && record.status === 'not-needed';

const atOf = (launch: QueuedLaunch) => ({
  bucket: launch.records.bucket,
  prefix: launch.records.prefix,
  functionName: launch.functionName,
  requestId: launch.requestId,
});

/** The placement the wrapper used, as the RunTask attempts read it. */
function configOf(launch: QueuedLaunch): ResolvedConfig {
  return {
    ...launch.placement,
    payloadBucket: launch.records.bucket,
    outcomePrefix: launch.records.prefix,
  } as unknown as ResolvedConfig;
}

function report(logger: FallbackLogger, record: SQSRecord, launched: Launched): void {
  const receives = Number(record.attributes?.ApproximateReceiveCount ?? '1');
  if ('taskArn' in launched) {
    logger.info('A queued launch was started', {
      messageId: record.messageId,
      taskArn: launched.taskArn,
      receives,
    });
  } else if ('skipped' in launched) {
    logger.info('A queued launch was dropped', { messageId: record.messageId, reason: launched.skipped });
  } else {
    logger.error('A queued launch could not be started yet; SQS delivers it again', {
      messageId: record.messageId,
      receives,
      error: launched.failed,
    });
  }
}
