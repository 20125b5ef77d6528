import { HandoffError } from '../errors.js';
import { abortAfter } from '../retry.js';
import type { Clock } from '../types.js';

/**
 * A signal that aborts at `failAt` (the deadline less the guard), so that every AWS call of a
 * handoff ends in time for a failure to be reported; `reason` is what it aborts with (by default
 * the {@link HandoffError} of a handoff that did not finish in time).
 */
export function deadlineGuard(
  clock: Clock,
  failAt: number,
  requestId: string | undefined,
  reason: () => unknown = () =>
    new HandoffError('deadline', 'the handoff did not finish before the deadline guard', { requestId }),
): { signal: AbortSignal; dispose: () => void } {
  return abortAfter(clock, failAt - clock.now(), reason);
}

/**
 * How long before the hard deadline the record of a handoff that succeeded must be written. The
 * deadline guard is there to report a failure in time; once the task exists there is none to
 * report, so the record may use the guard's time too: returning the receipt takes far less.
 */
export const RECORD_GUARD_MS = 100;

/** A signal that aborts {@link RECORD_GUARD_MS} before the hard deadline: the last moment for a record. */
export function recordGuard(clock: Clock, deadlineAt: number): { signal: AbortSignal; dispose: () => void } {
  return abortAfter(
    clock,
    deadlineAt - RECORD_GUARD_MS - clock.now(),
    () => new Error('the record could not be written before the deadline'),
  );
}
