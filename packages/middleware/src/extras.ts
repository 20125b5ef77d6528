import { type Journal, JournalRecorder } from '@immortal-lambda/protocol/basics';
import type { FallbackHandlerExtras } from './types.js';

/**
 * The handler's third argument. Its `AbortController` is created only when the handler reads
 * `signal` (creating one costs microseconds on Node 20), and its journal only when the handler
 * takes a step or a checkpoint, so a handler that uses neither pays nothing for them.
 */
export class LazyExtras implements FallbackHandlerExtras {
  readonly runtime: 'lambda' | 'fargate';
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #journal: JournalRecorder | undefined;
  readonly #seed: Journal | undefined;
  readonly #onChange: ((journal: Journal) => void) | undefined;
  readonly #given: AbortSignal | undefined;
  #step: ((name: string, fn: () => unknown) => Promise<unknown>) | undefined;
  #checkpoint: ((state: unknown) => void) | undefined;

  constructor(
    runtime: 'lambda' | 'fargate',
    given?: {
      signal?: AbortSignal | undefined;
      seed?: Journal | undefined;
      onChange?: ((journal: Journal) => void) | undefined;
    },
  ) {
    this.runtime = runtime;
    this.#given = given?.signal;
    this.#seed = given?.seed;
    this.#onChange = given?.onChange;
  }

  /** The signal: the one given by the caller that owns it (the runner, middy), else created on first read. */
  get signal(): AbortSignal {
    if (this.#given) return this.#given;
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get lastCheckpoint(): unknown {
    return this.#journal ? this.#journal.lastCheckpoint : this.#seed?.checkpoint?.value;
  }

  // Handlers destructure these (`{ step, checkpoint }`): each is a function bound to this
  // invocation, made on first read only, so that a handler using neither allocates nothing.
  get step(): <T>(name: string, fn: () => T | Promise<T>) => Promise<T> {
    this.#step ??= (name, fn) => this.#recorder().step(name, fn);
    return this.#step as <T>(name: string, fn: () => T | Promise<T>) => Promise<T>;
  }

  get checkpoint(): (state: unknown) => void {
    this.#checkpoint ??= (state) => this.#recorder().checkpoint(state);
    return this.#checkpoint;
  }

  /** The journal as the handoff carries it: finished steps and the last checkpoint, if any. */
  journal(): Journal | undefined {
    return this.#journal?.snapshot() ?? this.#seed;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }

  #recorder(): JournalRecorder {
    this.#journal ??= new JournalRecorder(this.#seed, this.#onChange);
    return this.#journal;
  }
}

/** What a caller that owns the signal and the journal passes (the runner, a middy handler). */
export interface GivenExtras {
  signal?: AbortSignal | undefined;
  journal?: Journal | undefined;
  onJournal?: ((journal: Journal) => void) | undefined;
}

/**
 * Extras around a signal and journal given from outside: inside the runner, its own signal and
 * the journal the envelope carried (the runner persists each change).
 */
export function runnerExtras(
  given: GivenExtras | undefined,
  runtime: 'lambda' | 'fargate' = 'fargate',
): LazyExtras {
  return new LazyExtras(runtime, { signal: given?.signal, seed: given?.journal, onChange: given?.onJournal });
}
