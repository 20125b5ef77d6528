import { ACCOUNT } from '../registry.js';

/** One Kinesis record as Lambda hands it to a function. */
export interface KinesisRecord {
  kinesis: {
    kinesisSchemaVersion: '1.0';
    partitionKey: string;
    sequenceNumber: string;
    data: string;
    approximateArrivalTimestamp: number;
  };
  eventSource: 'aws:kinesis';
  eventVersion: '1.0';
  eventID: string;
  eventName: 'aws:kinesis:record';
  invokeIdentityArn: string;
  awsRegion: string;
  eventSourceARN: string;
}

/** A function behind a stream's event source mapping: its partial batch response names where to retry from. */
export type StreamConsumer = (event: {
  Records: KinesisRecord[];
}) => Promise<{ batchItemFailures?: { itemIdentifier: string }[] } | undefined>;

/**
 * How a stream's event source mapping reads its shard, as Lambda's does with
 * `ReportBatchItemFailures`, unlimited retries and no bisecting.
 *
 * @example
 * ```ts
 * plane.streams.consume(arn, consumer, { batchSize: 3, retryDelayMs: 200 });
 * ```
 */
export interface StreamConsumeOptions {
  /** Records per batch (Lambda's default for Kinesis: 100). */
  batchSize?: number;
  /** How long a failed batch waits before it is retried. */
  retryDelayMs?: number;
  /** How often an idle shard is read again. */
  pollMs?: number;
}

/**
 * What happened on a shard, in order: each batch delivered (its first and last sequence numbers)
 * and each move of the checkpoint, for tests to read.
 */
export interface StreamEvent {
  action: 'delivered' | 'checkpoint';
  streamArn: string;
  first: string;
  last: string;
  at: number;
}

interface Shard {
  arn: string;
  records: KinesisRecord[];
  /** Index of the first record not yet processed. */
  checkpoint: number;
}

const SHARD = 'shardId-000000000000';

/**
 * The plane's Kinesis streams, one shard each: records put are kept in order, and an event source
 * mapping ({@link LocalStreams.consume}) hands them to a function in batches, one batch of the
 * shard at a time. A batch whose answer names a failed record is retried from that record (the
 * lowest named), after `retryDelayMs`; a batch whose function threw is retried whole; otherwise
 * the checkpoint moves past it. The next batch never starts before the one before it is past.
 */
export class LocalStreams {
  readonly #region: string;
  readonly #now: () => number;
  readonly #shards = new Map<string, Shard>();
  readonly #stops = new Set<() => Promise<void>>();
  #sequence = 49_000_000_000_000_000_000n;
  /** Every batch delivered and every checkpoint moved, in order. */
  readonly history: StreamEvent[] = [];

  constructor(region: string, now: () => number) {
    this.#region = region;
    this.#now = now;
  }

  /** Makes a stream; answers its ARN. */
  create(name: string): string {
    const arn = `arn:aws:kinesis:${this.#region}:${ACCOUNT}:stream/${name}`;
    if (!this.#shards.has(arn)) this.#shards.set(arn, { arn, records: [], checkpoint: 0 });
    return arn;
  }

  /** Puts a record (its data as JSON); answers its sequence number. */
  put(arn: string, data: unknown, partitionKey = 'key'): string {
    const shard = this.#shards.get(arn);
    if (!shard) throw new Error(`the local plane has no stream ${arn}`);
    this.#sequence += 1n;
    const sequenceNumber = this.#sequence.toString();
    shard.records.push({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey,
        sequenceNumber,
        data: Buffer.from(JSON.stringify(data)).toString('base64'),
        approximateArrivalTimestamp: this.#now() / 1000,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `${SHARD}:${sequenceNumber}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: `arn:aws:iam::${ACCOUNT}:role/local-event-source-mapping`,
      awsRegion: this.#region,
      eventSourceARN: arn,
    });
    return sequenceNumber;
  }

  /** Records not yet past the checkpoint. */
  pending(arn: string): number {
    const shard = this.#shards.get(arn);
    return shard ? shard.records.length - shard.checkpoint : 0;
  }

  /** An event source mapping on the stream's shard; stops with {@link LocalStreams.stop}. */
  consume(arn: string, consumer: StreamConsumer, options: StreamConsumeOptions = {}): void {
    const shard = this.#shards.get(arn);
    if (!shard) throw new Error(`the local plane has no stream ${arn}`);
    const { batchSize = 100, retryDelayMs = 500, pollMs = 20 } = options;
    let stopped = false;
    const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const loop = async () => {
      while (!stopped) {
        const batch = shard.records.slice(shard.checkpoint, shard.checkpoint + batchSize);
        if (batch.length === 0) {
          await wait(pollMs);
          continue;
        }
        const first = batch[0]?.kinesis.sequenceNumber ?? '';
        const last = batch.at(-1)?.kinesis.sequenceNumber ?? '';
        this.history.push({ action: 'delivered', streamArn: arn, first, last, at: this.#now() });
        const failedFrom = await consumer({ Records: batch }).then(
          (answer) => lowest(answer?.batchItemFailures),
          () => first,
        );
        if (failedFrom !== undefined) {
          const at = batch.findIndex((record) => record.kinesis.sequenceNumber === failedFrom);
          shard.checkpoint += Math.max(0, at);
          await wait(retryDelayMs);
          continue;
        }
        shard.checkpoint += batch.length;
        this.history.push({ action: 'checkpoint', streamArn: arn, first, last, at: this.#now() });
      }
    };
    const running = loop();
    this.#stops.add(async () => {
      stopped = true;
      await running;
    });
  }

  /** Stops every event source mapping, after the batch in flight. */
  async stop(): Promise<void> {
    const stops = [...this.#stops];
    this.#stops.clear();
    await Promise.all(stops.map((stop) => stop()));
  }
}

/** The lowest sequence number a partial batch response names, as Lambda retries from it. */
function lowest(failures: { itemIdentifier: string }[] | undefined): string | undefined {
  const named = (failures ?? []).map((failure) => failure.itemIdentifier).filter(Boolean);
  if (named.length === 0) return undefined;
  return named.reduce((a, b) => (BigInt(a) <= BigInt(b) ? a : b));
}
