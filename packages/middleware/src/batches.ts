// What the adapters need of event source batches before any handoff: the answer of a held batch,
// and the tests that decide whether a batch is looked up at all: an SQS batch with a redelivered
// message (`sqs-redelivery.ts`), a stream batch with `ordered` (`stream-retry.ts`). The look-ups
// load with the handoff module.
import type { Context } from 'aws-lambda';
import { type FallbackCore, remainingTime } from './core.js';
import { describeError } from './logger.js';

/** A partial batch response naming these messages as failed: SQS keeps them. */
export function heldAnswer(messageIds: readonly string[]): {
  batchItemFailures: { itemIdentifier: string }[];
} {
  return { batchItemFailures: messageIds.map((itemIdentifier) => ({ itemIdentifier })) };
}

/**
 * A batch response with these messages added to its failures: the handler's own answer for the
 * messages it ran, and the held ones that another invocation is still working on.
 */
export function withFailures(response: unknown, messageIds: readonly string[]): unknown {
  if (messageIds.length === 0) return response;
  const own =
    response !== null && typeof response === 'object'
      ? ((response as { batchItemFailures?: unknown }).batchItemFailures ?? [])
      : [];
  const failures = Array.isArray(own) ? [...own] : [];
  const named = new Set(failures.map((failure) => (failure as { itemIdentifier?: unknown })?.itemIdentifier));
  for (const id of messageIds) if (!named.has(id)) failures.push({ itemIdentifier: id });
  return {
    ...(response !== null && typeof response === 'object' ? response : {}),
    batchItemFailures: failures,
  };
}

/**
 * Whether the event is an SQS batch with a message SQS delivered before: only then may another
 * invocation hold one of its messages. A first delivery costs nothing more.
 */
export function hasRedelivery(event: unknown): boolean {
  const records = (event as { Records?: unknown } | null | undefined)?.Records;
  if (!Array.isArray(records)) return false;
  return records.some(
    (record: { eventSource?: unknown; attributes?: { ApproximateReceiveCount?: unknown } }) => {
      return record?.eventSource === 'aws:sqs' && Number(record.attributes?.ApproximateReceiveCount) > 1;
    },
  );
}

/**
 * The batch as the handler gets it once its redeliveries were looked up: the messages left to
 * run, and the ones another invocation holds (answered as failed, so SQS keeps them).
 */
export interface ScreenedBatch {
  event: unknown;
  heldElsewhere: string[];
  /** The batch's answer without calling the handler: nothing of it is left to run here. */
  answer?: unknown;
}

/**
 * Looks up a batch another invocation may hold: an SQS batch's redelivered messages, a retried
 * stream batch with `ordered`. Undefined when there is nothing to look up (no such batch, the
 * setting off, no bucket). A look-up that cannot load runs the whole batch, at least once.
 */
export async function screenBatch(
  core: FallbackCore,
  event: unknown,
  context: Context,
): Promise<ScreenedBatch | undefined> {
  const { config } = core;
  if (config.payloadBucket === undefined) return undefined;
  const sqs = config.holdSqsBatches && hasRedelivery(event);
  const stream = !sqs && config.ordered && isStreamBatch(event);
  if (!sqs && !stream) return undefined;
  try {
    const handoff = await import('./handoff.js');
    if (sqs) return await handoff.screenRedeliveries(core, event, context);
    const retry = await handoff.screenStreamRetry(core, event, context, remainingTime(context));
    if (retry === undefined) return undefined;
    return 'answer' in retry
      ? { event, heldElsewhere: [], answer: retry.answer }
      : { event: retry.event, heldElsewhere: [] };
  } catch (error) {
    core.logger.warn(
      'The batch could not be looked up for an invocation that holds it; all of it runs here',
      {
        requestId: context.awsRequestId,
        error: describeError(error),
      },
    );
    return undefined;
  }
}

/** Whether the event is a Kinesis or DynamoDB stream batch. */
function isStreamBatch(event: unknown): boolean {
  const source = (event as { Records?: { eventSource?: unknown }[] } | null | undefined)?.Records?.[0]
    ?.eventSource;
  return source === 'aws:kinesis' || source === 'aws:dynamodb';
}
