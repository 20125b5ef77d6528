import {
  failedItems,
  heldMessageKey,
  isRelaunchable,
  MAX_VISIBILITY_S,
  parseHeldMessage,
  RUNNER_EXTEND_EVERY_MS,
  RUNNER_VISIBILITY_S,
  type SqsBatchMessage,
  sqsBatchOf,
} from '@immortal-lambda/protocol';
import {
  changeVisibility,
  deleteMessages,
  type HeldReceipt,
  queueVisibilityTimeout,
  type SqsSender,
} from '@immortal-lambda/protocol/sqs';
import { EXIT_CODES, type ExitCode } from '../exit-codes.js';
import { getObjectText } from '../s3.js';
import type { RunnerSettings } from '../settings.js';
import type { Run } from './run.js';

/** A message may be received up to the mapping's batching window (at most 5 minutes) before the invocation starts. */
const BATCHING_WINDOW_MS = 5 * 60 * 1000;
/** Kept clear of SQS's 12-hour ceiling, so that an extension is not refused for a late clock. */
const CEILING_SLACK_S = 60;

interface Held extends HeldReceipt {
  /** When this delivery was received, at the earliest: SQS's 12 hours count from there. */
  receivedAt: number;
}

/**
 * The SQS batch the wrapper held for this run (the envelope says `held: "sqs"`): its messages are
 * kept invisible while the handler works (an extension every {@link RUNNER_EXTEND_EVERY_MS}, within
 * SQS's 12 hours), then each message the handler finished is deleted, and each it failed is handed
 * back to SQS after the queue's own visibility timeout, for its redelivery and redrive. A run that
 * ends to be relaunched leaves them held for the next attempt.
 */
export class HeldBatch {
  readonly #run: Run;
  readonly #settings: RunnerSettings;
  readonly #messages: Held[];
  readonly #sqs: () => Promise<SqsSender>;
  readonly #refused = new Set<string>();
  #timer: unknown;
  #closed = false;

  private constructor(
    run: Run,
    settings: RunnerSettings,
    messages: SqsBatchMessage[],
    sqs: () => Promise<SqsSender>,
  ) {
    this.#run = run;
    this.#settings = settings;
    this.#sqs = sqs;
    const receivedAt = (run.envelope?.invocation.startedAt ?? run.deps.now()) - BATCHING_WINDOW_MS;
    this.#messages = messages.map((message) => ({ ...message, receivedAt }));
  }

  /** The held batch of this run, its first extension made; undefined when the envelope holds none. */
  static async open(run: Run, settings: RunnerSettings): Promise<HeldBatch | undefined> {
    const { envelope, deps } = run;
    if (envelope?.held !== 'sqs') return undefined;
    const messages = sqsBatchOf(envelope.event);
    if (!messages) return undefined;
    if (!deps.sqs) {
      run.log('ERROR', 'The handed-off SQS batch is held, and this runner has no SQS client to keep it', {
        ...run.ids(),
        consequence: 'the messages come back to the queue when their hold lapses, and are run again',
      });
      return undefined;
    }
    const sqsClient = deps.sqs;
    const held = new HeldBatch(run, settings, messages, () => Promise.resolve(sqsClient(settings.aws)));
    await held.extend();
    held.#schedule();
    return held;
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#run.deps.setTimeout(() => {
      this.extend().finally(() => this.#schedule());
    }, RUNNER_EXTEND_EVERY_MS);
  }

  /** Makes every message invisible for {@link RUNNER_VISIBILITY_S} more, with its latest receipt handle. */
  async extend(): Promise<void> {
    await this.#refreshHandles();
    const now = this.#run.deps.now();
    const extendable: Held[] = [];
    for (const message of this.#messages) {
      const left = MAX_VISIBILITY_S - (now - message.receivedAt) / 1000 - CEILING_SLACK_S;
      if (left >= RUNNER_VISIBILITY_S) extendable.push(message);
      else
        this.#refuse(
          message.messageId,
          'SQS keeps a message invisible at most 12 hours after it was received',
        );
    }
    if (extendable.length === 0) return;
    const refused = await changeVisibility(await this.#sqs(), extendable, RUNNER_VISIBILITY_S).catch(
      (error: unknown) =>
        extendable.map((message) => ({ messageId: message.messageId, code: String(error), message: '' })),
    );
    for (const failure of refused)
      this.#refuse(failure.messageId, `${failure.code} ${failure.message}`.trim());
  }

  /** Said once per message: it comes back to the queue, and a redelivery finds it held by this run. */
  #refuse(messageId: string, why: string): void {
    if (this.#refused.has(messageId)) return;
    this.#refused.add(messageId);
    this.#run.log('ERROR', 'A held SQS message could not be kept invisible', {
      ...this.#run.ids(),
      messageId,
      why,
      consequence:
        'SQS delivers it again; the wrapper finds it held by this invocation, answers it as failed and passes its new receipt handle on',
    });
  }

  /** A redelivery leaves its receipt handle in the message's marker: the handle to use from now on. */
  async #refreshHandles(): Promise<void> {
    const { bucket, prefix } = this.#settings.outcomes;
    const { envelope } = this.#run;
    if (bucket === undefined || envelope === undefined) return;
    const s3 = () => this.#run.deps.s3(this.#settings.aws);
    await Promise.all(
      this.#messages.map(async (message) => {
        const key = heldMessageKey(prefix, envelope.function.name, message.messageId);
        const marker = parseHeldMessage(await getObjectText(s3, bucket, key).catch(() => ''));
        if (
          marker &&
          marker.requestId === envelope.invocation.awsRequestId &&
          marker.receiptHandle !== message.receiptHandle
        ) {
          message.receiptHandle = marker.receiptHandle;
          message.receivedAt = marker.heldAt;
          this.#refused.delete(message.messageId);
        }
      }),
    );
  }

  /**
   * The run ended: a success deletes the messages the handler finished and hands back the ones its
   * `batchItemFailures` name; a failure that will not be relaunched hands back all of them; a run
   * that will be relaunched leaves them held for the next attempt.
   */
  async finish(code: ExitCode, value: unknown): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.#run.deps.clearTimeout(this.#timer);
    if (code !== EXIT_CODES.success && isRelaunchable(code)) return;
    await this.#refreshHandles();
    const failed =
      code === EXIT_CODES.success ? failedItems(value) : new Set(this.#messages.map((m) => m.messageId));
    const finished = this.#messages.filter((message) => !failed.has(message.messageId));
    const returned = this.#messages.filter((message) => failed.has(message.messageId));
    const sqs = await this.#sqs();
    const notDeleted = await deleteMessages(sqs, finished);
    // A failed message comes back as one a Lambda handler failed: after the queue's visibility timeout.
    const wait = returned[0] ? ((await queueVisibilityTimeout(sqs, returned[0].queueUrl)) ?? 30) : 0;
    const notReturned = await changeVisibility(sqs, returned, wait);
    this.#run.log(
      notDeleted.length + notReturned.length > 0 ? 'ERROR' : 'INFO',
      'The held SQS batch was released',
      {
        ...this.#run.ids(),
        deleted: finished.length - notDeleted.length,
        returnedToQueue: returned.map((message) => message.messageId),
        visibleAgainInS: wait,
        ...(notDeleted.length > 0 ? { notDeleted } : {}),
        ...(notReturned.length > 0 ? { notReturned } : {}),
      },
    );
  }
}
