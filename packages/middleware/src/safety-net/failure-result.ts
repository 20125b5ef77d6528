import { ENV } from '@immortal-lambda/protocol';
import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
import type { Clock, FallbackLogger } from '../types.js';
import { forwardFailure } from './destinations.js';
import type { FailedInvocation } from './failure-records.js';

/**
 * A failure `relaunchFailures` does not start (see `failureCause`) is the invocation's result: it
 * is sent on to where final failures go (`finalArn`) in Lambda's record shape, or, with nowhere
 * to go, logged as an error. A record that cannot be sent throws, so that it is kept.
 */
export async function leaveAsResult(
  item: FailedInvocation,
  at: {
    functionArn: string;
    version: string;
    finalArn: string | undefined;
    destinations: DestinationClients | undefined;
  },
  core: { logger: FallbackLogger; clock: Clock },
): Promise<{ requestId: string; skipped: string }> {
  const { requestId } = item;
  const died = item.cause === 'handler-error' ? "the handler's own error" : `"${item.cause}"`;
  const skipped =
    item.cause === 'succeeded'
      ? 'the record is of a success, not a failure'
      : `it failed of ${died} (${item.error ?? 'no error given'}), not of the timeout, memory, a crash or a failed handoff`;
  // A success is nobody's failure: it is not sent on.
  if (item.cause === 'succeeded') {
    core.logger.info('A success record was not started on Fargate', { requestId });
    return { requestId, skipped };
  }
  if (!at.finalArn) {
    core.logger.error('A failed invocation was not started on Fargate: its failure is its result', {
      requestId,
      functionArn: at.functionArn,
      cause: item.cause,
      failure: item.error,
      hint: `set ${ENV.finalFailures} to keep such records`,
    });
    return { requestId, skipped };
  }
  const [errorName, ...rest] = (item.error ?? `${item.cause}: no error given`).split(': ');
  await forwardFailure({
    arn: at.finalArn,
    requestId,
    functionArn: at.functionArn,
    version: at.version,
    event: item.event,
    error: { name: errorName || 'Error', message: rest.join(': ') || (item.error ?? '') },
    clients: at.destinations,
    now: core.clock.now(),
  });
  core.logger.info('A failed invocation was not started on Fargate: its failure was sent on', {
    requestId,
    cause: item.cause,
    destination: at.finalArn,
  });
  return { requestId, skipped: `${skipped}; sent to ${at.finalArn}` };
}
