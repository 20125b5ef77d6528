import { keyPart } from './outcome.js';

/**
 * How a handed-off SQS batch is kept in the queue until the runner has finished it: the wrapper
 * answers every message as a batch item failure (Lambda deletes none), makes them invisible for
 * {@link HOLD_VISIBILITY_S}, and leaves a marker per message naming the invocation; the runner
 * keeps them invisible while it works, deletes each message it finished, and hands the ones the
 * handler failed back to SQS's own redelivery and redrive.
 */
export const HELD_MESSAGE_KIND = 'immortal-lambda.held-message';
export const HELD_MESSAGE_VERSION = 1;

/** How long the wrapper makes a handed-off batch invisible: time enough for the task to start. */
export const HOLD_VISIBILITY_S = 30 * 60;
/** How long each of the runner's extensions makes the messages invisible, and how often it extends. */
export const RUNNER_VISIBILITY_S = 15 * 60;
export const RUNNER_EXTEND_EVERY_MS = 5 * 60 * 1000;
/** SQS's ceiling: a message stays invisible at most 12 hours after it was received. */
export const MAX_VISIBILITY_S = 12 * 60 * 60;
/** Entries of one ChangeMessageVisibilityBatch or DeleteMessageBatch call. */
export const SQS_BATCH_ENTRIES = 10;

/**
 * One message of an SQS batch event, as the hold needs it.
 *
 * @example
 * ```ts
 * import { sqsBatchOf } from '@immortal-lambda/protocol';
 * const ids = (sqsBatchOf(event) ?? []).map((message) => message.messageId);
 * ```
 */
export interface SqsBatchMessage {
  messageId: string;
  receiptHandle: string;
  queueUrl: string;
  /** `attributes.ApproximateReceiveCount`: above 1, the message was delivered before. */
  receiveCount: number;
}

/**
 * The marker of a held message, at {@link heldMessageKey}: which invocation holds it, and the
 * receipt handle of its latest delivery (a redelivery writes its own, which the runner then uses).
 *
 * @example
 * ```ts
 * import type { HeldMessage } from '@immortal-lambda/protocol';
 * const holder = (marker: HeldMessage) => marker.requestId;
 * ```
 */
export interface HeldMessage {
  kind: typeof HELD_MESSAGE_KIND;
  version: typeof HELD_MESSAGE_VERSION;
  functionName: string;
  requestId: string;
  messageId: string;
  queueUrl: string;
  receiptHandle: string;
  /** When the latest delivery was held (epoch ms). */
  heldAt: number;
}

/**
 * An SQS queue's URL from its ARN (`arn:aws:sqs:<region>:<account>:<name>`).
 *
 * @example
 * ```ts
 * import { queueUrlOf } from '@immortal-lambda/protocol';
 * queueUrlOf('arn:aws:sqs:eu-west-1:123456789012:imports'); // https://sqs.eu-west-1.amazonaws.com/123456789012/imports
 * ```
 */
export function queueUrlOf(arn: string): string | undefined {
  const [, partition, service, region, account, name] = arn.split(':');
  if (service !== 'sqs' || !region || !account || !name) return undefined;
  const domain = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://sqs.${region}.${domain}/${account}/${name}`;
}

/**
 * The messages of an SQS event source mapping's batch, or undefined for any other event (every
 * record must come from SQS and name its message, receipt and queue).
 *
 * @example
 * ```ts
 * import { sqsBatchOf } from '@immortal-lambda/protocol';
 * if (sqsBatchOf(event)) console.log('an SQS batch');
 * ```
 */
export function sqsBatchOf(event: unknown): SqsBatchMessage[] | undefined {
  const records = (event as { Records?: unknown } | null | undefined)?.Records;
  if (!Array.isArray(records) || records.length === 0) return undefined;
  const messages: SqsBatchMessage[] = [];
  for (const record of records as Record<string, unknown>[]) {
    const queueUrl =
      typeof record?.eventSourceARN === 'string' ? queueUrlOf(record.eventSourceARN) : undefined;
    if (
      record?.eventSource !== 'aws:sqs' ||
      typeof record.messageId !== 'string' ||
      typeof record.receiptHandle !== 'string' ||
      queueUrl === undefined
    )
      return undefined;
    const count = Number((record.attributes as Record<string, unknown> | undefined)?.ApproximateReceiveCount);
    messages.push({
      messageId: record.messageId,
      receiptHandle: record.receiptHandle,
      queueUrl,
      receiveCount: Number.isFinite(count) ? count : 1,
    });
  }
  return messages;
}

/**
 * Where the marker of a held message is: beside the function's outcome records, by message id,
 * so that a redelivery finds the invocation that holds it.
 *
 * @example
 * ```ts
 * import { heldMessageKey } from '@immortal-lambda/protocol';
 * heldMessageKey('immortal-lambda/outcomes/', 'imports', 'a1b2'); // immortal-lambda/outcomes/imports/held-messages/a1b2.json
 * ```
 */
export function heldMessageKey(prefix: string, functionName: string, messageId: string): string {
  return `${prefix}${keyPart(functionName)}/held-messages/${keyPart(messageId)}.json`;
}

/**
 * A marker read back, or undefined when the text is not one.
 *
 * @example
 * ```ts
 * import { parseHeldMessage } from '@immortal-lambda/protocol';
 * const marker = parseHeldMessage(await body.transformToString());
 * ```
 */
export function parseHeldMessage(text: string): HeldMessage | undefined {
  return parseMarker<HeldMessage>(text, HELD_MESSAGE_KIND, ['requestId', 'receiptHandle', 'queueUrl']);
}

/**
 * A marker of `kind` read back from its JSON, when each of `fields` is a string; else undefined.
 * The held SQS messages' and the held stream batches' markers are read with it.
 */
export function parseMarker<T extends { kind: string }>(
  text: string,
  kind: T['kind'],
  fields: readonly (keyof T & string)[],
): T | undefined {
  try {
    const value = JSON.parse(text) as Record<string, unknown> | null;
    if (value?.kind !== kind || fields.some((field) => typeof value[field] !== 'string')) return undefined;
    return value as T;
  } catch {
    return undefined;
  }
}

/**
 * The messages a handler's result names as failed (`batchItemFailures[].itemIdentifier`).
 *
 * @example
 * ```ts
 * import { failedItems } from '@immortal-lambda/protocol';
 * failedItems({ batchItemFailures: [{ itemIdentifier: 'a1' }] }); // Set { 'a1' }
 * ```
 */
export function failedItems(result: unknown): Set<string> {
  const failures = (result as { batchItemFailures?: unknown } | null | undefined)?.batchItemFailures;
  const ids = new Set<string>();
  if (!Array.isArray(failures)) return ids;
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id === 'string') ids.add(id);
  }
  return ids;
}
