import type { Clock } from './types.js';

/** Something due at a time (epoch ms): an invocation's handoff, middy's watchdog. */
export interface Due {
  readonly dueAt: number;
  onDue(): void;
}

type Handle = { ref?: () => unknown; unref?: () => unknown } | undefined;

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

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  watch(due: Due): void {
    this.#watched.add(due);
    if (due.dueAt < this.#armedAt || globalThis.setTimeout !== this.#armedWith) this.#arm(due.dueAt);
    else this.#handle?.ref?.();
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

  // Everything due by the time this timer was armed for is due now, whatever the clock says
  // (timers and the wall clock round differently); the rest waits for the next arming.
  #fire = (): void => {
    const firedFor = this.#armedAt;
    this.#handle = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    let next = Number.POSITIVE_INFINITY;
    for (const due of [...this.#watched]) {
      if (due.dueAt <= firedFor) {
        this.#watched.delete(due);
        due.onDue();
      } else if (due.dueAt < next) {
        next = due.dueAt;
      }
    }
    if (next !== Number.POSITIVE_INFINITY && next < this.#armedAt) this.#arm(next);
  };
}
