// What the adapters need of event source batches before any handoff: the answer of a held batch,
// and the test, on the event alone, that decides whether a batch is looked up at all: an SQS batch
// with a redelivered message (`sqs-redelivery.ts`), a stream batch with `ordered`
// (`stream-retry.ts`). The look-ups run in the handoff module, with its clients.
import type { Context } from 'aws-lambda';
import type { ResolvedConfig } from './config.js';
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

/** Which look-up a batch needs: an SQS batch's redelivered messages, or a retried stream batch. */
export type HeldKind = 'sqs' | 'stream';

/**
 * Whether another invocation may hold this batch, decided from the event alone so that every
 * other invocation goes straight to its handler: an SQS batch with a redelivered message
 * (`holdSqsBatches`), a Kinesis or DynamoDB batch (`ordered`); never without the payload bucket.
 */
export function heldKindOf(config: ResolvedConfig, event: unknown): HeldKind | undefined {
  if (config.payloadBucket === undefined) return undefined;
  if (config.holdSqsBatches && hasRedelivery(event)) return 'sqs';
  if (config.ordered && isStreamBatch(event)) return 'stream';
  return undefined;
}

/**
 * Looks the batch up through the handoff mechanism (its clients, loaded with it); the remaining
 * time is read once the look-up may wait. A look-up that fails runs the whole batch, at least once.
 */
export async function screenBatch(
  core: FallbackCore,
  kind: HeldKind,
  event: unknown,
  context: Context,
): Promise<ScreenedBatch | undefined> {
  try {
    return await core.handoff.screen(kind, event, context, remainingTime(context));
  } catch (error) {
    core.logger.warn(
      'The batch could not be looked up for an invocation that holds it; all of it runs here',
      { requestId: context.awsRequestId, error: describeError(error) },
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
