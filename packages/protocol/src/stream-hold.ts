import { keyPart } from './outcome.js';
import { digest } from './run-task.js';
import { parseMarker } from './sqs-hold.js';

/**
 * How a handed-off stream batch (Kinesis, DynamoDB) keeps its shard in order with `ordered`: the
 * wrapper answers the batch as failed from its first record, so Lambda retries the same batch
 * instead of moving on, and leaves a marker naming the invocation; each retry finds the marker and
 * answers the same way while the runner works, and the batch is released (answered with the
 * runner's own `batchItemFailures`, or as a success) once the runner's outcome is recorded.
 */
export const HELD_STREAM_KIND = 'immortal-lambda.held-stream-batch';
export const HELD_STREAM_VERSION = 1;

/**
 * A stream batch as the hold needs it: its source, and its records' ids and sequence numbers
 * (the `itemIdentifier` of a batch item failure) in order.
 *
 * @example
 * ```ts
 * import { streamBatchOf } from '@immortal-lambda/protocol';
 * const first = streamBatchOf(event)?.records[0]?.sequenceNumber;
 * ```
 */
export interface StreamBatch {
  source: 'kinesis' | 'dynamodb';
  eventSourceARN: string;
  records: { eventID: string; sequenceNumber: string }[];
}

/**
 * The marker of a held stream batch, at {@link heldStreamKey}.
 *
 * @example
 * ```ts
 * import type { HeldStreamBatch } from '@immortal-lambda/protocol';
 * const holder = (marker: HeldStreamBatch) => marker.requestId;
 * ```
 */
export interface HeldStreamBatch {
  kind: typeof HELD_STREAM_KIND;
  version: typeof HELD_STREAM_VERSION;
  functionName: string;
  requestId: string;
  eventSourceARN: string;
  firstEventID: string;
  /** The batch's last record: a retry may bring records after it, which run once it is released. */
  lastEventID: string;
  heldAt: number;
}

/**
 * The records of a Kinesis or DynamoDB stream batch, or undefined for any other event.
 *
 * @example
 * ```ts
 * import { streamBatchOf } from '@immortal-lambda/protocol';
 * if (streamBatchOf(event)) console.log('a stream batch');
 * ```
 */
export function streamBatchOf(event: unknown): StreamBatch | undefined {
  const records = (event as { Records?: unknown } | null | undefined)?.Records;
  if (!Array.isArray(records) || records.length === 0) return undefined;
  const first = records[0] as Record<string, unknown> | undefined;
  const source =
    first?.eventSource === 'aws:kinesis'
      ? 'kinesis'
      : first?.eventSource === 'aws:dynamodb'
        ? 'dynamodb'
        : undefined;
  if (source === undefined || typeof first?.eventSourceARN !== 'string') return undefined;
  const out: StreamBatch['records'] = [];
  for (const record of records as Record<string, unknown>[]) {
    const inner = record?.[source === 'kinesis' ? 'kinesis' : 'dynamodb'] as
      | Record<string, unknown>
      | undefined;
    const sequenceNumber = source === 'kinesis' ? inner?.sequenceNumber : inner?.SequenceNumber;
    if (typeof record?.eventID !== 'string' || typeof sequenceNumber !== 'string') return undefined;
    out.push({ eventID: record.eventID, sequenceNumber });
  }
  return { source, eventSourceARN: first.eventSourceARN, records: out };
}

/**
 * Where the marker of a held stream batch is: beside the function's outcome records, by the
 * stream and the batch's first record, which every retry of the batch starts with.
 *
 * @example
 * ```ts
 * import { heldStreamKey } from '@immortal-lambda/protocol';
 * heldStreamKey('immortal-lambda/outcomes/', 'ingest', streamArn, 'shardId-000000000000:4954…');
 * ```
 */
export function heldStreamKey(
  prefix: string,
  functionName: string,
  eventSourceARN: string,
  firstEventID: string,
): string {
  return `${prefix}${keyPart(functionName)}/held-batches/${digest(`${eventSourceARN}|${firstEventID}`)}.json`;
}

/**
 * A stream marker read back, or undefined when the text is not one.
 *
 * @example
 * ```ts
 * import { parseHeldStreamBatch } from '@immortal-lambda/protocol';
 * const marker = parseHeldStreamBatch(text);
 * ```
 */
export function parseHeldStreamBatch(text: string): HeldStreamBatch | undefined {
  return parseMarker<HeldStreamBatch>(text, HELD_STREAM_KIND, ['requestId', 'firstEventID', 'lastEventID']);
}
