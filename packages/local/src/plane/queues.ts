import { randomUUID } from 'node:crypto';
import { ACCOUNT } from '../registry.js';

/**
 * What an SQS event source mapping hands its function: the messages of one batch, in the shape
 * Lambda gives them (`Records[]` with `messageId`, `body`, `attributes.ApproximateReceiveCount`).
 */
export interface SqsBatchEvent {
  Records: {
    messageId: string;
    receiptHandle: string;
    body: string;
    attributes: { ApproximateReceiveCount: string; SentTimestamp: string };
    messageAttributes: Record<string, never>;
    md5OfBody: string;
    eventSource: 'aws:sqs';
    eventSourceARN: string;
    awsRegion: string;
  }[];
}

/** A function behind an event source mapping: its partial batch response names what failed. */
export type SqsConsumer = (
  event: SqsBatchEvent,
) => Promise<{ batchItemFailures?: { itemIdentifier: string }[] } | undefined>;

/**
 * A queue of the local plane, as SQS keeps one: a message received is invisible for the
 * visibility timeout, then visible again unless deleted; past `maxReceiveCount` receives it moves
 * to the dead-letter queue.
 *
 * @example
 * ```ts
 * plane.createQueue('launches', { visibilityTimeoutMs: 30_000, maxReceiveCount: 5, deadLetterQueue: 'launches-dlq' });
 * ```
 */
export interface QueueOptions {
  /** How long a received message stays invisible (SQS's default 30 s). */
  visibilityTimeoutMs?: number;
  /** Receives after which a message moves to the dead-letter queue (its redrive policy). */
  maxReceiveCount?: number;
  /** The dead-letter queue's name (created with the queue). */
  deadLetterQueue?: string;
}

/** How an event source mapping polls its queue, as Lambda's does. */
export interface ConsumeOptions {
  /** Messages per batch (Lambda's default for SQS: 10). */
  batchSize?: number;
  /** Batches in flight at once (the mapping's maximum concurrency; at least 2 on AWS). */
  maxConcurrency?: number;
  /** How often an idle poller looks again. */
  pollMs?: number;
}

interface Message {
  id: string;
  body: string;
  sentAt: number;
  receives: number;
  visibleAt: number;
}

interface Queue {
  name: string;
  options: QueueOptions;
  messages: Message[];
}

/**
 * The plane's SQS queues: messages sent to a queue the plane made are kept, received and deleted
 * as SQS does, and an event source mapping ({@link LocalQueues.consume}) polls them into a
 * function in batches, deleting what it did not report as failed.
 */
export class LocalQueues {
  readonly #region: string;
  readonly #now: () => number;
  readonly #queues = new Map<string, Queue>();
  readonly #pollers = new Set<{ stop: () => void; idle: () => Promise<void> }>();

  constructor(region: string, now: () => number) {
    this.#region = region;
    this.#now = now;
  }

  /** Makes a queue (and its dead-letter queue); answers its URL. */
  create(name: string, options: QueueOptions = {}): string {
    if (options.deadLetterQueue && !this.#queues.has(this.url(options.deadLetterQueue)))
      this.create(options.deadLetterQueue);
    const url = this.url(name);
    if (!this.#queues.has(url)) this.#queues.set(url, { name, options, messages: [] });
    return url;
  }

  /** A queue's URL, as SQS names it. */
  url(name: string): string {
    return `https://sqs.${this.#region}.amazonaws.com/${ACCOUNT}/${name}`;
  }

  /** Keeps a message sent to a queue the plane made; false when the plane has no such queue. */
  send(url: string, body: string): boolean {
    const queue = this.#queues.get(url);
    if (!queue) return false;
    queue.messages.push({ id: randomUUID(), body, sentAt: this.#now(), receives: 0, visibleAt: 0 });
    return true;
  }

  /** Messages in a queue, visible or in flight. */
  depth(url: string): number {
    return this.#queues.get(url)?.messages.length ?? 0;
  }

  /** Up to `max` visible messages, made invisible for the visibility timeout; past the redrive count, moved to the DLQ. */
  receive(url: string, max: number): Message[] {
    const queue = this.#queues.get(url);
    if (!queue) return [];
    const now = this.#now();
    const taken: Message[] = [];
    for (const message of [...queue.messages]) {
      if (taken.length >= max) break;
      if (message.visibleAt > now) continue;
      const { maxReceiveCount, deadLetterQueue } = queue.options;
      if (maxReceiveCount !== undefined && deadLetterQueue && message.receives >= maxReceiveCount) {
        this.delete(url, message.id);
        this.#queues.get(this.url(deadLetterQueue))?.messages.push({ ...message, receives: 0, visibleAt: 0 });
        continue;
      }
      message.receives += 1;
      message.visibleAt = now + (queue.options.visibilityTimeoutMs ?? 30_000);
      taken.push(message);
    }
    return taken;
  }

  delete(url: string, id: string): void {
    const queue = this.#queues.get(url);
    if (queue) queue.messages = queue.messages.filter((message) => message.id !== id);
  }

  /**
   * An event source mapping: polls the queue and calls `consumer` with batches, up to
   * `maxConcurrency` at once; deletes every message of a batch but those its partial batch
   * response names; a consumer that throws leaves the whole batch to come back after its
   * visibility timeout. Stops with {@link LocalQueues.stop}.
   */
  consume(url: string, consumer: SqsConsumer, options: ConsumeOptions = {}): void {
    const { batchSize = 10, maxConcurrency = 2, pollMs = 20 } = options;
    let stopped = false;
    let inFlight = 0;
    let idle: (() => void) | undefined;
    const poll = () => {
      if (stopped) return;
      while (inFlight < maxConcurrency) {
        const batch = this.receive(url, batchSize);
        if (batch.length === 0) break;
        inFlight += 1;
        this.#deliver(url, batch, consumer).finally(() => {
          inFlight -= 1;
          if (inFlight === 0) idle?.();
        });
      }
    };
    const timer = setInterval(poll, pollMs);
    this.#pollers.add({
      stop: () => {
        stopped = true;
        clearInterval(timer);
      },
      idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (idle = resolve))),
    });
  }

  async #deliver(url: string, batch: Message[], consumer: SqsConsumer): Promise<void> {
    const arn = `arn:aws:sqs:${this.#region}:${ACCOUNT}:${this.#queues.get(url)?.name ?? ''}`;
    const event: SqsBatchEvent = {
      Records: batch.map((message) => ({
        messageId: message.id,
        receiptHandle: message.id,
        body: message.body,
        attributes: {
          ApproximateReceiveCount: String(message.receives),
          SentTimestamp: String(message.sentAt),
        },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: arn,
        awsRegion: this.#region,
      })),
    };
    try {
      const response = await consumer(event);
      const failed = new Set((response?.batchItemFailures ?? []).map((item) => item.itemIdentifier));
      for (const message of batch) if (!failed.has(message.id)) this.delete(url, message.id);
    } catch {
      // The whole batch comes back after its visibility timeout, as with Lambda.
    }
  }

  /** Stops every event source mapping, after the batches in flight. */
  async stop(): Promise<void> {
    const pollers = [...this.#pollers];
    this.#pollers.clear();
    for (const poller of pollers) poller.stop();
    await Promise.all(pollers.map((poller) => poller.idle()));
  }
}
