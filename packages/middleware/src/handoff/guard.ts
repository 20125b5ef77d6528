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
