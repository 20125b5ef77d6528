import {
  HELD_MESSAGE_KIND,
  HELD_MESSAGE_VERSION,
  HELD_STREAM_KIND,
  HELD_STREAM_VERSION,
  type HeldMessage,
  type HeldStreamBatch,
  HOLD_VISIBILITY_S,
  heldMessageKey,
  heldStreamKey,
  type SqsBatchMessage,
  type StreamBatch,
  sqsBatchOf,
  streamBatchOf,
} from '@immortal-lambda/protocol';
import { changeVisibility } from '@immortal-lambda/protocol/sqs';
import type { ResolvedConfig } from '../config.js';
import { describeError } from '../logger.js';
import { loadS3 } from '../sdk.js';
import type { HandoffDependencies, HandoffTarget } from '../target.js';
import type { HandoffAnswer } from '../types.js';
import type { HandoffClients } from './clients.js';
import { recordGuard } from './guard.js';

/** Markers written at once. */
const MARKER_CONCURRENCY = 10;

/** What a handoff holds for its runner: an SQS batch's messages, or a stream batch. */
export type HeldBatch = { kind: 'sqs'; messages: SqsBatchMessage[] } | { kind: 'stream'; batch: StreamBatch };

/**
 * What the invocation's handoff holds, read once from its event: an SQS batch (unless
 * `holdSqsBatches: false`), a Kinesis or DynamoDB batch with `ordered`, or nothing.
 */
export function heldBatchOf(config: ResolvedConfig, event: unknown): HeldBatch | undefined {
  const messages = config.holdSqsBatches ? sqsBatchOf(event) : undefined;
  if (messages) return { kind: 'sqs', messages };
  const batch = config.ordered ? streamBatchOf(event) : undefined;
  return batch ? { kind: 'stream', batch } : undefined;
}

/** What holding a batch needs: where the markers go, the clients, the invocation. */
export interface HoldRequest {
  config: ResolvedConfig;
  deps: HandoffDependencies;
  clients: HandoffClients;
  functionName: string;
  requestId: string;
  messages: readonly SqsBatchMessage[];
}

/**
 * Holds a handed-off SQS batch once its task exists (or its start is queued): a marker per
 * message names this invocation (so that a redelivery finds it), and the messages are made
 * invisible for {@link HOLD_VISIBILITY_S}, time enough for the task to start and take over.
 * Nothing here fails the handoff: the batch is answered as failed whatever happens, so no
 * message is deleted; what could not be done is logged, and at worst a message comes back early
 * and is found held, or (without its marker) runs twice, as SQS's at-least-once allows.
 */
export async function holdBatch(request: HoldRequest): Promise<void> {
  const [markers, visibility] = await Promise.all([writeMarkers(request), extendVisibility(request)]);
  const problems = [...markers, ...visibility];
  if (problems.length === 0) return;
  request.deps.logger.error('The handed-off SQS batch could not be held in full', {
    requestId: request.requestId,
    messages: request.messages.length,
    problems: problems.slice(0, 10),
    consequence:
      'the batch is still answered as failed (Lambda deletes none of it); a message without its marker may be processed again when SQS delivers it again',
  });
}

async function writeMarkers(request: HoldRequest): Promise<string[]> {
  const { config, deps, clients, requestId, functionName } = request;
  const bucket = config.payloadBucket;
  if (bucket === undefined)
    return ['no payload bucket: a redelivery cannot find the invocation that holds it'];
  const problems: string[] = [];
  try {
    const s3 = await clients.s3(requestId);
    const { PutObjectCommand } = await loadS3();
    const queue = [...request.messages];
    const heldAt = deps.clock.now();
    const worker = async () => {
      for (let message = queue.shift(); message !== undefined; message = queue.shift()) {
        const marker: HeldMessage = {
          kind: HELD_MESSAGE_KIND,
          version: HELD_MESSAGE_VERSION,
          functionName,
          requestId,
          messageId: message.messageId,
          queueUrl: message.queueUrl,
          receiptHandle: message.receiptHandle,
          heldAt,
        };
        await s3
          .send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: heldMessageKey(config.outcomePrefix, functionName, message.messageId),
              Body: JSON.stringify(marker),
              ContentType: 'application/json',
            }),
          )
          .catch((error: unknown) =>
            problems.push(`marker of ${message.messageId}: ${describeError(error).message}`),
          );
      }
    };
    await Promise.all(Array.from({ length: MARKER_CONCURRENCY }, worker));
  } catch (error) {
    problems.push(`markers: ${describeError(error).message}`);
  }
  return problems;
}

async function extendVisibility(request: HoldRequest): Promise<string[]> {
  try {
    const sqs = await request.clients.sqs(request.requestId);
    const refused = await changeVisibility(sqs, request.messages, HOLD_VISIBILITY_S);
    return refused.map((failure) => `visibility of ${failure.messageId}: ${failure.code} ${failure.message}`);
  } catch (error) {
    return [`visibility: ${describeError(error).message}`];
  }
}

/**
 * Marks a handed-off stream batch with its invocation, once its task exists: every retry of the
 * batch (it starts with the same record) finds the marker. A marker that cannot be written is
 * logged: the retry then runs the batch again, as a stream's at-least-once processing allows, and
 * the shard's order still holds (the batch is answered as failed either way).
 */
export async function holdStream(
  request: Omit<HoldRequest, 'messages'> & { batch: StreamBatch },
): Promise<void> {
  const { config, deps, clients, requestId, functionName, batch } = request;
  const first = batch.records[0];
  const last = batch.records.at(-1);
  if (!first || !last || config.payloadBucket === undefined) return;
  const marker: HeldStreamBatch = {
    kind: HELD_STREAM_KIND,
    version: HELD_STREAM_VERSION,
    functionName,
    requestId,
    eventSourceARN: batch.eventSourceARN,
    firstEventID: first.eventID,
    lastEventID: last.eventID,
    heldAt: deps.clock.now(),
  };
  try {
    const { PutObjectCommand } = await loadS3();
    await (await clients.s3(requestId)).send(
      new PutObjectCommand({
        Bucket: config.payloadBucket,
        Key: heldStreamKey(config.outcomePrefix, functionName, batch.eventSourceARN, first.eventID),
        Body: JSON.stringify(marker),
        ContentType: 'application/json',
      }),
    );
  } catch (error) {
    deps.logger.error('The handed-off stream batch could not be marked', {
      requestId,
      error: describeError(error),
      consequence: "Lambda's retry of the batch runs it again instead of waiting for this invocation",
    });
  }
}

/**
 * Holds a handed-off batch for its runner once its task exists or its start is queued; the
 * receipt then names what was held (SQS: the messages, answered as batch item failures; a stream:
 * its first sequence number). Bounded by the record guard; never throws.
 */
export async function holdForRunner<T extends HandoffAnswer>(
  parts: Pick<HoldRequest, 'config' | 'deps' | 'clients'>,
  target: HandoffTarget,
  receipt: T,
  held: HeldBatch | undefined,
): Promise<T> {
  if (held === undefined) return receipt;
  const guard = recordGuard(parts.deps.clock, target.deadlineAt);
  const request = { ...parts, functionName: target.context.functionName, requestId: receipt.requestId };
  const holding =
    held.kind === 'sqs'
      ? holdBatch({ ...request, messages: held.messages })
      : holdStream({ ...request, batch: held.batch });
  const stopped = new Promise<void>((resolve) => guard.signal.addEventListener('abort', () => resolve()));
  await Promise.race([holding, stopped]).finally(guard.dispose);
  if (held.kind === 'sqs')
    return { ...receipt, heldMessages: held.messages.map((message) => message.messageId) };
  const first = held.batch.records[0]?.sequenceNumber;
  return first === undefined ? receipt : { ...receipt, heldFrom: first };
}
