// The SQS calls of a held batch, shared by the wrapper (which holds it) and the runner (which keeps
// it held, deletes what it finished and returns what failed). The SQS SDK loads with the first
// call: a bundle that includes these functions does not load it at start.
import { SQS_BATCH_ENTRIES } from './sqs-hold.js';

const sqsSdk = () => import('@aws-sdk/client-sqs');

/**
 * A message as the calls name it: its id, its queue and the receipt handle of its latest delivery.
 *
 * @example
 * ```ts
 * import type { HeldReceipt } from '@immortal-lambda/protocol/sqs';
 * const receipt: HeldReceipt = { messageId, queueUrl, receiptHandle };
 * ```
 */
export interface HeldReceipt {
  messageId: string;
  queueUrl: string;
  receiptHandle: string;
}

/**
 * A message a call could not act on, with SQS's code (`ReceiptHandleIsInvalid`, `MessageNotInflight`,
 * `InvalidParameterValue` past the 12-hour ceiling, or the error of the whole call).
 *
 * @example
 * ```ts
 * import type { SqsFailure } from '@immortal-lambda/protocol/sqs';
 * const line = (failure: SqsFailure) => `${failure.messageId}: ${failure.code}`;
 * ```
 */
export interface SqsFailure {
  messageId: string;
  code: string;
  message: string;
}

/** The part of an SQS client the calls use. */
export interface SqsSender {
  send(command: unknown): Promise<unknown>;
}

/** The messages by queue, in batches of at most ten, each entry with an id unique in its batch. */
function batches(messages: readonly HeldReceipt[]): { queueUrl: string; entries: HeldReceipt[] }[] {
  const byQueue = new Map<string, HeldReceipt[]>();
  for (const message of messages) {
    const queue = byQueue.get(message.queueUrl);
    if (queue) queue.push(message);
    else byQueue.set(message.queueUrl, [message]);
  }
  const out: { queueUrl: string; entries: HeldReceipt[] }[] = [];
  for (const [queueUrl, queue] of byQueue) {
    for (let i = 0; i < queue.length; i += SQS_BATCH_ENTRIES) {
      out.push({ queueUrl, entries: queue.slice(i, i + SQS_BATCH_ENTRIES) });
    }
  }
  return out;
}

type BatchAnswer = { Failed?: { Id?: string; Code?: string; Message?: string }[] };

/** Sends one call per batch; a batch whose call failed fails for each of its messages. */
async function eachBatch(
  messages: readonly HeldReceipt[],
  call: (queueUrl: string, entries: HeldReceipt[]) => Promise<unknown>,
): Promise<SqsFailure[]> {
  const failures: SqsFailure[] = [];
  await Promise.all(
    batches(messages).map(async ({ queueUrl, entries }) => {
      try {
        const answer = (await call(queueUrl, entries)) as BatchAnswer;
        for (const failed of answer.Failed ?? []) {
          const entry = entries[Number(failed.Id?.slice(1))];
          if (entry) {
            failures.push({
              messageId: entry.messageId,
              code: failed.Code ?? 'Failed',
              message: failed.Message ?? '',
            });
          }
        }
      } catch (error) {
        const { name, message } = error as Error;
        for (const entry of entries) failures.push({ messageId: entry.messageId, code: name, message });
      }
    }),
  );
  return failures;
}

/**
 * Makes the messages invisible for `seconds` from now (0: visible again at once), ten per call;
 * answers the messages SQS refused.
 *
 * @example
 * ```ts
 * import { changeVisibility } from '@immortal-lambda/protocol/sqs';
 * const refused = await changeVisibility(sqs, held, 15 * 60);
 * ```
 */
export function changeVisibility(
  client: SqsSender,
  messages: readonly HeldReceipt[],
  seconds: number,
): Promise<SqsFailure[]> {
  return eachBatch(messages, async (queueUrl, entries) => {
    const { ChangeMessageVisibilityBatchCommand } = await sqsSdk();
    return client.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: entries.map((entry, i) => ({
          Id: `m${i}`,
          ReceiptHandle: entry.receiptHandle,
          VisibilityTimeout: Math.max(0, Math.floor(seconds)),
        })),
      }),
    );
  });
}

/**
 * Deletes the messages, ten per call; answers the messages SQS refused.
 *
 * @example
 * ```ts
 * import { deleteMessages } from '@immortal-lambda/protocol/sqs';
 * const refused = await deleteMessages(sqs, finished);
 * ```
 */
export function deleteMessages(client: SqsSender, messages: readonly HeldReceipt[]): Promise<SqsFailure[]> {
  return eachBatch(messages, async (queueUrl, entries) => {
    const { DeleteMessageBatchCommand } = await sqsSdk();
    return client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: entries.map((entry, i) => ({ Id: `m${i}`, ReceiptHandle: entry.receiptHandle })),
      }),
    );
  });
}

/**
 * The queue's own visibility timeout in seconds (what a failed message waits before SQS delivers
 * it again), or undefined when it cannot be read.
 *
 * @example
 * ```ts
 * import { queueVisibilityTimeout } from '@immortal-lambda/protocol/sqs';
 * const seconds = (await queueVisibilityTimeout(sqs, queueUrl)) ?? 30;
 * ```
 */
export async function queueVisibilityTimeout(
  client: SqsSender,
  queueUrl: string,
): Promise<number | undefined> {
  try {
    const { GetQueueAttributesCommand } = await sqsSdk();
    const answer = (await client.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['VisibilityTimeout'] }),
    )) as { Attributes?: Record<string, string> };
    const seconds = Number(answer.Attributes?.VisibilityTimeout);
    return Number.isFinite(seconds) ? seconds : undefined;
  } catch {
    return undefined;
  }
}
