import type { Context } from 'aws-lambda';
import { systemClock } from './clock.js';
import { resolveConfig } from './config.js';
import { ConfigurationError } from './errors.js';
import { FargateHandoff, type HandoffTarget } from './handoff.js';
import { jsonLogger } from './logger.js';
import type { Clock, FallbackLogger, FargateFallbackOptions, HandoffReceipt } from './types.js';

/** What both adapters share once the options are resolved. */
export interface FallbackCore {
  handoff: FargateHandoff;
  clock: Clock;
  logger: FallbackLogger;
  marginMs: number;
  respond(receipt: HandoffReceipt, event: unknown, context: Context): Promise<unknown>;
}

/** Resolves and validates the configuration once and builds the handoff mechanism. */
export function createCore(
  options: FargateFallbackOptions,
  env: Readonly<Record<string, string | undefined>>,
): FallbackCore {
  const config = resolveConfig(options, env);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? jsonLogger;
  const handoff = new FargateHandoff(config, {
    env,
    clock,
    logger,
    random: options.random ?? Math.random,
    ecsClient: options.ecsClient,
    s3Client: options.s3Client,
  });
  const custom = options.handoffResponse as
    | ((receipt: HandoffReceipt, event: unknown, context: Context) => unknown)
    | undefined;
  return {
    handoff,
    clock,
    logger,
    marginMs: config.marginMs,
    respond: async (receipt, event, context) => (custom ? custom(receipt, event, context) : receipt),
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
  return {
    event,
    context,
    startedAt: now,
    deadlineAt: now + remainingMs,
    immediate: remainingMs <= core.marginMs,
  };
}

/** The remaining time of a Lambda context, or a clear error when there is no Lambda context. */
export function remainingTime(context: Context | undefined): number {
  const remaining =
    typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : NaN;
  if (!Number.isFinite(remaining)) {
    throw new ConfigurationError([
      'the handler was called without a Lambda context (context.getRemainingTimeInMillis() is missing), so there is no deadline to hand off before: pass a Lambda-shaped context, or set FARGATE_FALLBACK_DISABLED=true (the disabled option) where the handler runs outside Lambda',
    ]);
  }
  return remaining;
}
