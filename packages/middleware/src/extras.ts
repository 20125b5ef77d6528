import type { FallbackHandlerExtras } from './types.js';

/**
 * The handler's third argument. Its `AbortController` is created only when the handler reads
 * `signal` (creating one costs microseconds on Node 20), so a handler that never looks at it
 * pays nothing for it.
 */
export class LazyExtras implements FallbackHandlerExtras {
  readonly runtime: 'lambda' | 'fargate';
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  constructor(runtime: 'lambda' | 'fargate') {
    this.runtime = runtime;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** Extras for a call inside the runner: the runner's own signal when it passes one. */
export function runnerExtras(given: { signal?: AbortSignal } | undefined): FallbackHandlerExtras {
  return { signal: given?.signal ?? new AbortController().signal, runtime: 'fargate' };
}
