import { HandoffError } from '../errors.js';
import { abortAfter } from '../retry.js';
import { DEADLINE_GUARD_MS } from '../target.js';
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
 * A signal that aborts at the deadline guard, the last moment for the record of a handoff that
 * succeeded: the receipt is an answer like a failure, and must reach Lambda before its deadline
 * even from an event loop that runs late (a busy handler, a sandbox short of CPU). An answer after
 * the deadline is a timeout to Lambda, which runs an async invocation again from its start. A
 * record not written by then is logged; the runner's and the launcher's records follow.
 */
export function recordGuard(clock: Clock, deadlineAt: number): { signal: AbortSignal; dispose: () => void } {
  return deadlineGuard(
    clock,
    deadlineAt - DEADLINE_GUARD_MS,
    undefined,
    () => new Error('the record could not be written before the deadline'),
  );
}
