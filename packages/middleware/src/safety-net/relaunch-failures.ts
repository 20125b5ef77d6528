import { ENV } from '@immortal-lambda/protocol';
import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
import type { Context } from 'aws-lambda';
import { systemClock } from '../clock.js';
import { createCore, type FallbackCore, setUp } from '../core.js';
import { RelaunchError } from '../errors.js';
import { FargateHandoff } from '../handoff.js';
import { describeError, isolatedLogger, jsonLogger } from '../logger.js';
import { readOutcomes } from '../outcome-store.js';
import type { FallbackLogger, FargateFallbackOptions, HandoffAnswer } from '../types.js';
import { RELAUNCHED_CAUSES } from './failure-cause.js';
import { type FailedInvocation, failedInvocations, isFailedInvocation } from './failure-records.js';
import { leaveAsResult } from './failure-result.js';
import { ServedFunctions } from './served-functions.js';

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
  const servedEnv = functionArn ? { ...env, [ENV.failedFunction]: functionArn } : env;
  const functions = new ServedFunctions(checked, servedEnv, destinations);
  const base = {
    logger: isolatedLogger(checked.logger ?? jsonLogger),
    clock: checked.clock ?? systemClock,
  };
  const handoffFor = handoffsOf(checked, env, functions);
  // A dead-letter message names no function: it is of the one function served, if there is one.
  const defaultArn = functions.arns.length === 1 ? functions.arns[0] : undefined;
  const finalArn = finalFailures ?? (env[ENV.finalFailures]?.trim() || undefined);

  const relaunch = async (
    item: FailedInvocation,
    context: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<{ requestId: string; taskArn?: string; skipped?: string }> => {
    const arn = item.functionArn ?? defaultArn;
    if (item.functionArn && !functions.serves(item.functionArn)) {
      // Set up for some functions, it never starts another's code with the record's event.
      throw new RelaunchError(
        `the failure record of ${item.requestId} is of ${item.functionArn}, and this relaunch function serves ${functions.arns.join(', ')} only (${ENV.failedFunction}): it was not started; route that function's failures to its own relaunch function`,
        { requestId: item.requestId },
      );
    }
    const match = arn ? FUNCTION_ARN.exec(arn) : null;
    if (!match) {
      throw new RelaunchError(
        `the failure record of ${item.requestId} does not name its function and ${functions.arns.length > 1 ? 'this relaunch function serves several' : 'none is configured'}: set ${ENV.failedFunction} (the functionArn option) to the one function whose dead-letter queue this is`,
        { requestId: item.requestId },
      );
    }
    const [, , name, qualifier] = match as unknown as [string, string, string, string | undefined];
    // The version Lambda ran (an alias's, say), else the qualifier when it is a version.
    const version =
      item.executedVersion ?? (qualifier && /^(\d+|\$LATEST)$/.test(qualifier) ? qualifier : '$LATEST');
    if (!RELAUNCHED_CAUSES.has(item.cause)) {
      const at = { functionArn: arn as string, version, finalArn, destinations };
      return leaveAsResult(item, at, base);
    }
    const started = await handoffFor(name, version);
    const invocation = { item, arn: arn as string, name, version, region: env.AWS_REGION };
    return startOnFargate(invocation, started, context);
  };

  return async (event, context) => {
    const sqs =
      Array.isArray((event as { Records?: unknown[] })?.Records) &&
      (event as { Records: { eventSource?: string }[] }).Records.some((r) => r?.eventSource === 'aws:sqs');
    const { relaunched, failures, errors } = await each(base.logger, failedInvocations(event), (item) =>
      relaunch(item, context),
    );
    // A record that failed and has no message id cannot be reported alone: the whole batch is
    // failed instead, so that SQS delivers it again rather than deleting it.
    if (sqs && errors.length === failures.length) return { batchItemFailures: failures, relaunched };
    if (errors.length > 0) {
      throw new RelaunchError(
        `${errors.length} failed invocation${errors.length === 1 ? '' : 's'} could not be started on Fargate: ${errors.join('; ')}`,
      );
    }
    return { relaunched };
  };
}

/**
 * Starts one failed invocation as the wrapper would have handed it off, unless its records show it
 * was handed off already.
 */
async function startOnFargate(
  invocation: {
    item: FailedInvocation;
    arn: string;
    name: string;
    version: string;
    region: string | undefined;
  },
  { core, handoff }: { core: FallbackCore; handoff: FargateHandoff },
  context: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<RelaunchResult['relaunched'][number]> {
  const { item, arn, name, version } = invocation;
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
  const receipt: HandoffAnswer = await handoff.handOff({
    event: item.event,
    context: {
      awsRequestId: item.requestId,
      functionName: name,
      functionVersion: version,
      invokedFunctionArn: arn,
      memoryLimitInMB: '0',
      getRemainingTimeInMillis: () => remaining - (core.clock.now() - now),
    } as unknown as Context,
    startedAt: now,
    deadlineAt: now + remaining,
    handOffAt: now,
    immediate: false,
    // The failed function's version: the runner fetches that code, and its own handler.
    env: { AWS_REGION: invocation.region, AWS_LAMBDA_FUNCTION_VERSION: version },
  });
  core.logger.info('A failed invocation was started on Fargate', {
    requestId: item.requestId,
    functionArn: arn,
    ...(receipt.status === 'handed-off' ? { taskArn: receipt.taskArn } : { queued: receipt.launchQueue }),
    ...(item.error ? { failure: item.error } : {}),
  });
  return {
    requestId: item.requestId,
    ...(receipt.status === 'handed-off' ? { taskArn: receipt.taskArn } : { queued: receipt.launchQueue }),
  };
}

/**
 * The handoff of each function served: the one placement given, else one per version's deployed
 * settings (its variables over the relaunch function's own environment), made once per reading.
 */
function handoffsOf(
  options: FargateFallbackOptions,
  env: Readonly<Record<string, string | undefined>>,
  functions: ServedFunctions,
): (name: string, version: string) => Promise<{ core: FallbackCore; handoff: FargateHandoff }> {
  const made = new WeakMap<object, { core: FallbackCore; handoff: FargateHandoff }>();
  const own = functions.own ? createCore(options, env) : undefined;
  const ownHandoff = own ? { core: own, handoff: new FargateHandoff(own.config, own.deps) } : undefined;
  return async (name, version) => {
    if (ownHandoff) return ownHandoff;
    const { variables } = await functions.settingsOf(name, version);
    let handoff = made.get(variables);
    if (!handoff) {
      const core = createCore(options, { ...env, ...variables });
      handoff = { core, handoff: new FargateHandoff(core.config, core.deps) };
      made.set(variables, handoff);
    }
    return handoff;
  };
}

/** Starts (or leaves) each record in turn; a record that fails is logged and counted, the rest go on. */
async function each(
  logger: FallbackLogger,
  items: ReturnType<typeof failedInvocations>,
  start: (item: FailedInvocation) => Promise<RelaunchResult['relaunched'][number]>,
) {
  const relaunched: RelaunchResult['relaunched'] = [];
  const failures: { itemIdentifier: string }[] = [];
  const errors: string[] = [];
  for (const item of items) {
    try {
      if (!isFailedInvocation(item)) throw new RelaunchError(item.problem);
      relaunched.push(await start(item));
    } catch (error) {
      logger.error('A failed invocation could not be started on Fargate', {
        ...('requestId' in item ? { requestId: item.requestId } : {}),
        error: describeError(error),
      });
      errors.push((error as Error).message);
      if (item.itemIdentifier) failures.push({ itemIdentifier: item.itemIdentifier });
    }
  }
  return { relaunched, failures, errors };
}
