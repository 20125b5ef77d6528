import { traceHandler } from '@immortal-lambda/protocol/basics';
import type { Context } from 'aws-lambda';
import { type FallbackCore, handoffTarget } from './core.js';
import type { Due } from './deadline-timer.js';
import { HandedOffError, type HandoffError } from './errors.js';
import { LazyExtras } from './extras.js';
import { Prewarm } from './prewarm.js';
import type { HandoffTarget } from './target.js';
import type { FallbackHandler, HandoffAnswer } from './types.js';

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

enum State {
  Running,
  HandingOff,
  HandoffFailed,
  Done,
}

/**
 * One wrapped invocation: races the handler against the handoff timer.
 *
 * - The handler settles first: its outcome is returned untouched and it stops
 *   being watched by the core's deadline timer.
 * - The timer fires: the handoff starts while the handler keeps running. Once the task
 *   exists, the handler's signal is aborted and the handoff response returned.
 * - The handler settles while the handoff is in flight: the task, if it was started, is
 *   stopped, and the handler's outcome is returned.
 * - The handoff fails: the handler keeps running; if it has not settled by the deadline
 *   guard, the invocation fails with the {@link HandoffError}.
 */
export class Invocation implements Due {
  readonly #core: FallbackCore;
  readonly #target: HandoffTarget;
  readonly #extras = new LazyExtras('lambda');
  readonly dueAt: number;
  #state = State.Running;
  #failTimer: unknown;
  #pending: Outcome | undefined;
  #prewarm: Prewarm | undefined;
  #resolve!: (value: unknown) => void;
  #reject!: (error: unknown) => void;

  constructor(core: FallbackCore, event: unknown, context: Context, remainingMs: number) {
    this.#core = core;
    this.#target = handoffTarget(core, event, context, remainingMs);
    this.dueAt = this.#target.handOffAt;
  }

  run(fn: FallbackHandler<unknown, unknown>): Promise<unknown> {
    const route = this.#core.route;
    return route === undefined ? this.#race(fn) : this.#routeFirst(route, fn);
  }

  /** `routeToFargate` decides first: Fargate at once, or the race as usual. */
  async #routeFirst(
    route: NonNullable<FallbackCore['route']>,
    fn: FallbackHandler<unknown, unknown>,
  ): Promise<unknown> {
    const { event, context } = this.#target;
    if ((await route(event, context)) !== true) return this.#race(fn);
    this.#state = State.Done;
    const receipt = await this.#core.handoff.handOff({ ...this.#target, routed: true });
    return this.#core.respond(receipt, event, context);
  }

  #race(fn: FallbackHandler<unknown, unknown>): Promise<unknown> {
    const { event, context } = this.#target;
    let result: unknown;
    try {
      result = traceHandler({ runtime: 'lambda', requestId: context.awsRequestId }, () =>
        fn(event, context, this.#extras),
      );
    } catch (error) {
      return Promise.reject(error);
    }
    if (!isThenable(result)) return Promise.resolve(result);
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      this.#core.deadlines.watch(this);
      if (Prewarm.wanted(this.#core, this.#target)) {
        this.#prewarm = new Prewarm(this.#core, this.#target, () => this.#extras.journal());
        this.#core.deadlines.watch(this.#prewarm);
      }
      result.then(this.#onValue, this.#onError);
    });
  }

  #onValue = (value: unknown) => {
    this.#settle({ ok: true, value });
  };

  #onError = (error: unknown) => {
    this.#settle({ ok: false, error });
  };

  #settle(outcome: Outcome) {
    switch (this.#state) {
      case State.Running:
        this.#core.deadlines.unwatch(this);
        if (this.#prewarm) {
          // A pre-warmed task is cancelled before the outcome goes back (Lambda freezes after).
          this.#state = State.Done;
          this.#prewarm.finished().then(() => this.#deliver(outcome));
          return;
        }
        this.#deliver(outcome);
        return;
      case State.HandoffFailed:
        this.#core.clock.clearTimeout(this.#failTimer);
        this.#deliver(outcome);
        return;
      case State.HandingOff:
        this.#pending = outcome;
        return;
      default:
      // Settled after a handoff or after the invocation failed: the outcome belongs to nobody.
    }
  }

  #deliver(outcome: Outcome) {
    this.#state = State.Done;
    if (outcome.ok) this.#resolve(outcome.value);
    else this.#reject(outcome.error);
  }

  /** The handoff time came with the handler still running: the handoff starts. */
  onDue(): void {
    this.#state = State.HandingOff;
    const journal = this.#extras.journal();
    (this.#prewarm ? this.#prewarm.handOff(journal) : this.#core.handoff.handOff(this.#target, journal)).then(
      (receipt) => this.#onHandedOff(receipt),
      (error: HandoffError) => this.#onHandoffFailed(error),
    );
  }

  // Methods, not arrow fields: only an invocation that hands off needs them bound.
  #onHandedOff(receipt: HandoffAnswer): void {
    const pending = this.#pending;
    this.#state = State.Done;
    if (!pending) {
      this.#respondHandedOff(receipt);
      return;
    }
    // The handler finished while the handoff was in flight: one leg only completes.
    const lambdaWins = this.#prewarm ? this.#prewarm.lambdaWins(receipt) : Promise.resolve(true);
    lambdaWins.then((wins) => {
      if (!wins) {
        this.#respondHandedOff(receipt);
        return;
      }
      this.#core.handoff.withdraw(receipt, this.#target).then(() => this.#deliver(pending));
    });
  }

  #respondHandedOff(receipt: HandoffAnswer): void {
    this.#extras.abort(new HandedOffError(receipt.status === 'handed-off' ? receipt.taskArn : undefined));
    this.#core.respond(receipt, this.#target.event, this.#target.context).then(this.#resolve, this.#reject);
  }

  #onHandoffFailed(error: HandoffError): void {
    const pending = this.#pending;
    if (pending) {
      this.#deliver(pending);
      return;
    }
    this.#state = State.HandoffFailed;
    const { clock, handoff } = this.#core;
    const wait = handoff.failAt(this.#target.deadlineAt) - clock.now();
    this.#failTimer = clock.setTimeout(
      () => {
        if (this.#state !== State.HandoffFailed) return;
        this.#state = State.Done;
        this.#extras.abort(error);
        this.#reject(error);
      },
      Math.max(wait, 0),
    );
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
