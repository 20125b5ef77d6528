import { publishCheckpoint, traceStep } from './diagnostics.js';
import { ERROR_KIND, ImmortalLambdaError } from './errors.js';

/**
 * What an invocation has done so far, as the envelope carries it across the handoff: the results
 * of its finished steps, by name, and its last checkpoint.
 *
 * @example
 * ```ts
 * import type { Journal } from '@immortal-lambda/protocol';
 * const done = (journal: Journal) => Object.keys(journal.steps);
 * ```
 */
export interface Journal {
  /** Finished steps by name; `result` is absent when the step returned `undefined`. */
  steps: Record<string, { result?: unknown }>;
  /** The last checkpoint recorded, when there was one. */
  checkpoint?: { value: unknown };
}

/**
 * The most steps one invocation may record.
 *
 * @example
 * ```ts
 * import { MAX_JOURNAL_STEPS } from '@immortal-lambda/protocol';
 * const batches = Math.min(items.length, MAX_JOURNAL_STEPS);
 * ```
 */
export const MAX_JOURNAL_STEPS = 1_000;

/**
 * The largest journal, as JSON bytes (step results and the checkpoint together): it travels in
 * the envelope and is persisted by the runner, so keep step results small (ids, counts, keys of
 * objects written elsewhere), not the data itself.
 *
 * @example
 * ```ts
 * import { MAX_JOURNAL_BYTES } from '@immortal-lambda/protocol';
 * MAX_JOURNAL_BYTES; // 262144
 * ```
 */
export const MAX_JOURNAL_BYTES = 256 * 1024;

/**
 * A step or checkpoint was used wrongly: a duplicate or invalid step name, a result or state JSON
 * cannot carry, or a journal past its limits. Thrown where the step or checkpoint ends.
 *
 * @example
 * ```ts
 * import { StepError } from '@immortal-lambda/protocol';
 * const isStepError = (error: unknown) => error instanceof StepError;
 * ```
 */
export class StepError extends ImmortalLambdaError {
  static override readonly [ERROR_KIND] = 'StepError';
}

/** A JSON copy of a value (so later changes to it do not change the record), and its size. */
function snapshot(value: unknown, what: string): { copy: unknown; bytes: number } {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new StepError(`${what} cannot be recorded as JSON: ${(error as Error).message}`, { cause: error });
  }
  if (json === undefined) return { copy: undefined, bytes: 0 };
  return { copy: JSON.parse(json), bytes: Buffer.byteLength(json) };
}

/**
 * The journal of one run of a handler: `step(name, fn)` runs `fn` once per invocation, across the
 * handoff and relaunches, and `checkpoint(state)` records progress. Seeded with what the envelope
 * (or a persisted journal) carries; `onChange` hears of each finished step and checkpoint.
 *
 * @example
 * ```ts
 * import { JournalRecorder } from '@immortal-lambda/protocol';
 * const journal = new JournalRecorder(envelope.journal);
 * const rows = await journal.step('load', () => loadRows());
 * ```
 */
export class JournalRecorder {
  readonly #steps: Record<string, { result?: unknown }>;
  #checkpoint: { value: unknown } | undefined;
  readonly #ranNow = new Set<string>();
  readonly #onChange: ((journal: Journal) => void) | undefined;
  #bytes = 0;
  #count: number;
  #checkpointBytes = 0;
  /** Steps answered from the journal instead of being run. */
  replayed = 0;
  /** Steps run in this process. */
  ran = 0;

  constructor(seed?: Journal, onChange?: (journal: Journal) => void) {
    // Keyed by the handler's own names: an object without a prototype, so that a step named
    // `constructor`, `toString` or `__proto__` is a step like any other.
    this.#steps = Object.assign(
      Object.create(null) as Record<string, { result?: unknown }>,
      seed?.steps ?? {},
    );
    this.#count = Object.keys(this.#steps).length;
    this.#checkpoint = seed?.checkpoint;
    this.#checkpointBytes = seed?.checkpoint ? snapshot(seed.checkpoint.value, 'the checkpoint').bytes : 0;
    this.#onChange = onChange;
    this.#bytes = seed ? snapshot(seed, 'the journal').bytes : 0;
  }

  /** The last checkpoint's value, recorded in this run or an earlier one; `undefined` before any. */
  get lastCheckpoint(): unknown {
    return this.#checkpoint?.value;
  }

  /** The journal as it is now: finished steps and the last checkpoint. */
  snapshot(): Journal {
    return { steps: { ...this.#steps }, ...(this.#checkpoint ? { checkpoint: this.#checkpoint } : {}) };
  }

  async step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
      throw new StepError(`a step name must be a string of 1 to 256 characters, not ${JSON.stringify(name)}`);
    }
    if (typeof fn !== 'function') throw new StepError(`step "${name}" was given no function to run`);
    if (this.#ranNow.has(name)) {
      throw new StepError(
        `step "${name}" was already used in this run: step names key the journal, so each must be unique within an invocation (add the item's id to the name)`,
      );
    }
    this.#ranNow.add(name);
    const recorded = Object.hasOwn(this.#steps, name) ? this.#steps[name] : undefined;
    if (recorded) {
      this.replayed += 1;
      return recorded.result as T;
    }
    if (this.#count >= MAX_JOURNAL_STEPS) {
      throw new StepError(
        `step "${name}" would be step ${MAX_JOURNAL_STEPS + 1} of this invocation; the journal holds at most ${MAX_JOURNAL_STEPS}: make steps coarser, or use checkpoint() for loops`,
      );
    }
    const result = await traceStep(name, fn);
    const { copy, bytes } = snapshot(result, `the result of step "${name}"`);
    this.#grow(bytes + name.length + 16, `step "${name}"`);
    this.#steps[name] = copy === undefined ? {} : { result: copy };
    this.#count += 1;
    this.ran += 1;
    this.#onChange?.(this.snapshot());
    return result;
  }

  checkpoint(state: unknown): void {
    const { copy, bytes } = snapshot(state, 'the checkpoint');
    this.#grow(bytes - this.#checkpointBytes, 'the checkpoint');
    this.#checkpointBytes = bytes;
    this.#checkpoint = { value: copy };
    publishCheckpoint(copy);
    this.#onChange?.(this.snapshot());
  }

  #grow(bytes: number, what: string): void {
    if (this.#bytes + bytes > MAX_JOURNAL_BYTES) {
      throw new StepError(
        `${what} would make the journal ${this.#bytes + bytes} bytes, over its limit of ${MAX_JOURNAL_BYTES}: record small results (ids, counts, keys of objects written elsewhere), not the data itself`,
      );
    }
    this.#bytes += bytes;
  }
}

/**
 * Where the runner leaves the journal (and where to report changes) on the Lambda context it
 * passes, for adapters whose handler signature has no room for it (middy): a global symbol, so
 * that any copy of the middleware finds it.
 *
 * @example
 * ```ts
 * import { GIVEN_JOURNAL } from '@immortal-lambda/protocol';
 * const given = (context as unknown as Record<symbol, unknown>)[GIVEN_JOURNAL];
 * ```
 */
export const GIVEN_JOURNAL: unique symbol = Symbol.for('immortal-lambda.journal') as never;
