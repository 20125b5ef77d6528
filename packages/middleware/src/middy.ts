import { GIVEN_JOURNAL } from '@immortal-lambda/protocol/basics';
import type { Context } from 'aws-lambda';
import { heldKindOf, screenBatch, withFailures } from './batches.js';
import { createCore, type FallbackCore, handoffTarget, remainingTime, setUp } from './core.js';
import type { Due } from './deadline-timer.js';
import { ConfigurationError, HandoffError } from './errors.js';
import { type GivenExtras, LazyExtras, runnerExtras } from './extras.js';
import { Prewarm } from './prewarm.js';
import type { HandoffTarget } from './target.js';
import type {
  FallbackHandlerExtras,
  FargateFallbackOptions,
  HandoffAnswer,
  HandoffReceipt,
} from './types.js';

/** Where the middleware puts the extras on the Lambda context: middy's handler has no room. */
const EXTRAS = 'fargateFallback';

/**
 * The step API under middy: `step`, `checkpoint`, `lastCheckpoint` and `runtime` of this
 * invocation, which the `fargateFallback` middleware puts on the context (middy passes the
 * handler only `{ signal }`). Throws {@link ConfigurationError} when the middleware is not used.
 *
 * @example
 * ```ts
 * import middy from '@middy/core';
 * import { fallbackExtras, fargateFallback } from '@immortal-lambda/middleware/middy';
 *
 * export const handler = middy(async (event, context) => {
 *   const { step } = fallbackExtras(context);
 *   const rows = await step('load', () => loadRows(event));
 *   return step('render', () => render(rows));
 * }, { timeoutEarlyInMillis: 10_000 }).use(fargateFallback());
 * ```
 */
export function fallbackExtras(context: Context): FallbackHandlerExtras {
  const extras = (context as unknown as Record<string, unknown>)[EXTRAS];
  if (!(extras instanceof LazyExtras)) {
    throw new ConfigurationError([
      'fallbackExtras(context) found no extras on the context: add .use(fargateFallback()) to this middy handler, before the handler runs',
    ]);
  }
  return extras;
}

/** Puts the extras on the context, where {@link fallbackExtras} finds them. */
function attach(context: Context, extras: LazyExtras): LazyExtras {
  Object.defineProperty(context, EXTRAS, { value: extras, enumerable: false, configurable: true });
  return extras;
}

/**
 * The part of a middy request this middleware uses. Declared here so that the main entry never
 * imports `@middy/core`; it matches middy 5, 6 and 7.
 *
 * @example
 * ```ts
 * import type { MiddyRequest } from '@immortal-lambda/middleware/middy';
 * const requestIdOf = (request: MiddyRequest) => request.context.awsRequestId;
 * ```
 */
export interface MiddyRequest<TEvent = unknown, TResult = unknown> {
  event: TEvent;
  context: Context;
  response: TResult | undefined | null;
  error: unknown;
  internal: Record<string, unknown>;
}

/**
 * A middy middleware object, structurally.
 *
 * @example
 * ```ts
 * import { fargateFallback, type MiddyMiddleware } from '@immortal-lambda/middleware/middy';
 * const fallback: MiddyMiddleware = fargateFallback();
 * ```
 */
export interface MiddyMiddleware<TEvent = unknown, TResult = unknown> {
  /** Answers a response to end the request early (middy's early response), else undefined. */
  before: (request: MiddyRequest<TEvent, TResult>) => undefined | Promise<TResult | undefined>;
  after: (request: MiddyRequest<TEvent, TResult>) => Promise<undefined> | undefined;
  onError: (request: MiddyRequest<TEvent, TResult>) => Promise<TResult | undefined> | undefined;
}

/**
 * How late, past `deadline - marginMs`, middy's own timeout may arrive before the middleware
 * concludes that `timeoutEarlyInMillis` is missing or shorter than the margin.
 *
 * @example
 * ```ts
 * import { MIDDY_TIMEOUT_SLACK_MS } from '@immortal-lambda/middleware/middy';
 * const reportedAt = deadline - marginMs + MIDDY_TIMEOUT_SLACK_MS;
 * ```
 */
export const MIDDY_TIMEOUT_SLACK_MS = 250;

const noop = () => undefined;
/** What {@link MiddyInvocation.routeFirst} answers when the invocation stays in Lambda. */
const ROUTED_NOT = Symbol('stays in Lambda');

/**
 * The middy adapter: hands the invocation off to Fargate when middy's early timeout fires.
 *
 * Set middy's `timeoutEarlyInMillis` to at least the margin (`marginMs`, default 10000): middy
 * ends the handler that long before the deadline with a `TimeoutError`, and this middleware's
 * `onError` turns it into a handoff. Middy aborts the handler's `signal` when its timeout
 * fires, before the task exists, so under middy a failed handoff fails the invocation at once
 * with a {@link HandoffError}. A middy set-up without a usable early timeout is reported as an
 * error in the first invocation that reaches the margin, and that invocation is handed off anyway.
 *
 * @example
 * ```ts
 * import middy from '@middy/core';
 * import { fargateFallback } from '@immortal-lambda/middleware/middy';
 *
 * export const handler = middy(async (event: { reportId: string }, _context, { signal }) => {
 *   return buildReport(event.reportId, signal);
 * }, { timeoutEarlyInMillis: 10_000 }).use(fargateFallback({ marginMs: 10_000 }));
 * ```
 */
export function fargateFallback<TEvent = unknown, TResult = unknown>(
  options: FargateFallbackOptions<TEvent, TResult> = {},
): MiddyMiddleware<TEvent, TResult> {
  const { options: checked, env, mode } = setUp(options);
  if (mode === 'runner') {
    // In the runner: the journal the runner left on the context, for the steps to resume from.
    const before = (request: MiddyRequest<TEvent, TResult>) => {
      const given = (request.context as unknown as Record<symbol, GivenExtras | undefined>)[GIVEN_JOURNAL];
      attach(request.context, runnerExtras(given ? { ...given, signal: undefined } : undefined));
      return undefined;
    };
    return { before, after: noop, onError: noop };
  }
  if (mode === 'disabled') {
    const before = (request: MiddyRequest<TEvent, TResult>) => {
      attach(request.context, new LazyExtras('lambda'));
      return undefined;
    };
    return { before, after: noop, onError: noop };
  }
  const core = createCore(checked, env);
  const invocations = new WeakMap<object, MiddyInvocation>();
  /** The redelivered messages another invocation holds, per request: answered as failed. */
  const heldElsewhere = new WeakMap<object, string[]>();
  const answer = (request: MiddyRequest<TEvent, TResult>, response: unknown) => {
    const held = heldElsewhere.get(request);
    return (held ? withFailures(response, held) : response) as TResult;
  };

  const start = (request: MiddyRequest<TEvent, TResult>) => {
    const invocation = new MiddyInvocation(
      core,
      request.event,
      request.context,
      remainingTime(request.context),
    );
    if (core.route === undefined) {
      invocations.set(request, invocation);
      return undefined;
    }
    // routeToFargate: a `true` answer is middy's early response, and the handler never runs.
    return invocation.routeFirst(core.route).then((response) => {
      if (response === ROUTED_NOT) {
        invocations.set(request, invocation);
        return undefined;
      }
      request.response = answer(request, response);
      return request.response;
    });
  };

  return {
    before: (request) => {
      const held = heldKindOf(core.config, request.event);
      if (held === undefined) return start(request);
      // A batch another invocation holds: its redelivered SQS messages left out, a stream batch waiting.
      return screenBatch(core, held, request.event, request.context).then((screened) => {
        if (screened === undefined) return start(request);
        heldElsewhere.set(request, screened.heldElsewhere);
        if (screened.answer !== undefined) {
          request.response = screened.answer as TResult;
          return request.response;
        }
        request.event = screened.event as TEvent;
        return start(request);
      });
    },
    after: (request) => {
      if (heldElsewhere.has(request)) request.response = answer(request, request.response);
      const invocation = invocations.get(request);
      if (invocation === undefined) return undefined;
      invocations.delete(request);
      return invocation.finishedInLambda();
    },
    onError: (request) => {
      const invocation = invocations.get(request);
      if (invocation === undefined) return undefined;
      invocations.delete(request);
      if (invocation.isMiddyTimeout(request.error)) {
        return invocation.handOff().then((response) => {
          request.response = answer(request, response);
          return request.response;
        });
      }
      return invocation.finishedInLambda();
    },
  };
}

class MiddyInvocation implements Due {
  readonly #core: FallbackCore;
  readonly #target: HandoffTarget;
  readonly #extras: LazyExtras;
  /** When middy's early timeout should have fired, at the latest. */
  readonly dueAt: number;
  #handoff: Promise<HandoffAnswer> | undefined;
  #prewarm: Prewarm | undefined;

  constructor(core: FallbackCore, event: unknown, context: Context, remainingMs: number) {
    this.#core = core;
    this.#target = handoffTarget(core, event, context, remainingMs);
    this.#extras = attach(context, new LazyExtras('lambda'));
    // With maxInLambdaMs the handoff comes before the deadline less the margin: middy reads the
    // remaining time after the before-middlewares, so it is shown that much shorter, and middy's
    // early timeout fires at the handoff time.
    const shift = this.#target.deadlineAt - core.marginMs - this.#target.handOffAt;
    if (shift > 0) {
      const remaining = context.getRemainingTimeInMillis.bind(context);
      context.getRemainingTimeInMillis = () => Math.max(0, remaining() - shift);
    }
    this.dueAt = this.#target.handOffAt + MIDDY_TIMEOUT_SLACK_MS;
    core.deadlines.watch(this);
    if (Prewarm.wanted(core, this.#target)) {
      this.#prewarm = new Prewarm(core, this.#target, () => this.#extras.journal());
      core.deadlines.watch(this.#prewarm);
    }
  }

  /**
   * Middy's early timeout. Middy aborts the handler's signal and then throws its `TimeoutError`;
   * a handler that honours the signal rejects first, with an `AbortError`, and wins middy's
   * race. Either error counts once the margin is reached; any other error is the handler's own.
   */
  isMiddyTimeout(error: unknown): boolean {
    if (typeof error !== 'object' || error === null) return false;
    const { name, cause } = error as { name?: unknown; cause?: { package?: unknown } };
    if (name === 'TimeoutError' && cause?.package === '@middy/core') return true;
    if (name !== 'TimeoutError' && name !== 'AbortError') return false;
    if (this.#handoff !== undefined) return true;
    return this.#core.clock.now() >= this.#target.handOffAt - MIDDY_TIMEOUT_SLACK_MS;
  }

  /** Middy's early timeout is late: the set-up is wrong, and the invocation is handed off anyway. */
  onDue(): void {
    const error = new ConfigurationError([
      `middy's early timeout had not fired when the handoff was due (${this.#core.marginMs} ms before the deadline, or maxInLambdaMs after the start): set middy(handler, { timeoutEarlyInMillis: ${this.#core.marginMs} }) or more, so that the handler is stopped before the handoff; this invocation is being handed off anyway`,
    ]);
    this.#core.logger.error('middy is not configured for the Fargate fallback', {
      requestId: this.#target.context.awsRequestId,
      error: { name: error.name, message: error.message },
    });
    this.#start().catch(noop);
  }

  #start(): Promise<HandoffAnswer> {
    const journal = this.#extras.journal();
    this.#handoff ??= this.#prewarm
      ? this.#prewarm.handOff(journal)
      : this.#core.handoff.handOff(this.#target, journal);
    return this.#handoff;
  }

  async handOff(): Promise<unknown> {
    this.#core.deadlines.unwatch(this);
    const receipt = await this.#start();
    const response = await this.#core.respond(receipt, this.#target.event, this.#target.context);
    // middy treats an undefined response after onError as "unhandled" and rethrows the timeout.
    return response === undefined ? null : response;
  }

  /** Asks `routeToFargate`; on `true` hands off at once and answers the response. */
  async routeFirst(route: NonNullable<FallbackCore['route']>): Promise<unknown> {
    const { event, context } = this.#target;
    let routed: boolean;
    try {
      routed = (await route(event, context)) === true;
    } catch (error) {
      // The predicate's error fails the invocation: nothing is left to watch.
      this.#core.deadlines.unwatch(this);
      throw error;
    }
    if (!routed) return ROUTED_NOT;
    this.#core.deadlines.unwatch(this);
    const receipt = await this.#core.handoff.handOff({ ...this.#target, routed: true });
    const response = await this.#core.respond(receipt, event, context);
    return response === undefined ? null : response;
  }

  /** The handler settled in Lambda: stop a task that a late-detected timeout may have started. */
  async finishedInLambda(): Promise<undefined> {
    this.#core.deadlines.unwatch(this);
    if (this.#handoff === undefined) {
      await this.#prewarm?.finished();
      return undefined;
    }
    const receipt = await this.#handoff.catch(() => undefined);
    if (receipt) await this.#core.handoff.withdraw(receipt, this.#target);
    return undefined;
  }
}

export type { FargateFallbackOptions, HandoffAnswer, HandoffReceipt };
export { HandoffError };
