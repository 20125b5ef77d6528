import type { S3Client } from '@aws-sdk/client-s3';
import {
  failedItems,
  type HeldMessage,
  HOLD_VISIBILITY_S,
  heldMessageKey,
  parseHeldMessage,
  type SqsBatchMessage,
  sqsBatchOf,
} from '@immortal-lambda/protocol';
import { changeVisibility } from '@immortal-lambda/protocol/sqs';
import type { Context } from 'aws-lambda';
import { heldAnswer, type ScreenedBatch } from './batches.js';
import { type BatchLookup, holderOf } from './holder.js';
import { describeError } from './logger.js';
import { readObjectText } from './outcome-store.js';
import { loadS3 } from './sdk.js';

/** What became of one redelivered message: run it here, leave it held, or let Lambda delete it. */
type Verdict = 'run' | 'held' | 'done';

/**
 * Looks up the redelivered messages of an SQS batch (SQS delivered them before): a message whose
 * marker names another invocation still at work is held for it (its new receipt handle goes to
 * the marker, for the runner, and it is made invisible again), and answered as failed; a message
 * that invocation finished is left out and deleted by Lambda; any other message runs here, as a
 * redelivery should (the runner's handler failed it, or nothing holds it).
 */
export async function screenRedeliveries(
  lookup: BatchLookup,
  event: unknown,
  context: Context,
): Promise<ScreenedBatch> {
  const messages = sqsBatchOf(event);
  const bucket = lookup.config.payloadBucket;
  if (!messages || bucket === undefined) return { event, heldElsewhere: [] };
  const s3 = await lookup.clients.s3(context.awsRequestId);
  const verdicts = new Map<string, Verdict>();
  const heldAgain: SqsBatchMessage[] = [];
  await Promise.all(
    messages
      .filter((message) => message.receiveCount > 1)
      .map(async (message) => {
        const verdict = await judge(lookup, s3, bucket, message, context).catch((error: unknown) => {
          lookup.logger.warn('A redelivered SQS message could not be looked up; it runs here', {
            requestId: context.awsRequestId,
            messageId: message.messageId,
            error: describeError(error),
          });
          return 'run' as const;
        });
        verdicts.set(message.messageId, verdict);
        if (verdict === 'held') heldAgain.push(message);
      }),
  );
  if (heldAgain.length > 0) await keepInvisible(lookup, heldAgain, context);
  const heldElsewhere = heldAgain.map((message) => message.messageId);
  const records = (event as { Records: { messageId: string }[] }).Records;
  const left = records.filter((record) => (verdicts.get(record.messageId) ?? 'run') === 'run');
  if (left.length < records.length) {
    lookup.logger.info('Redelivered SQS messages held by another invocation are left out of this batch', {
      requestId: context.awsRequestId,
      heldElsewhere,
      finishedElsewhere: [...verdicts].filter(([, verdict]) => verdict === 'done').map(([id]) => id),
      running: left.length,
    });
  }
  return {
    event: { ...(event as object), Records: left },
    heldElsewhere,
    ...(left.length === 0 ? { answer: heldAnswer(heldElsewhere) } : {}),
  };
}

/** What to do with one redelivered message, from its marker and its holder's records. */
async function judge(
  lookup: BatchLookup,
  s3: S3Client,
  bucket: string,
  message: SqsBatchMessage,
  context: Context,
): Promise<Verdict> {
  const functionName = context.functionName;
  const key = heldMessageKey(lookup.config.outcomePrefix, functionName, message.messageId);
  const marker = parseHeldMessage((await readObjectText(s3, bucket, key)) ?? '');
  if (!marker || marker.requestId === context.awsRequestId) return 'run';
  const holder = await holderOf(lookup, s3, {
    bucket,
    functionName,
    requestId: marker.requestId,
    heldAt: marker.heldAt,
    freshMs: HOLD_VISIBILITY_S * 1000,
  });
  if (holder.kind === 'in-work') {
    const { PutObjectCommand } = await loadS3();
    const renewed: HeldMessage = {
      ...marker,
      receiptHandle: message.receiptHandle,
      heldAt: lookup.clock.now(),
    };
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(renewed) }));
    return 'held';
  }
  if (holder.kind === 'finished' && !failedItems(holder.result).has(message.messageId)) return 'done';
  return 'run';
}

/** The held messages of this delivery stay invisible while their holder works. */
async function keepInvisible(
  lookup: BatchLookup,
  messages: SqsBatchMessage[],
  context: Context,
): Promise<void> {
  let why: Record<string, unknown>;
  try {
    const refused = await changeVisibility(
      await lookup.clients.sqs(context.awsRequestId),
      messages,
      HOLD_VISIBILITY_S,
    );
    if (refused.length === 0) return;
    why = { refused };
  } catch (error) {
    why = { error: describeError(error) };
  }
  lookup.logger.warn('Held SQS messages could not be made invisible again; SQS delivers them again sooner', {
    requestId: context.awsRequestId,
    ...why,
  });
}
