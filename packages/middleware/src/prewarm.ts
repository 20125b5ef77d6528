import type { Journal } from '@immortal-lambda/protocol/basics';
import type { FallbackCore } from './core.js';
import type { Due } from './deadline-timer.js';
import type { HandoffTarget } from './target.js';
import type { HandoffAnswer, HandoffReceipt } from './types.js';

/**
 * The pre-warmed task of one invocation (`prewarmMs`): started in standby `prewarmMs` before the
 * handoff, told to go at the handoff, or cancelled when the handler finishes in Lambda first.
 * Both adapters use it the same way: `start` when due, then `handOff` or `finished`.
 */
export class Prewarm implements Due {
  readonly dueAt: number;
  readonly #core: FallbackCore;
  readonly #target: HandoffTarget;
  readonly #journal: () => Journal | undefined;
  #standby: Promise<HandoffReceipt | undefined> | undefined;

  constructor(core: FallbackCore, target: HandoffTarget, journal: () => Journal | undefined) {
    this.#core = core;
    this.#target = target;
    this.#journal = journal;
    this.dueAt = Math.max(target.startedAt, target.handOffAt - core.prewarmMs);
  }

  /** Whether a pre-warm is worth starting for this invocation: on, and the handoff not immediate. */
  static wanted(core: FallbackCore, target: HandoffTarget): boolean {
    return core.prewarmMs > 0 && !target.immediate;
  }

  /** Starts the standby task. A failure was logged by the handoff; the handoff goes without it. */
  onDue(): void {
    // A standby start is never queued: it is started now or not at all.
    this.#standby = this.#core.handoff
      .handOff(this.#target, this.#journal(), { standby: true })
      .then((answer) => (answer.status === 'handed-off' ? answer : undefined))
      .catch(() => undefined);
  }

  /** The handoff: the standby task is told to go, or, without one, a task is started as usual. */
  async handOff(journal: Journal | undefined): Promise<HandoffAnswer> {
    this.#core.deadlines.unwatch(this);
    const standby = await this.#standby;
    const { handoff } = this.#core;
    return standby ? handoff.resume(standby, this.#target, journal) : handoff.handOff(this.#target, journal);
  }

  /**
   * The handler finished in Lambda during the handoff: whether its result stands. A task of the
   * handoff's own is stopped before it runs anything; the pre-warmed task, told to go, may already
   * be calling the handler, so Lambda and the task claim the invocation and one of them wins.
   */
  async lambdaWins(receipt: HandoffAnswer): Promise<boolean> {
    const standby = await this.#standby;
    if (!standby || receipt.status !== 'handed-off' || standby.taskArn !== receipt.taskArn) return true;
    return this.#core.handoff.claimForLambda(receipt, this.#target);
  }

  /** The handler finished in Lambda: a standby task is cancelled (it records "not needed"). */
  async finished(): Promise<void> {
    this.#core.deadlines.unwatch(this);
    const standby = await this.#standby;
    if (standby) await this.#core.handoff.cancel(standby, this.#target);
  }
}
