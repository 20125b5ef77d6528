import type { RunnerDependencies } from '../runner.js';

/** The task was asked to stop before its handler ran. */
export class Stopped extends Error {}

/**
 * The task's stop signal (SIGTERM) over a run: before the handler runs it ends the preparation
 * ({@link StopWatch.race}); while the handler runs it calls what {@link StopWatch.onStop} set.
 */
export class StopWatch {
  #requested = false;
  #listener: () => void = () => {};
  readonly #unsubscribe: () => void;
  readonly #beforeHandler: Promise<never>;

  constructor(onStop: RunnerDependencies['onStop']) {
    this.#unsubscribe = onStop(() => {
      this.#requested = true;
      this.#listener();
    });
    this.#beforeHandler = new Promise<never>((_resolve, reject) => {
      this.#listener = () =>
        reject(new Stopped('the task was asked to stop (SIGTERM) before the handler ran'));
    });
    this.#beforeHandler.catch(() => {});
  }

  /** Whether the stop signal came. */
  get requested(): boolean {
    return this.#requested;
  }

  /** Settles like `work`, or rejects with {@link Stopped} as soon as the stop signal comes. */
  race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.#beforeHandler]);
  }

  /** From now on the stop signal calls `listener`: at once when it came already. */
  onStop(listener: () => void): void {
    this.#listener = listener;
    if (this.#requested) listener();
  }

  /** Stops listening for the signal. */
  unsubscribe(): void {
    this.#unsubscribe();
  }
}
