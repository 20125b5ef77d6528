import { traceHandler } from '@immortal-lambda/protocol/basics';
import type { Context } from 'aws-lambda';
import { type HeldKind, heldKindOf, screenBatch, withFailures } from './batches.js';
import { createCore, type FallbackCore, remainingTime, setUp } from './core.js';
import { type GivenExtras, LazyExtras, runnerExtras } from './extras.js';
import { Invocation } from './invocation.js';
import type { FallbackHandler, FargateFallbackOptions, HandoffReceipt } from './types.js';

/**
 * The wrapped handler: Lambda calls it with the event and context. Inside the runner it also
 * takes the runner's `{ signal }` as a third argument.
 *
 * @example
 * ```ts
 * import { type WrappedHandler, withFargateFallback } from '@immortal-lambda/middleware';
 * export const handler: WrappedHandler<{ id: string }, string, unknown> = withFargateFallback(async (e) => e.id);
 * ```
 */
export type WrappedHandler<TEvent, TResult, TResponse> = (
  event: TEvent,
  context: Context,
  extras?: GivenExtras,
) => Promise<TResult | TResponse>;

/**
 * Wraps a Lambda handler so that, `marginMs` before the invocation would time out, it hands the
 * original event to an ECS Fargate task that runs the same handler to completion.
 *
 * Configuration is read and validated here, once: a missing or invalid setting throws one
 * {@link ConfigurationError} listing every problem. Inside the runner
 * (`FARGATE_FALLBACK_RUNNER=1`) the handler is called directly, with no timer and no handoff.
 *
 * @param fn - the handler; it receives `{ signal, runtime }` as its third argument and should
 *   stop its work when `signal` aborts.
 * @param options - settings that override the `FARGATE_FALLBACK_*` environment variables.
 *
 * @example
 * ```ts
 * import { withFargateFallback } from '@immortal-lambda/middleware';
 *
 * export const handler = withFargateFallback(async (event: { reportId: string }, _context, { signal }) => {
 *   for (const page of await listPages(event.reportId)) {
 *     signal.throwIfAborted();
 *     await render(page);
 *   }
 *   return { done: event.reportId };
 * });
 * ```
 */
export function withFargateFallback<TEvent = unknown, TResult = unknown, TResponse = HandoffReceipt>(
  fn: FallbackHandler<TEvent, TResult>,
  options: FargateFallbackOptions<TEvent, TResponse> = {},
): WrappedHandler<TEvent, TResult, TResponse> {
  if (typeof fn !== 'function') {
    throw new TypeError(
      `withFargateFallback expects the handler function as its first argument, got ${typeof fn}`,
    );
  }
  const { options: checked, env, mode } = setUp(options);
  if (mode === 'runner') {
    return async (event, context, extras) =>
      traceHandler({ runtime: 'fargate', requestId: context.awsRequestId }, () =>
        fn(event, context, runnerExtras(extras)),
      );
  }
  if (mode === 'disabled') {
    return async (event, context) => fn(event, context, new LazyExtras('lambda'));
  }
  const core = createCore(checked, env);
  const handler = fn as FallbackHandler<unknown, unknown>;
  return (event, context) => {
    let remaining: number;
    try {
      remaining = remainingTime(context);
    } catch (error) {
      return Promise.reject(error);
    }
    const held = heldKindOf(core.config, event);
    if (held === undefined) {
      return new Invocation(core, event, context, remaining).run(handler) as Promise<TResult | TResponse>;
    }
    return runScreened(core, held, handler, event, context) as Promise<TResult | TResponse>;
  };
}

/**
 * A batch another invocation may hold: looked up first; its redelivered SQS messages that are
 * held are left out and answered as failed, a stream batch still held is answered without running.
 */
async function runScreened(
  core: FallbackCore,
  held: HeldKind,
  handler: FallbackHandler<unknown, unknown>,
  event: unknown,
  context: Context,
): Promise<unknown> {
  const screened = await screenBatch(core, held, event, context);
  if (screened?.answer !== undefined) return screened.answer;
  const result = await new Invocation(core, screened?.event ?? event, context, remainingTime(context)).run(
    handler,
  );
  return screened ? withFailures(result, screened.heldElsewhere) : result;
}
