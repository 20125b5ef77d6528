import { ENV } from '@immortal-lambda/protocol';
import { RunnerError } from '../errors.js';
import { EXIT_CODES, type ExitCode } from '../exit-codes.js';
import { jsonSafe } from '../json-safe.js';
import type { RunnerSettings } from '../settings.js';
import type { HandlerEnd } from './call-handler.js';
import { Stopped } from './stop.js';

/**
 * How a run ends: its exit code, what its last log line and record say, and the handler's value
 * when it succeeded. Every exit code the runner returns is decided in this file.
 */
export interface Ending {
  code: ExitCode;
  attributes: Record<string, unknown>;
  value?: unknown;
}

/** An error as a log line and a record carry it: name, message, stack, and its cause. */
export function describe(error: unknown, seen = new Set<unknown>()): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: safeString(error) };
  const record: Record<string, unknown> = { name: error.name, message: error.message, stack: error.stack };
  seen.add(error);
  // A cause that points back along the chain (itself, or a cycle) is named, not followed.
  if (error.cause !== undefined)
    record.cause = seen.has(error.cause) ? { message: '[Circular cause]' } : describe(error.cause, seen);
  return record;
}

/** A thrown value as text, whatever it is (a BigInt, an object whose toString throws). */
function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * The run failed before its handler was called: stopped (SIGTERM), or the exit code of the
 * runner error (bad input, code fetch, handler load); anything else is bad input.
 */
export function preparationFailed(error: unknown): Ending {
  if (error instanceof Stopped) return { code: EXIT_CODES.stopped, attributes: { error: describe(error) } };
  const code = error instanceof RunnerError ? error.exitCode : EXIT_CODES.badInput;
  return { code, attributes: { error: describe(error) } };
}

/** The handler's run ended: succeeded, failed, stopped (SIGTERM) or timed out. */
export function handlerEnded(end: HandlerEnd, settings: RunnerSettings, stopRequested: boolean): Ending {
  const handlerDurationMs = end.handlerMs;
  if (end.kind === 'stopped') {
    return {
      code: EXIT_CODES.stopped,
      attributes: {
        handlerDurationMs,
        error: {
          message: `the handler did not finish within the ${settings.stopGraceMs} ms grace period after SIGTERM`,
        },
      },
    };
  }
  if (end.kind === 'timed-out' || (end.timedOut && !end.settled.ok)) {
    return {
      code: EXIT_CODES.timedOut,
      attributes: {
        handlerDurationMs,
        error: {
          name: 'TimeoutError',
          message: `the handler ran past ${ENV.maxRuntimeMs} (${settings.maxRuntimeMs} ms)${
            end.kind === 'timed-out'
              ? ` and did not stop within the ${settings.stopGraceMs} ms grace period`
              : ', was aborted and stopped'
          }`,
        },
      },
    };
  }
  if (end.settled.ok) {
    // The handler succeeded: its result is kept as far as JSON can carry it, and what could not
    // be kept is said, rather than the run failing after the work was done.
    const kept = jsonSafe(end.settled.value);
    return {
      code: EXIT_CODES.success,
      attributes: {
        handlerDurationMs,
        resultBytes: kept.json === undefined ? 0 : Buffer.byteLength(kept.json),
        ...(kept.problem ? { resultNote: `the result is not JSON as returned: ${kept.problem}` } : {}),
      },
      value: kept.value,
    };
  }
  return {
    code: stopRequested ? EXIT_CODES.stopped : EXIT_CODES.handlerError,
    attributes: { handlerDurationMs, error: describe(end.settled.error) },
  };
}

/** The fresh handler process ended by a signal before it wrote its outcome record. */
export const CHILD_UNREPORTED = -1;

/** The exit code a fresh handler process reported, or {@link CHILD_UNREPORTED} when it was killed. */
export function childExit(child: { code: number | null; signal: string | null }): number {
  if (child.code !== null) return child.code;
  return child.signal === 'SIGTERM' ? EXIT_CODES.stopped : CHILD_UNREPORTED;
}

/** The fresh handler process was killed before it could record anything. */
export function killedChild(): Ending {
  return {
    code: EXIT_CODES.stopped,
    attributes: {
      error: {
        message: 'the handler process ended by a signal without an outcome record (killed: out of memory?)',
      },
    },
  };
}

/** A pre-warmed task that was not needed exits 0. */
export const NOT_NEEDED: ExitCode = EXIT_CODES.success;
