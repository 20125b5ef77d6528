import { ENV } from '@immortal-lambda/protocol';
import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
import type { Context } from 'aws-lambda';
import { createCore, setUp } from '../core.js';
import { RelaunchError } from '../errors.js';
import { FargateHandoff } from '../handoff.js';
import { describeError } from '../logger.js';
import { readOutcomes } from '../outcome-store.js';
import type { FargateFallbackOptions, HandoffReceipt } from '../types.js';
import { forwardFailure } from './destinations.js';
import { RELAUNCHED_CAUSES } from './failure-cause.js';
import { type FailedInvocation, failedInvocations, isFailedInvocation } from './failure-records.js';

/**
 * Options of {@link relaunchFailures}: the wrapper's settings (where to start the runner), and
 * the function whose dead-letter messages this handler takes, since those do not name it.
 *
 * @example
 * ```ts
 * import type { RelaunchFailuresOptions } from '@immortal-lambda/middleware/safety-net';
 * const options: RelaunchFailuresOptions = { functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report' };
 * ```
 */
export interface RelaunchFailuresOptions
  extends Omit<FargateFallbackOptions, 'handoffResponse' | 'routeToFargate' | 'marginMs' | 'maxInLambdaMs'> {
  /** The function whose failures these are (`FARGATE_FALLBACK_FUNCTION_ARN`); records that name one win. */
  functionArn?: string;
  /**
   * Where the failures it does not start go (`FARGATE_FALLBACK_FINAL_FAILURES`: an SQS queue, SNS
   * topic, event bus or function ARN): a handler error Lambda already retried is the invocation's
   * result, and ends there. Without it such a record is logged as an error only.
   */
  finalFailures?: string;
  /** Clients for sending to {@link finalFailures}; made from the AWS SDK when not given. */
  destinations?: DestinationClients;
}

/**
 * What {@link relaunchFailures} returns: for an SQS batch, the records it could not start
 * (Lambda's partial batch response); otherwise the receipts of the tasks started.
 *
 * @example
 * ```ts
 * import type { RelaunchResult } from '@immortal-lambda/middleware/safety-net';
 * const failed = (result: RelaunchResult) => result.batchItemFailures?.length ?? 0;
 * ```
 */
export interface RelaunchResult {
  batchItemFailures?: { itemIdentifier: string }[];
  relaunched: { requestId: string; taskArn?: string; skipped?: string }[];
}

const FUNCTION_ARN = /^(arn:aws[a-z-]*:lambda:[^:]+:\d+:function:([^:]+))(?::([^:]+))?$/;

/**
 * A Lambda handler that starts on Fargate the invocations that failed in Lambda anyway (the
 * timeout, out of memory, a runtime crash, a handoff that could not happen: see
 * {@link failureCause}); a handler's own error, which Lambda already retried, is the invocation's
 * result and goes on to `finalFailures` instead of being run again. It takes on-failure destination records
 * (through SQS, SNS, EventBridge, or as a function destination) and legacy dead-letter messages
 * (SQS or SNS: the original event with `RequestID`, `ErrorCode`, `ErrorMessage` attributes), and
 * hands each off as the wrapper would, with the request id as the client token: an invocation
 * handed off already, or a record delivered twice, never starts a second task. For an SQS batch
 * it reports the records it could not start in `batchItemFailures` (turn on
 * `ReportBatchItemFailures`); otherwise it throws {@link RelaunchError}, so Lambda retries.
 *
 * @example
 * ```ts
 * import { relaunchFailures } from '@immortal-lambda/middleware/safety-net';
 * export const handler = relaunchFailures({ functionArn: process.env.REPORT_FUNCTION_ARN });
 * ```
 */
export function relaunchFailures(
  options: RelaunchFailuresOptions = {},
): (event: unknown, context: Pick<Context, 'getRemainingTimeInMillis'>) => Promise<RelaunchResult> {
  const { functionArn, finalFailures, destinations, ...handoffOptions } = options;
  const { options: checked, env } = setUp(handoffOptions);
  const core = createCore(checked, env);
  const handoff = new FargateHandoff(core.config, core.deps);
  const defaultArn = functionArn ?? env[ENV.failedFunction]?.trim();
  const finalArn = finalFailures ?? (env[ENV.finalFailures]?.trim() || undefined);

  /** A failure that is the invocation's result: sent on to where final failures go, or logged. */
  const leave = async (item: FailedInvocation, arn: string, name: string, version: string) => {
    const skipped = `it failed of ${item.cause === 'handler-error' ? "the handler's own error" : `"${item.cause}"`} (${item.error ?? 'no error given'}), not of the timeout, memory, a crash or a failed handoff`;
    if (!finalArn) {
      core.logger.error('A failed invocation was not started on Fargate: its failure is its result', {
        requestId: item.requestId,
        functionArn: arn,
        cause: item.cause,
        failure: item.error,
        hint: `set ${ENV.finalFailures} to keep such records`,
      });
      return { requestId: item.requestId, skipped };
    }
    const [errorName, ...rest] = (item.error ?? `${item.cause}: no error given`).split(': ');
    await forwardFailure({
      arn: finalArn,
      requestId: item.requestId,
      functionArn: arn,
      version,
      event: item.event,
      error: { name: errorName || 'Error', message: rest.join(': ') || (item.error ?? '') },
      clients: destinations,
      now: core.clock.now(),
    });
    core.logger.info('A failed invocation was not started on Fargate: its failure was sent on', {
      requestId: item.requestId,
      cause: item.cause,
      destination: finalArn,
      name,
    });
    return { requestId: item.requestId, skipped: `${skipped}; sent to ${finalArn}` };
  };

  const relaunch = async (
    item: FailedInvocation,
    context: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<{ requestId: string; taskArn?: string; skipped?: string }> => {
    const arn = item.functionArn ?? defaultArn;
    const match = arn ? FUNCTION_ARN.exec(arn) : null;
    if (!match) {
      throw new RelaunchError(
        `the failure record of ${item.requestId} does not name its function and none is configured: set ${ENV.failedFunction} (the functionArn option) to the function whose dead-letter queue this is`,
        { requestId: item.requestId },
      );
    }
    const [, , name, qualifier] = match as unknown as [string, string, string, string | undefined];
    // The version Lambda ran (an alias's, say), else the qualifier when it is a version.
    const version =
      item.executedVersion ?? (qualifier && /^(\d+|\$LATEST)$/.test(qualifier) ? qualifier : '$LATEST');
    if (!RELAUNCHED_CAUSES.has(item.cause)) return leave(item, arn as string, name, version);
    const bucket = core.config.payloadBucket;
    if (bucket) {
      const records = await readOutcomes(await handoff.s3(item.requestId), {
        bucket,
        prefix: core.config.outcomePrefix,
        functionName: name,
        requestId: item.requestId,
      });
      if (records.length > 0) {
        return { requestId: item.requestId, skipped: 'it was handed off already (it has outcome records)' };
      }
    }
    const now = core.clock.now();
    const remaining = context.getRemainingTimeInMillis();
    const receipt: HandoffReceipt = await handoff.handOff({
      event: item.event,
      context: {
        awsRequestId: item.requestId,
        functionName: name,
        functionVersion: version,
        invokedFunctionArn: arn as string,
        memoryLimitInMB: '0',
        getRemainingTimeInMillis: () => remaining - (core.clock.now() - now),
      } as unknown as Context,
      startedAt: now,
      deadlineAt: now + remaining,
      handOffAt: now,
      immediate: false,
      // The failed function's version: the runner fetches that code, and its own handler.
      env: {
        AWS_REGION: env.AWS_REGION,
        AWS_LAMBDA_FUNCTION_VERSION: version,
      },
    });
    core.logger.info('A failed invocation was started on Fargate', {
      requestId: item.requestId,
      functionArn: arn,
      taskArn: receipt.taskArn,
      ...(item.error ? { failure: item.error } : {}),
    });
    return { requestId: item.requestId, taskArn: receipt.taskArn };
  };

  return async (event, context) => {
    const items = failedInvocations(event);
    const sqs =
      Array.isArray((event as { Records?: unknown[] })?.Records) &&
      (event as { Records: { eventSource?: string }[] }).Records.some((r) => r?.eventSource === 'aws:sqs');
    const relaunched: RelaunchResult['relaunched'] = [];
    const failures: { itemIdentifier: string }[] = [];
    const errors: string[] = [];
    for (const item of items) {
      try {
        if (!isFailedInvocation(item)) throw new RelaunchError(item.problem);
        relaunched.push(await relaunch(item, context));
      } catch (error) {
        core.logger.error('A failed invocation could not be started on Fargate', {
          ...('requestId' in item ? { requestId: item.requestId } : {}),
          error: describeError(error),
        });
        errors.push((error as Error).message);
        if (item.itemIdentifier) failures.push({ itemIdentifier: item.itemIdentifier });
      }
    }
    if (sqs) return { batchItemFailures: failures, relaunched };
    if (errors.length > 0) {
      throw new RelaunchError(
        `${errors.length} failed invocation${errors.length === 1 ? '' : 's'} could not be started on Fargate: ${errors.join('; ')}`,
      );
    }
    return { relaunched };
  };
}
