import type { Clock } from './types.js';

/** Something due at a time (epoch ms): an invocation's handoff, middy's watchdog. */
export interface Due {
  readonly dueAt: number;
  onDue(): void;
}

type Handle = { ref?: () => unknown; unref?: () => unknown } | undefined;

/**
 * Work to do once, shortly before the first handoff of a sandbox: `onNear` runs when some watched
 * invocation comes within `leadMs` of being due, and never if every invocation finishes earlier.
 */
export interface Ahead {
  readonly leadMs: number;
  onNear(): void;
}

/**
 * One timer for every invocation of a wrapped handler. Arming and clearing a Node timer per
 * invocation costs about 0.25 µs, half the fast path; here an invocation that finishes in time
 * only joins and leaves a set, and the timer stays armed (unreferenced, so it keeps no process
 * alive) for the next one. Invocations of one function share a timeout, so a later invocation is
 * due later: when the old timer fires, it fires what is due by then and re-arms for the rest.
 */
export class DeadlineTimer {
  readonly #clock: Clock;
  readonly #watched = new Set<Due>();
  #handle: Handle;
  #armedAt = Number.POSITIVE_INFINITY;
  // Test fake timers replace the global timers: a timer armed before they came is not reused.
  #armedWith: unknown;
  /** Still to run: the timer wakes `leadMs` before each due time until it has. */
  #ahead: Ahead | undefined;

  constructor(clock: Clock, ahead?: Ahead) {
    this.#clock = clock;
    this.#ahead = ahead !== undefined && ahead.leadMs > 0 ? ahead : undefined;
  }

  watch(due: Due): void {
    this.#watched.add(due);
    const wakeAt = this.#wakeAt(due);
    if (wakeAt < this.#armedAt || globalThis.setTimeout !== this.#armedWith) this.#arm(wakeAt);
    else this.#handle?.ref?.();
  }

  /** When the timer must wake for a due: its time, or `leadMs` earlier while `onNear` has not run. */
  #wakeAt(due: Due): number {
    return this.#ahead === undefined ? due.dueAt : due.dueAt - this.#ahead.leadMs;
  }

  unwatch(due: Due): void {
    this.#watched.delete(due);
    if (this.#watched.size === 0) this.#handle?.unref?.();
  }

  #arm(at: number): void {
    const clock = this.#clock;
    if (this.#handle !== undefined) clock.clearTimeout(this.#handle);
    this.#armedAt = at;
    this.#armedWith = globalThis.setTimeout;
    this.#handle = clock.setTimeout(this.#fire, Math.max(at - clock.now(), 0)) as Handle;
  }

  // Everything due by the time this timer was armed for, or by now, is due now, whatever the
  // clock says (timers and the wall clock round differently); the rest waits for the next arming.
  #fire = (): void => {
    const firedFor = Math.max(this.#armedAt, this.#clock.now());
    this.#handle = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const ahead = this.#ahead;
    if (ahead !== undefined && [...this.#watched].some((due) => this.#wakeAt(due) <= firedFor)) {
      this.#ahead = undefined;
      ahead.onNear();
    }
    let next = Number.POSITIVE_INFINITY;
    for (const due of [...this.#watched]) {
      if (due.dueAt <= firedFor) {
        this.#watched.delete(due);
        due.onDue();
      } else if (this.#wakeAt(due) < next) {
        next = this.#wakeAt(due);
      }
    }
    if (next !== Number.POSITIVE_INFINITY && next < this.#armedAt) this.#arm(next);
  };
}
