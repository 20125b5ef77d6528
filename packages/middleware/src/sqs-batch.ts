// What the adapters need of SQS batches before any handoff: the answer of a held batch, and the
// cheap test that decides whether a batch's redeliveries are looked up at all. The look-up itself
// (`sqs-redelivery.ts`) loads with the handoff module, only for a batch that holds a redelivered message.
import type { Context } from 'aws-lambda';
import type { FallbackCore } from './core.js';
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
  /** Nothing is left to run: answer {@link heldAnswer} without calling the handler. */
  empty: boolean;
}

/**
 * Looks up a batch's redelivered messages (see `sqs-redelivery.ts`), or answers undefined when
 * there is nothing to look up: no SQS batch, no redelivered message, holding off, no bucket. A
 * look-up that cannot load runs the whole batch, as SQS's at-least-once delivery allows.
 */
export async function screenRedeliveries(
  core: FallbackCore,
  event: unknown,
  context: Context,
): Promise<ScreenedBatch | undefined> {
  if (!core.config.holdSqsBatches || core.config.payloadBucket === undefined || !hasRedelivery(event)) {
    return undefined;
  }
  try {
    const { screenBatch } = await import('./handoff.js');
    return await screenBatch(core, event, context);
  } catch (error) {
    core.logger.warn(
      'The redelivered SQS messages of this batch could not be looked up; all of it runs here',
      {
        requestId: context.awsRequestId,
        error: describeError(error),
      },
    );
    return undefined;
  }
}
