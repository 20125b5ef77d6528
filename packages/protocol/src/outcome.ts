import { digest } from './run-task.js';

/**
 * Where an invocation stands after its handoff. With a pre-warmed handoff the wrapper first
 * records `standby` (a runner task is getting ready), then `handed-off` when the envelope is
 * written, or `not-needed` when the handler finished in Lambda and the standby task was cancelled.
 * A handoff that met Fargate's launch rate is `queued` until the launcher starts its task.
 *
 * @example
 * ```ts
 * import type { InvocationStatus } from '@immortal-lambda/protocol';
 * const done = (status: InvocationStatus) => status === 'succeeded' || status === 'failed';
 * ```
 */
export type InvocationStatus =
  | 'standby'
  | 'queued'
  | 'not-needed'
  | 'handed-off'
  | 'running'
  | 'relaunching'
  | 'succeeded'
  | 'failed';

/**
 * Who wrote an outcome record: the wrapper (`handed-off`, or `queued`), the launcher (`handed-off`
 * once it started a queued invocation's task), the runner of one attempt (`running`,
 * then `succeeded` or `failed`), the watchdog (`relaunching`, or the last `failed`), or the safety
 * net (`relaunching` an invocation that failed in Lambda).
 *
 * @example
 * ```ts
 * import type { OutcomeWriter } from '@immortal-lambda/protocol';
 * const writer: OutcomeWriter = 'runner';
 * ```
 */
export type OutcomeWriter = 'wrapper' | 'launcher' | 'runner' | 'watchdog' | 'safety-net';

/**
 * Why an attempt or the invocation failed.
 *
 * @example
 * ```ts
 * import type { OutcomeError } from '@immortal-lambda/protocol';
 * const line = (error: OutcomeError) => `${error.name}: ${error.message} (exit ${error.exitCode})`;
 * ```
 */
export interface OutcomeError {
  name: string;
  message: string;
  stack?: string;
  /** The runner container's exit code, when it exited. */
  exitCode?: number;
  /** ECS's stop code of the task, when the watchdog saw it stop. */
  stopCode?: string;
  /** True when the watchdog may still start the invocation again (interrupted, not a result). */
  retryable: boolean;
}

/**
 * One outcome record, as written to the payload bucket. Each writer writes objects of its own
 * (see {@link outcomeKey}), so no two writers ever race on one object.
 *
 * @example
 * ```ts
 * import type { OutcomeRecord } from '@immortal-lambda/protocol';
 * const describe = (record: OutcomeRecord) => `${record.requestId} ${record.status} #${record.attempt}`;
 * ```
 */
export interface OutcomeRecord {
  kind: typeof OUTCOME_KIND;
  version: typeof OUTCOME_VERSION;
  functionName: string;
  functionVersion?: string;
  requestId: string;
  status: InvocationStatus;
  /** The attempt this record is about: 1 for the handed-off task, 2 for the first relaunch, … */
  attempt: number;
  writer: OutcomeWriter;
  taskArn?: string;
  /** The handler's result, when its JSON fits {@link RESULT_INLINE_LIMIT}. */
  result?: unknown;
  /** Where the full result is, when it did not fit (`s3://bucket/key`). */
  resultLocation?: string;
  resultBytes?: number;
  error?: OutcomeError;
  /** Why the watchdog relaunched, or gave up. */
  reason?: string;
  /**
   * The invocation's steps when this attempt ended: finished in Lambda before the handoff, found
   * in the journal when this attempt started (answered without running), and finished in all.
   */
  steps?: { inLambda: number; fromJournal: number; total: number };
  /** When this attempt's runner reached each point of its start (epoch ms), and the dead time. */
  timeline?: RunnerTimeline;
  updatedAt: string;
}

/**
 * How a runner attempt started, in epoch milliseconds: the handoff began in Lambda (the task was
 * asked for, or the pre-warmed task was told to go), the image was pulled (from the task metadata,
 * when ECS gives it), the runner process started, the code was in place and imported, and the
 * handler was called. `deadTimeMs` is the time no handler ran: handoff → handler called.
 *
 * @example
 * ```ts
 * import type { RunnerTimeline } from '@immortal-lambda/protocol';
 * const startup = (t: RunnerTimeline) => t.handlerCalledAt - t.processStartedAt;
 * ```
 */
export interface RunnerTimeline {
  handoffAt: number;
  pullStartedAt?: number;
  pullStoppedAt?: number;
  processStartedAt: number;
  codeReadyAt: number;
  /** When the pre-warmed runner was told to go (it waited from codeReadyAt). */
  resumedAt?: number;
  handlerCalledAt: number;
  deadTimeMs: number;
}

export const OUTCOME_KIND = 'immortal-lambda.outcome';
export const OUTCOME_VERSION = 1;

/**
 * The largest result, as JSON bytes, kept in the record itself; a larger one is written beside it.
 *
 * @example
 * ```ts
 * import { RESULT_INLINE_LIMIT } from '@immortal-lambda/protocol';
 * const inline = (json: string) => Buffer.byteLength(json) <= RESULT_INLINE_LIMIT;
 * ```
 */
export const RESULT_INLINE_LIMIT = 32 * 1024;

/** A key part as it is when it is safe in a key, else its digest. */
export function keyPart(value: string): string {
  return /^[A-Za-z0-9._-]{1,128}$/.test(value) && value !== '.' && value !== '..' ? value : digest(value);
}

/**
 * The folder of one invocation's outcome records: `<prefix><function name>/<request id>/`.
 *
 * @example
 * ```ts
 * import { DEFAULT_OUTCOME_PREFIX, outcomeFolder } from '@immortal-lambda/protocol';
 * outcomeFolder(DEFAULT_OUTCOME_PREFIX, 'report', 'c0ffee'); // 'immortal-lambda/outcomes/report/c0ffee/'
 * ```
 */
export function outcomeFolder(prefix: string, functionName: string, requestId: string): string {
  return `${prefix}${keyPart(functionName)}/${keyPart(requestId)}/`;
}

/**
 * The object one writer writes: `handed-off` (the wrapper), `launched` (the launcher), `attempt-N` (the runner of attempt N),
 * `relaunch-N` (the watchdog or safety net starting attempt N), `final` (the watchdog giving up).
 * `attempt-N.result` holds a result too large for its record, `attempt-N.destination` and
 * `final.destination` a destination record too large for its destination; `journal` the steps and checkpoint
 * the runner persisted, which a relaunch resumes from.
 *
 * @example
 * ```ts
 * import { DEFAULT_OUTCOME_PREFIX, outcomeKey } from '@immortal-lambda/protocol';
 * outcomeKey(DEFAULT_OUTCOME_PREFIX, 'report', 'c0ffee', 'attempt-1');
 * // 'immortal-lambda/outcomes/report/c0ffee/attempt-1.json'
 * ```
 */
export function outcomeKey(
  prefix: string,
  functionName: string,
  requestId: string,
  entry:
    | 'handed-off'
    | 'launched'
    | 'standby'
    | 'resume'
    | 'claim'
    | 'final'
    | 'journal'
    | `attempt-${number}`
    | `relaunch-${number}`
    | `attempt-${number}.result`
    | `attempt-${number}.destination`
    | 'final.destination',
): string {
  return `${outcomeFolder(prefix, functionName, requestId)}${entry}.json`;
}

/**
 * What {@link summarizeOutcomes} makes of an invocation's records.
 *
 * @example
 * ```ts
 * import type { InvocationStatusView } from '@immortal-lambda/protocol';
 * const finished = (view: InvocationStatusView) => view.status === 'succeeded';
 * ```
 */
export interface InvocationStatusView {
  status: InvocationStatus;
  taskArn: string | undefined;
  attempts: number;
  result?: unknown;
  resultLocation?: string;
  error?: OutcomeError;
  steps?: { inLambda: number; fromJournal: number; total: number };
  /** How the latest attempt that started a handler got there (see {@link RunnerTimeline}). */
  timeline?: RunnerTimeline;
  updatedAt: string;
}

/** One rank for every status: a writer whose records all come between the wrapper's and the runner's. */
const ONE_RANK: Record<InvocationStatus, number> = {
  standby: 1,
  queued: 1,
  'not-needed': 1,
  'handed-off': 1,
  relaunching: 1,
  running: 1,
  succeeded: 1,
  failed: 1,
};

/** How late in an attempt's life a record is: a later record of the same attempt wins. */
const RANK: Record<OutcomeWriter, Record<InvocationStatus, number>> = {
  wrapper: {
    ...ONE_RANK,
    standby: 0,
    queued: 0,
    // The invocation finished in Lambda: its task was stopped, or its standby cancelled, whatever
    // that task recorded meanwhile. Nothing follows it.
    'not-needed': 5,
  },
  // The launcher started the task of a queued invocation: later than the wrapper's `queued`.
  launcher: ONE_RANK,
  'safety-net': ONE_RANK,
  watchdog: { ...ONE_RANK, succeeded: 4, failed: 4 },
  runner: {
    standby: 2,
    queued: 2,
    'not-needed': 2,
    'handed-off': 2,
    relaunching: 2,
    running: 2,
    succeeded: 3,
    failed: 3,
  },
};

/**
 * The invocation's status from all its records: the latest attempt's latest record, the task
 * of the latest attempt that has one, and the number of attempts started. `undefined` when there
 * is no record.
 *
 * @example
 * ```ts
 * import { summarizeOutcomes } from '@immortal-lambda/protocol';
 * summarizeOutcomes(records)?.status; // 'running'
 * ```
 */
export function summarizeOutcomes(records: readonly OutcomeRecord[]): InvocationStatusView | undefined {
  const ordered = [...records].sort(
    (a, b) =>
      a.attempt - b.attempt ||
      RANK[a.writer][a.status] - RANK[b.writer][b.status] ||
      a.updatedAt.localeCompare(b.updatedAt),
  );
  const last = ordered.at(-1);
  if (!last) return undefined;
  const withTask = ordered.filter((record) => record.taskArn).at(-1);
  const timed = ordered.filter((record) => record.timeline).at(-1);
  return {
    status: last.status,
    taskArn: withTask?.taskArn,
    attempts: Math.max(...ordered.map((record) => record.attempt)),
    ...(last.result !== undefined ? { result: last.result } : {}),
    ...(last.resultLocation ? { resultLocation: last.resultLocation } : {}),
    ...(last.error ? { error: last.error } : {}),
    ...(last.steps ? { steps: last.steps } : {}),
    ...(timed?.timeline ? { timeline: timed.timeline } : {}),
    updatedAt: last.updatedAt,
  };
}

/**
 * An outcome record with its kind and version, from the fields its writer knows.
 *
 * @example
 * ```ts
 * import { outcomeRecord } from '@immortal-lambda/protocol';
 * const record = outcomeRecord({
 *   functionName: 'report', requestId: 'c0ffee', status: 'running', attempt: 1, writer: 'runner',
 *   updatedAt: new Date().toISOString(),
 * });
 * ```
 */
export function outcomeRecord(fields: Omit<OutcomeRecord, 'kind' | 'version'>): OutcomeRecord {
  return { kind: OUTCOME_KIND, version: OUTCOME_VERSION, ...fields };
}

/**
 * Reads an outcome record from its JSON, or `undefined` for anything else.
 *
 * @example
 * ```ts
 * import { parseOutcome } from '@immortal-lambda/protocol';
 * parseOutcome('{"kind":"other"}'); // undefined
 * ```
 */
export function parseOutcome(text: string): OutcomeRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<OutcomeRecord>;
    if (value?.kind !== OUTCOME_KIND || typeof value.requestId !== 'string') return undefined;
    if (typeof value.attempt !== 'number' || typeof value.status !== 'string') return undefined;
    // A writer or status this version does not know (a newer writer's, a damaged object) is no
    // record it can order: skipped rather than misread.
    if (typeof value.writer !== 'string' || !Object.hasOwn(RANK, value.writer)) return undefined;
    if (!Object.hasOwn(RANK[value.writer], value.status) || typeof value.updatedAt !== 'string')
      return undefined;
    return value as OutcomeRecord;
  } catch {
    return undefined;
  }
}

/** The kind of the marker that tells a pre-warmed runner it is not needed. */
export const CANCEL_KIND = 'immortal-lambda.cancel';

/**
 * What the wrapper writes at the resume location of a pre-warmed task when the handler finished
 * in Lambda: the standby runner exits 0, not needed, as soon as it reads it.
 *
 * @example
 * ```ts
 * import { cancelMarker } from '@immortal-lambda/protocol';
 * const body = JSON.stringify(cancelMarker('c0ffee', Date.now()));
 * ```
 */
export function cancelMarker(
  requestId: string,
  at: number,
): { kind: typeof CANCEL_KIND; requestId: string; at: number } {
  return { kind: CANCEL_KIND, requestId, at };
}

/**
 * Whether a parsed resume object is the cancel marker (else it is the envelope to run).
 *
 * @example
 * ```ts
 * import { isCancelMarker } from '@immortal-lambda/protocol';
 * isCancelMarker({ kind: 'immortal-lambda.cancel', requestId: 'c0ffee', at: 0 }); // true
 * ```
 */
export function isCancelMarker(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === CANCEL_KIND;
}
