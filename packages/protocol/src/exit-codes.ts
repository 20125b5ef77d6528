/**
 * The runner's exit codes, one per outcome. ECS shows them as the container's exit code.
 *
 * @example
 * ```ts
 * import { EXIT_CODES } from '@immortal-lambda/protocol';
 * if (container.exitCode === EXIT_CODES.handlerError) console.error('the handler threw');
 * ```
 */
export const EXIT_CODES = {
  /** The handler returned. */
  success: 0,
  /** The handler threw or rejected. */
  handlerError: 1,
  /** The envelope or the runner's settings are missing or invalid. */
  badInput: 2,
  /** The code or a layer could not be fetched, verified or extracted. */
  codeFetch: 3,
  /** The handler module or export could not be loaded, or its module threw while loading. */
  handlerLoad: 4,
  /**
   * The handler ran past `FARGATE_FALLBACK_MAX_RUNTIME_MS` and did not stop within the grace
   * period after its signal aborted (as `timeout(1)` reports it).
   */
  timedOut: 124,
  /** The task was stopped (SIGTERM: StopTask, Spot interruption) before the handler finished. */
  stopped: 143,
} as const;

/**
 * One of the runner's exit codes.
 *
 * @example
 * ```ts
 * import { EXIT_CODES, type ExitCode } from '@immortal-lambda/protocol';
 * const failed = (code: ExitCode) => code !== EXIT_CODES.success;
 * ```
 */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/**
 * The outcome names used in the runner's record, by exit code.
 *
 * @example
 * ```ts
 * import { OUTCOMES } from '@immortal-lambda/protocol';
 * OUTCOMES[3]; // 'code-fetch-failed'
 * ```
 */
export const OUTCOMES: Record<ExitCode, string> = {
  0: 'success',
  1: 'handler-error',
  2: 'bad-input',
  3: 'code-fetch-failed',
  4: 'handler-load-failed',
  124: 'timed-out',
  143: 'stopped',
};

/**
 * Whether a runner task that stopped this way may be started again for the same invocation:
 * it stopped before the handler produced a result (interrupted, killed, never started, code not
 * fetched). A handler error, bad input, a load failure or a run past the maximum run time is the
 * invocation's result and would end the same way again.
 *
 * @example
 * ```ts
 * import { isRelaunchable } from '@immortal-lambda/protocol';
 * isRelaunchable(137); // true: killed, out of memory
 * isRelaunchable(1); // false: the handler threw
 * ```
 */
export function isRelaunchable(exitCode: number | undefined): boolean {
  if (exitCode === undefined) return true;
  return exitCode === EXIT_CODES.codeFetch || exitCode === EXIT_CODES.stopped || exitCode === 137;
}
