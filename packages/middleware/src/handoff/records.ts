import type { S3Client } from '@aws-sdk/client-s3';
import { outcomeKey, outcomeRecord, parseOutcome } from '@immortal-lambda/protocol';
import type { ResolvedConfig } from '../config.js';
import { HandoffError } from '../errors.js';
import { describeError } from '../logger.js';
import { loadS3 } from '../sdk.js';
import { spillEnvelope } from '../spill.js';
import type { HandoffDependencies } from '../target.js';
import type { HandoffAnswer, HandoffReceipt } from '../types.js';

/** What the wrapper records of an invocation. */
export type WrapperStatus = 'handed-off' | 'queued' | 'standby' | 'not-needed';

/**
 * Records the wrapper's part in the payload bucket: `handed-off` once the task exists (`queued`
 * once its start is on the launch queue), `standby`
 * once a pre-warmed task exists, `not-needed` when it was cancelled. The invocation is handed off
 * (or finished) whatever happens here: a failed write is returned for the log, never thrown.
 */
export async function writeWrapperRecord(input: {
  config: ResolvedConfig;
  deps: HandoffDependencies;
  s3: (requestId: string) => Promise<S3Client>;
  receipt: HandoffAnswer;
  fn: { name: string; version: string };
  status: WrapperStatus;
  signal: AbortSignal;
  /** The object written (default: `handed-off` for that status and `queued`, else `standby`). */
  key?: 'handed-off' | 'standby';
}): Promise<Record<string, unknown> | undefined> {
  const { config, deps, receipt, fn, status } = input;
  const bucket = config.payloadBucket;
  if (!bucket) return undefined;
  const { requestId } = receipt;
  const taskArn = receipt.status === 'handed-off' ? receipt.taskArn : undefined;
  const at = receipt.status === 'handed-off' ? receipt.handedOffAt : receipt.queuedAt;
  try {
    await spillEnvelope({
      client: await input.s3(requestId),
      bucket,
      key: outcomeKey(
        config.outcomePrefix,
        fn.name,
        requestId,
        input.key ?? (status === 'handed-off' || status === 'queued' ? 'handed-off' : 'standby'),
      ),
      body: JSON.stringify(
        outcomeRecord({
          functionName: fn.name,
          functionVersion: fn.version,
          requestId,
          status,
          attempt: 1,
          writer: 'wrapper',
          ...(taskArn ? { taskArn } : {}),
          updatedAt: status === 'not-needed' ? new Date(deps.clock.now()).toISOString() : at,
        }),
      ),
      requestId,
      clock: deps.clock,
      random: deps.random,
      signal: input.signal,
      what: `the ${status} record`,
    });
    return undefined;
  } catch (error) {
    // What S3 answered, not the wrapping meant for a failed handoff: this one succeeded.
    return describeError(error instanceof HandoffError && error.cause !== undefined ? error.cause : error);
  }
}

/**
 * The task the launcher started for a queued invocation, from its `launched` record; undefined
 * when it has not started one (or the record cannot be read).
 */
export async function launchedTask(input: {
  config: ResolvedConfig;
  s3: S3Client;
  functionName: string;
  requestId: string;
  signal: AbortSignal;
}): Promise<string | undefined> {
  const { config } = input;
  if (!config.payloadBucket) return undefined;
  const { GetObjectCommand } = await loadS3();
  const object = await input.s3.send(
    new GetObjectCommand({
      Bucket: config.payloadBucket,
      Key: outcomeKey(config.outcomePrefix, input.functionName, input.requestId, 'launched'),
    }),
    { abortSignal: input.signal },
  );
  const record = parseOutcome((await object.Body?.transformToString()) ?? '');
  return record?.taskArn;
}

/**
 * The invocation finished in Lambda while its handoff was in flight, and its task was stopped:
 * its records end where it ended, `not-needed` in place of `handed-off`, so that its status does
 * not stay `handed-off` (or show the stopped task's `failed`). A failed write is logged; the
 * invocation's result stands.
 */
export async function recordFinishedInLambda(input: {
  config: ResolvedConfig;
  deps: HandoffDependencies;
  s3: (requestId: string) => Promise<S3Client>;
  /** The task stopped; none when a queued launch was withdrawn before it started one. */
  taskArn: string | undefined;
  context: { awsRequestId: string; functionName: string; functionVersion?: string };
  signal: AbortSignal;
}): Promise<void> {
  const { context, deps } = input;
  const version = deps.env.AWS_LAMBDA_FUNCTION_VERSION ?? context.functionVersion ?? '$LATEST';
  const error = await writeWrapperRecord({
    config: input.config,
    deps,
    s3: input.s3,
    receipt: {
      status: 'handed-off',
      requestId: context.awsRequestId,
      taskArn: input.taskArn,
      handedOffAt: new Date(deps.clock.now()).toISOString(),
    } as HandoffReceipt,
    fn: { name: context.functionName, version },
    status: 'not-needed',
    signal: input.signal,
    key: 'handed-off',
  });
  if (error)
    deps.logger.error('The not-needed record could not be written', {
      requestId: context.awsRequestId,
      error,
    });
}
