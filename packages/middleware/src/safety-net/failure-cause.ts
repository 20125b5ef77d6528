/**
 * Why an invocation failed in Lambda, as its failure record tells: what `relaunchFailures`
 * starts on Fargate (it died of the clock, of memory, of a crashed runtime, or its handoff
 * failed) and what it leaves as the invocation's result (the handler threw: Lambda already
 * retried it, and a rerun would throw again).
 *
 * @example
 * ```ts
 * import type { FailureCause } from '@immortal-lambda/middleware/safety-net';
 * const rerun = (cause: FailureCause) => cause === 'timeout' || cause === 'out-of-memory';
 * ```
 */
export type FailureCause =
  | 'timeout'
  | 'out-of-memory'
  | 'crash'
  | 'handoff'
  | 'handler-error'
  | 'never-ran'
  | 'succeeded'
  | 'unknown';

/**
 * The causes `relaunchFailures` starts on Fargate. A record that says nothing of why (`unknown`)
 * is started too: nothing shows that a rerun would fail the same way.
 */
export const RELAUNCHED_CAUSES: ReadonlySet<FailureCause> = new Set([
  'timeout',
  'out-of-memory',
  'crash',
  'handoff',
  'unknown',
]);

/**
 * The cause of a failure from what Lambda's record says: the `responsePayload`'s `errorType` and
 * `errorMessage` (a destination record), or a dead-letter message's `ErrorMessage`, and the
 * record's `condition`. Lambda reports a timeout as `Sandbox.Timedout` or "Task timed out after
 * N seconds", out of memory as `Runtime.OutOfMemory` or a runtime killed by a signal, a runtime
 * that exited as `Runtime.ExitError`; the wrapper's failed handoff is a `HandoffError`. An event
 * whose age or attempts ran out before it ran (`EventAgeExceeded` and no response) never ran; a
 * record whose condition is `Success` is no failure at all, and is never started.
 *
 * @example
 * ```ts
 * import { failureCause } from '@immortal-lambda/middleware/safety-net';
 * failureCause({ errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 900.00 seconds' }); // 'timeout'
 * ```
 */
export function failureCause(failure: {
  errorType?: string | undefined;
  errorMessage?: string | undefined;
  condition?: string | undefined;
  responded?: boolean;
}): FailureCause {
  // A success record (an on-success destination's, or EventBridge's "Success" event) is no failure.
  if (failure.condition === 'Success') return 'succeeded';
  const type = failure.errorType ?? '';
  const message = failure.errorMessage ?? '';
  if (type === 'Sandbox.Timedout' || /Task timed out/i.test(message)) return 'timeout';
  if (type === 'Runtime.OutOfMemory' || /signal: killed|out of memory|OutOfMemory/i.test(message))
    return 'out-of-memory';
  if (type === 'HandoffError') return 'handoff';
  if (type === 'Runtime.ExitError' || type === 'Runtime.Unknown' || /Runtime exited/i.test(message))
    return 'crash';
  if (!type && !message)
    return failure.condition === 'EventAgeExceeded' && failure.responded === false ? 'never-ran' : 'unknown';
  return 'handler-error';
}
