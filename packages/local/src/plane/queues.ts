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
    attributes: { ApproximateReceiveCount: string; SentTimestamp: string; MessageGroupId?: string };
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

/**
 * A FIFO queue (its name ends in `.fifo`) delivers a message group's messages in order, and none
 * of a group while one of it is in flight (received, neither deleted nor visible again).
 */
const isFifo = (name: string) => name.endsWith('.fifo');

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
  /** The receipt handle of the latest receive: each receive hands out a new one, as SQS does. */
  receiptHandle: string;
  receivedAt: number;
  /** A FIFO queue's message group (`MessageGroupId`). */
  groupId?: string;
}

/** SQS's ceiling: a message stays invisible at most 12 hours after it was received. */
const MAX_VISIBILITY_MS = 12 * 60 * 60 * 1000;

/**
 * What happened to a message, in order: each delete (by whom is the caller's business) and each
 * move to the dead-letter queue, for tests to read.
 */
export interface QueueEvent {
  action: 'deleted' | 'dead-lettered' | 'received';
  queueUrl: string;
  messageId: string;
  at: number;
}

/** The codes SQS's query-compatible errors carry (the SDK names the error after them). */
const QUERY_CODES: Record<string, string> = {
  QueueDoesNotExist: 'AWS.SimpleQueueService.NonExistentQueue',
  MessageNotInflight: 'AWS.SimpleQueueService.MessageNotInflight',
  UnsupportedOperation: 'AWS.SimpleQueueService.UnsupportedOperation',
};

/**
 * An SQS error answer: the shape SQS names it with, the code its query-compatible header carries
 * (what the SDK names the error), and its message.
 *
 * @example
 * ```ts
 * import { SqsError } from '@immortal-lambda/local';
 * new SqsError('MessageNotInflight', 'Message does not exist or is not available for visibility timeout change.').queryCode;
 * ```
 */
export class SqsError extends Error {
  readonly code: string;
  readonly queryCode: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'SqsError';
    this.code = code;
    this.queryCode = QUERY_CODES[code] ?? code;
  }
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
  /** Every receive, delete and move to a dead-letter queue, in order. */
  readonly history: QueueEvent[] = [];

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
  send(url: string, body: string, options: { groupId?: string } = {}): boolean {
    const queue = this.#queues.get(url);
    if (!queue) return false;
    queue.messages.push({
      id: randomUUID(),
      body,
      sentAt: this.#now(),
      receives: 0,
      visibleAt: 0,
      receiptHandle: '',
      receivedAt: 0,
      ...(options.groupId !== undefined ? { groupId: options.groupId } : {}),
    });
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
    // A FIFO group with a message in flight, or one passed over in this receive, delivers nothing more.
    const blocked = new Set<string>();
    const fifo = isFifo(queue.name);
    for (const message of [...queue.messages]) {
      if (taken.length >= max) break;
      if (fifo && message.groupId !== undefined && blocked.has(message.groupId)) continue;
      if (message.visibleAt > now) {
        if (fifo && message.groupId !== undefined) blocked.add(message.groupId);
        continue;
      }
      const { maxReceiveCount, deadLetterQueue } = queue.options;
      if (maxReceiveCount !== undefined && deadLetterQueue && message.receives >= maxReceiveCount) {
        this.delete(url, message.id);
        this.history.push({ action: 'dead-lettered', queueUrl: url, messageId: message.id, at: now });
        this.#queues.get(this.url(deadLetterQueue))?.messages.push({ ...message, receives: 0, visibleAt: 0 });
        continue;
      }
      message.receives += 1;
      message.visibleAt = now + (queue.options.visibilityTimeoutMs ?? 30_000);
      message.receiptHandle = randomUUID();
      message.receivedAt = now;
      this.history.push({ action: 'received', queueUrl: url, messageId: message.id, at: now });
      taken.push(message);
    }
    return taken;
  }

  delete(url: string, id: string): void {
    const queue = this.#queues.get(url);
    if (queue) queue.messages = queue.messages.filter((message) => message.id !== id);
  }

  /** The messages of a queue that a dead-letter queue holds, by id (for tests). */
  messageIds(url: string): string[] {
    return (this.#queues.get(url)?.messages ?? []).map((message) => message.id);
  }

  /**
   * DeleteMessage: deletes the message whose latest receive handed out this receipt handle. As
   * SQS, a handle of an earlier receive answers success and deletes nothing.
   */
  deleteReceived(url: string, receiptHandle: string): void {
    const queue = this.#existing(url);
    const message = queue.messages.find((candidate) => candidate.receiptHandle === receiptHandle);
    if (!message) return;
    this.delete(url, message.id);
    this.history.push({ action: 'deleted', queueUrl: url, messageId: message.id, at: this.#now() });
  }

  /**
   * ChangeMessageVisibility: the message becomes visible `seconds` from now. Refused as SQS
   * refuses: a handle no receive handed out last (`ReceiptHandleIsInvalid`), a message visible
   * already (`MessageNotInflight`), past 12 hours after its receive (`InvalidParameterValue`).
   */
  changeVisibility(url: string, receiptHandle: string, seconds: number): void {
    const queue = this.#existing(url);
    const now = this.#now();
    const message = queue.messages.find((candidate) => candidate.receiptHandle === receiptHandle);
    if (!message)
      throw new SqsError(
        'ReceiptHandleIsInvalid',
        `The input receipt handle "${receiptHandle}" is not a valid receipt handle.`,
      );
    if (message.visibleAt <= now)
      throw new SqsError(
        'MessageNotInflight',
        'Message does not exist or is not available for visibility timeout change.',
      );
    if (
      !(seconds >= 0 && seconds <= 43_200) ||
      now + seconds * 1000 - message.receivedAt > MAX_VISIBILITY_MS
    ) {
      throw new SqsError(
        'InvalidParameterValue',
        `Value ${seconds} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]`,
      );
    }
    message.visibleAt = now + seconds * 1000;
  }

  /**
   * Makes a message in flight visible at once, as when its visibility lapsed: SQS delivers it
   * again (a test's duplicate delivery). False when the queue has no such message.
   */
  expireVisibility(url: string, messageId: string): boolean {
    const message = this.#queues.get(url)?.messages.find((candidate) => candidate.id === messageId);
    if (!message) return false;
    message.visibleAt = this.#now();
    return true;
  }

  /** The queue's visibility timeout in seconds, as GetQueueAttributes answers it. */
  visibilityTimeoutS(url: string): number {
    return Math.round((this.#existing(url).options.visibilityTimeoutMs ?? 30_000) / 1000);
  }

  /** Throws SQS's `QueueDoesNotExist` for a URL the plane made no queue at. */
  requireQueue(url: string): void {
    this.#existing(url);
  }

  #existing(url: string): Queue {
    const queue = this.#queues.get(url);
    if (!queue) throw new SqsError('QueueDoesNotExist', `The specified queue ${url} does not exist.`);
    return queue;
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
        receiptHandle: message.receiptHandle,
        body: message.body,
        attributes: {
          ApproximateReceiveCount: String(message.receives),
          SentTimestamp: String(message.sentAt),
          ...(message.groupId !== undefined ? { MessageGroupId: message.groupId } : {}),
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
      // With the handles of this delivery: a message delivered again since keeps its new one.
      for (const record of event.Records)
        if (!failed.has(record.messageId)) this.deleteReceived(url, record.receiptHandle);
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
