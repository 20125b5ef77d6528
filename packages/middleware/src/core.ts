import { ENV } from '@immortal-lambda/protocol/basics';
import type { Context } from 'aws-lambda';
import { heldAnswer } from './batches.js';
import { systemClock } from './clock.js';
import { type FallbackMode, type ResolvedConfig, resolveConfig, resolveMode } from './config.js';
import { DeadlineTimer } from './deadline-timer.js';
import { ConfigurationError, HandoffError } from './errors.js';
import { describeError, type IsolatedLogger, isolatedLogger, jsonLogger } from './logger.js';
import { checkOptions, unknownOptionsWarning } from './options-check.js';
import { DEADLINE_GUARD_MS, type Handoff, type HandoffDependencies, type HandoffTarget } from './target.js';
import type { Clock, FargateFallbackOptions, HandoffAnswer } from './types.js';

/** What both adapters share once the options are resolved. */
export interface FallbackCore {
  config: ResolvedConfig;
  /** What the handoff mechanism is built with: environment, clock, logger, clients. */
  deps: HandoffDependencies;
  /** The handoff mechanism, loaded on the first handoff. */
  handoff: Handoff;
  clock: Clock;
  /** The one timer that watches every invocation's handoff time. */
  deadlines: DeadlineTimer;
  logger: IsolatedLogger;
  marginMs: number;
  /** Hand off at most this long after the start (undefined: only the margin counts). */
  maxInLambdaMs: number | undefined;
  /** Start the task this long before the handoff, in standby (0: off). */
  prewarmMs: number;
  respond(receipt: HandoffAnswer, event: unknown, context: Context): Promise<unknown>;
  /** `routeToFargate`, when set: true sends the invocation to Fargate before the handler runs. */
  route: ((event: unknown, context: Context) => boolean | Promise<boolean>) | undefined;
  /** Whether the first invocation's time was checked against the margin (once per sandbox). */
  timeoutChecked: boolean;
}

/** The options after their shape was checked, with the mode they put the adapter in. */
export interface WrapSetup {
  options: FargateFallbackOptions;
  env: Readonly<Record<string, string | undefined>>;
  mode: FallbackMode;
}

/**
 * What both adapters do when they wrap a handler: check the options object (a clear
 * {@link ConfigurationError} for anything of the wrong shape), warn once about option names that
 * are not options, and decide the mode.
 */
export function setUp(given: unknown): WrapSetup {
  const { options, unknown } = checkOptions(given === undefined ? {} : given);
  const typed = options as FargateFallbackOptions;
  if (unknown.length > 0) {
    isolatedLogger(typed.logger ?? jsonLogger).warn(unknownOptionsWarning(unknown), {
      unknownOptions: unknown,
    });
  }
  const env = typed.env ?? process.env;
  return { options: typed, env, mode: resolveMode(typed, env) };
}

/** Resolves and validates the configuration once and builds the handoff mechanism. */
export function createCore(
  options: FargateFallbackOptions,
  env: Readonly<Record<string, string | undefined>>,
): FallbackCore {
  const config = resolveConfig(options, env);
  const clock = options.clock ?? systemClock;
  const logger = isolatedLogger(options.logger ?? jsonLogger);
  const deps: HandoffDependencies = {
    env,
    clock,
    logger,
    random: options.random ?? Math.random,
    ecsClient: options.ecsClient,
    s3Client: options.s3Client,
    sqsClient: options.sqsClient,
    writeMetric: options.metricsWriter ?? ((line) => process.stdout.write(`${line}\n`)),
  };
  const custom = options.handoffResponse as
    | ((receipt: HandoffAnswer, event: unknown, context: Context) => unknown)
    | undefined;
  const handoff = lazyHandoff(config, deps);
  // Once per sandbox, shortly before its first handoff: the handoff's code and clients are loaded.
  const ahead = { leadMs: config.loadAheadMs, onNear: () => void handoff.warmUp() };
  return {
    config,
    deps,
    handoff,
    clock,
    deadlines: new DeadlineTimer(clock, ahead),
    logger,
    marginMs: config.marginMs,
    maxInLambdaMs: config.maxInLambdaMs,
    prewarmMs: config.prewarmMs,
    route: options.routeToFargate as FallbackCore['route'],
    timeoutChecked: false,
    respond: async (receipt, event, context) => {
      // A held SQS batch: every message a batch item failure, so that Lambda deletes none.
      if (receipt.heldMessages) return heldAnswer(receipt.heldMessages);
      // A held stream batch: failed from its first record, so that Lambda retries it and the shard waits.
      if (receipt.heldFrom !== undefined) return heldAnswer([receipt.heldFrom]);
      if (!custom) return receipt;
      try {
        return await custom(receipt, event, context);
      } catch (error) {
        // The task exists and runs: the invocation is handed off whatever the callback did.
        logger.error('handoffResponse threw after the handoff; the receipt is returned instead', {
          requestId: receipt.requestId,
          ...(receipt.status === 'handed-off' ? { taskArn: receipt.taskArn } : { queued: true }),
          error: describeError(error),
        });
        return receipt;
      }
    },
  };
}

/**
 * The handoff mechanism, imported on its first use: building and validating the envelope,
 * spilling it to S3 and starting the task is most of the package's code, and an invocation that
 * finishes in time never needs it. A module that cannot be loaded fails the handoff like the SDK
 * that cannot be loaded: a `HandoffError` with reason `sdk-unavailable`.
 */
function lazyHandoff(config: ResolvedConfig, deps: HandoffDependencies): Handoff {
  let mechanism: Promise<Handoff> | undefined;
  const load = (requestId: string | undefined): Promise<Handoff> => {
    mechanism ??= import('./handoff.js').then(
      ({ FargateHandoff }) => new FargateHandoff(config, deps),
      (error: unknown) => {
        mechanism = undefined;
        throw new HandoffError(
          'sdk-unavailable',
          `the handoff module of @immortal-lambda/middleware could not be loaded: check that the package is deployed whole (${String((error as Error)?.message ?? error)})`,
          { requestId, cause: error },
        );
      },
    );
    return mechanism;
  };
  return {
    failAt: (deadlineAt) => deadlineAt - DEADLINE_GUARD_MS,
    handOff: async (target, journal, mode) =>
      (await load(target.context.awsRequestId)).handOff(target, journal, mode),
    resume: async (standby, target, journal) =>
      (await load(target.context.awsRequestId)).resume(standby, target, journal),
    cancel: async (standby, target) => (await load(target.context.awsRequestId)).cancel(standby, target),
    withdraw: async (answer, target) => (await load(target.context.awsRequestId)).withdraw(answer, target),
    claimForLambda: async (standby, target) =>
      (await load(target.context.awsRequestId)).claimForLambda(standby, target),
    screen: async (kind, event, context, remainingMs) =>
      (await load(context.awsRequestId)).screen(kind, event, context, remainingMs),
    // A load that fails here fails again, loudly, at the handoff.
    warmUp: () =>
      load(undefined).then(
        (handoff) => handoff.warmUp(),
        () => undefined,
      ),
  };
}

/** The invocation as the handoff sees it, stamped now: when it started and when it would time out. */
export function handoffTarget(
  core: FallbackCore,
  event: unknown,
  context: Context,
  remainingMs: number,
): HandoffTarget {
  const now = core.clock.now();
  if (!core.timeoutChecked) warnWhenMarginCoversTimeout(core, remainingMs);
  const deadlineAt = now + remainingMs;
  // Whichever comes first: the deadline less the margin, or maxInLambdaMs after the start.
  const byMargin = deadlineAt - core.marginMs;
  const handOffAt =
    core.maxInLambdaMs === undefined ? byMargin : Math.min(byMargin, now + core.maxInLambdaMs);
  return {
    event,
    context,
    startedAt: now,
    deadlineAt,
    handOffAt,
    immediate: remainingMs <= core.marginMs,
  };
}

/**
 * Said once per sandbox, at its first invocation: a function whose whole time is within the
 * margin hands every invocation off at once, before its handler runs in Lambda.
 */
function warnWhenMarginCoversTimeout(core: FallbackCore, remainingMs: number): void {
  core.timeoutChecked = true;
  if (remainingMs > core.marginMs) return;
  core.logger.warn(
    "The function's timeout is at or below the handoff margin: every invocation is handed off at once, before its handler runs in Lambda",
    {
      remainingMsAtStart: remainingMs,
      marginMs: core.marginMs,
      fix: `raise the function's timeout above the margin, or lower ${ENV.marginMs}`,
    },
  );
}

/** The remaining time of a Lambda context, or a clear error when there is no Lambda context. */
export function remainingTime(context: Context | undefined): number {
  const remaining =
    typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : NaN;
  if (!Number.isFinite(remaining)) {
    throw new ConfigurationError([
      `the handler was called without a Lambda context (context.getRemainingTimeInMillis() is missing), so there is no deadline to hand off before: pass a Lambda-shaped context, or set ${ENV.disabled}=true (the disabled option) where the handler runs outside Lambda`,
    ]);
  }
  return remaining;
}
