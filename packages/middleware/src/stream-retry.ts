import {
  failedItems,
  type HeldStreamBatch,
  heldStreamKey,
  parseHeldStreamBatch,
  type StreamBatch,
  streamBatchOf,
} from '@immortal-lambda/protocol';
import type { Context } from 'aws-lambda';
import { heldAnswer, type ScreenedBatch } from './batches.js';
import { type BatchLookup, holderOf } from './holder.js';
import { readObjectText } from './outcome-store.js';

/** How long a retry waits for the runner before it answers "not yet" (Lambda then retries again). */
export const STREAM_WAIT_MS = 60_000;
/** How often a waiting retry reads the runner's records. */
export const STREAM_POLL_MS = 5_000;
/** A marker without any record yet counts as at work this long (the handoff was that recent). */
const FRESH_MARKER_MS = 30 * 60 * 1000;

/**
 * With `ordered`, a stream batch that an earlier invocation handed off comes back as Lambda's
 * retry (the wrapper answered it as failed from its first record). The retry waits for that
 * invocation's runner while it may (up to {@link STREAM_WAIT_MS}, the margin kept), then answers:
 * still at work, failed from the first record again (the shard waits); finished, with the runner's
 * own `batchItemFailures` (Lambda retries from there), or, when it failed none, by running only the
 * records a longer retry brought after the handed-off ones, or as a success (the shard moves on); a
 * runner that failed, or no marker at all, runs the batch here. Undefined: not a held batch.
 */
export async function screenStreamRetry(
  lookup: BatchLookup,
  event: unknown,
  context: Context,
  remainingMs: number,
): Promise<ScreenedBatch | undefined> {
  const batch = streamBatchOf(event);
  const { config, clock } = lookup;
  const bucket = config.payloadBucket;
  const first = batch?.records[0];
  if (!batch || !first || bucket === undefined) return undefined;
  const s3 = await lookup.clients.s3(context.awsRequestId);
  const key = heldStreamKey(config.outcomePrefix, context.functionName, batch.eventSourceARN, first.eventID);
  const marker = parseHeldStreamBatch((await readObjectText(s3, bucket, key)) ?? '');
  if (!marker || marker.requestId === context.awsRequestId) return undefined;
  const waitUntil = clock.now() + Math.min(STREAM_WAIT_MS, remainingMs - config.marginMs - STREAM_POLL_MS);
  for (;;) {
    const holder = await holderOf(lookup, s3, {
      bucket,
      functionName: context.functionName,
      requestId: marker.requestId,
      heldAt: marker.heldAt,
      freshMs: FRESH_MARKER_MS,
    });
    if (holder.kind === 'gone') return undefined;
    if (holder.kind === 'finished') return released(event, batch, marker, holder.result);
    if (clock.now() + STREAM_POLL_MS > waitUntil) {
      lookup.logger.info('A retried stream batch waits for the runner of the invocation that holds it', {
        requestId: context.awsRequestId,
        heldBy: marker.requestId,
        firstEventID: first.eventID,
      });
      return answered(event, [first.sequenceNumber]);
    }
    await new Promise<void>((resolve) => clock.setTimeout(resolve, STREAM_POLL_MS));
  }
}

/** The batch once its runner finished: its failures, the records after the held ones, or a success. */
function released(
  event: unknown,
  batch: StreamBatch,
  marker: HeldStreamBatch,
  result: unknown,
): ScreenedBatch {
  const failures = failedItems(result);
  if (failures.size > 0) return answered(event, [...failures]);
  const lastHeld = batch.records.findIndex((record) => record.eventID === marker.lastEventID);
  // The event's records are the batch's, in the same order.
  const after = lastHeld >= 0 ? (event as { Records: unknown[] }).Records.slice(lastHeld + 1) : [];
  if (after.length === 0) return answered(event, []);
  return { event: { ...(event as object), Records: after }, heldElsewhere: [] };
}

/** The batch answered without running, with these records failed (none: a success). */
const answered = (event: unknown, failedFrom: string[]): ScreenedBatch => ({
  event,
  heldElsewhere: [],
  answer: heldAnswer(failedFrom),
});
