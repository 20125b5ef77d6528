import {
  type Envelope,
  EXIT_CODES,
  formatS3Uri,
  isRelaunchable,
  type Journal,
  type OutcomeError,
  type OutcomeRecord,
  outcomeKey,
  outcomeRecord,
  RESULT_INLINE_LIMIT,
  type RunnerTimeline,
} from '@immortal-lambda/protocol';
import type { DestinationClients, DestinationOutcome } from '@immortal-lambda/protocol/destinations';
import type { Fetch } from './download.js';
import { getObjectIfPresent, putJson, type S3Source } from './s3.js';

type Log = (level: 'INFO' | 'ERROR', message: string, attributes: Record<string, unknown>) => void;

/** Where this attempt's records go, and who this task is. */
export interface OutcomeTarget {
  bucket: string | undefined;
  prefix: string;
  attempt: number;
  taskArn: string | undefined;
}

/** The task's own ARN and when its image was pulled (epoch ms), as far as ECS tells. */
export interface TaskMetadata {
  taskArn?: string;
  pullStartedAt?: number;
  pullStoppedAt?: number;
}

/**
 * The task's own ARN and when its image was pulled, from the ECS task metadata endpoint
 * (`ECS_CONTAINER_METADATA_URI_V4`); empty where there is none or it does not answer within a second.
 */
export async function taskMetadata(
  env: Record<string, string | undefined>,
  fetch: Fetch,
): Promise<TaskMetadata> {
  const base = env.ECS_CONTAINER_METADATA_URI_V4;
  if (!base) return {};
  try {
    const response = await fetch(`${base}/task`, { signal: AbortSignal.timeout(1_000) });
    if (!response.ok) return {};
    const metadata = (await response.json()) as {
      TaskARN?: unknown;
      PullStartedAt?: unknown;
      PullStoppedAt?: unknown;
    };
    const time = (value: unknown) => {
      const at = typeof value === 'string' ? Date.parse(value) : Number.NaN;
      return Number.isFinite(at) ? at : undefined;
    };
    const pullStartedAt = time(metadata.PullStartedAt);
    const pullStoppedAt = time(metadata.PullStoppedAt);
    return {
      ...(typeof metadata.TaskARN === 'string' ? { taskArn: metadata.TaskARN } : {}),
      ...(pullStartedAt !== undefined ? { pullStartedAt } : {}),
      ...(pullStoppedAt !== undefined ? { pullStoppedAt } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * Writes this attempt's outcome record (`attempt-N.json`) as the run goes, and sends the final
 * outcome to the function's async destinations. Neither may change how the run ends: a record or
 * destination that cannot be written is logged as an error, loudly, and the exit code stands.
 */
export class OutcomeRecorder {
  readonly #envelope: Envelope;
  readonly #target: OutcomeTarget;
  readonly #s3: S3Source;
  readonly #now: () => number;
  readonly #log: Log;
  #pending: Promise<void> = Promise.resolve();
  #timeline: RunnerTimeline | undefined;

  constructor(envelope: Envelope, target: OutcomeTarget, s3: S3Source, now: () => number, log: Log) {
    this.#envelope = envelope;
    this.#target = target;
    this.#s3 = s3;
    this.#now = now;
    this.#log = log;
  }

  /** Records `running`; the write goes on in the background, before any later one. */
  running(): void {
    this.#queue(() => this.#put({ status: 'running' }));
  }

  /** How this attempt started: carried by the records written from now on. */
  timeline(timeline: RunnerTimeline): void {
    this.#timeline = timeline;
  }

  /** Waits for the writes queued so far. */
  flush(): Promise<void> {
    return this.#pending;
  }

  /** Records the attempt's end: `succeeded` with the result, or `failed` with the error. */
  async finished(
    code: number,
    value: unknown,
    error: Record<string, unknown> | undefined,
    steps?: OutcomeRecord['steps'],
    /** What could not be kept of the result (see `jsonSafe`), recorded as the record's reason. */
    note?: string,
  ): Promise<void> {
    const counted = { ...(steps && steps.total > 0 ? { steps } : {}), ...(note ? { reason: note } : {}) };
    if (code === EXIT_CODES.success) {
      this.#queue(async () => {
        const json = JSON.stringify(value) ?? 'null';
        const bytes = Buffer.byteLength(json);
        if (bytes <= RESULT_INLINE_LIMIT)
          return this.#put({ status: 'succeeded', result: value, resultBytes: bytes, ...counted });
        const key = this.#key(`attempt-${this.#target.attempt}.result`);
        await putJson(this.#s3, this.#target.bucket as string, key, json);
        return this.#put({
          status: 'succeeded',
          resultLocation: formatS3Uri({ bucket: this.#target.bucket as string, key }),
          resultBytes: bytes,
          ...counted,
        });
      });
    } else {
      const failure: OutcomeError = {
        name: String(error?.name ?? 'Error'),
        message: String(error?.message ?? 'the runner failed'),
        ...(typeof error?.stack === 'string' ? { stack: error.stack } : {}),
        exitCode: code,
        retryable: isRelaunchable(code),
      };
      this.#queue(() => this.#put({ status: 'failed', error: failure, ...counted }));
    }
    await this.#pending;
  }

  #queue(write: () => Promise<void>): void {
    if (!this.#target.bucket) return;
    this.#pending = this.#pending.then(write).catch((error: unknown) => {
      this.#log('ERROR', 'The outcome record could not be written', {
        requestId: this.#envelope.invocation.awsRequestId,
        bucket: this.#target.bucket,
        error: { name: (error as Error).name, message: (error as Error).message },
      });
    });
  }

  /**
   * Keeps a destination record too large for its destination beside this attempt's record
   * (`attempt-N.destination.json`), for `deliverOutcome`'s `store`; `undefined` with no bucket.
   */
  destinationStore(): ((body: string) => Promise<string>) | undefined {
    const { bucket, attempt } = this.#target;
    if (!bucket) return undefined;
    return async (body) => {
      const key = this.#key(`attempt-${attempt}.destination`);
      await putJson(this.#s3, bucket, key, body);
      return formatS3Uri({ bucket, key });
    };
  }

  #key(entry: `attempt-${number}` | `attempt-${number}.result` | `attempt-${number}.destination`): string {
    return outcomeKey(
      this.#target.prefix,
      this.#envelope.function.name,
      this.#envelope.invocation.awsRequestId,
      entry,
    );
  }

  async #put(fields: Partial<OutcomeRecord> & Pick<OutcomeRecord, 'status'>): Promise<void> {
    const record = outcomeRecord({
      functionName: this.#envelope.function.name,
      functionVersion: this.#envelope.function.version,
      requestId: this.#envelope.invocation.awsRequestId,
      attempt: this.#target.attempt,
      writer: 'runner',
      ...(this.#target.taskArn ? { taskArn: this.#target.taskArn } : {}),
      ...(this.#timeline ? { timeline: this.#timeline } : {}),
      ...fields,
      updatedAt: new Date(this.#now()).toISOString(),
    });
    await putJson(
      this.#s3,
      this.#target.bucket as string,
      this.#key(`attempt-${this.#target.attempt}`),
      JSON.stringify(record),
    );
  }
}

/**
 * Sends a final outcome to the function's destinations (GetFunctionEventInvokeConfig of the ARN
 * it was invoked by): success to on-success, a failure that is the invocation's result to
 * on-failure. A failure the watchdog may still relaunch is not final and goes nowhere.
 */
export async function sendFinalOutcome(input: {
  envelope: Envelope;
  code: number;
  value: unknown;
  error: Record<string, unknown> | undefined;
  attempt: number;
  taskArn: string | undefined;
  /** The destination clients, made (and their SDK loaded) only when an outcome is sent. */
  clients: () => DestinationClients | Promise<DestinationClients>;
  now: () => number;
  log: Log;
  /** Keeps a record too large for its destination whole, and resolves to where. */
  store?: ((body: string) => Promise<string>) | undefined;
  /** `FARGATE_FALLBACK_DESTINATIONS`: the destinations the deployment configures, by qualifier. */
  known?: string | undefined;
}): Promise<void> {
  const { code } = input;
  if (code !== EXIT_CODES.success && isRelaunchable(code)) return;
  const requestId = input.envelope.invocation.awsRequestId;
  const outcome: DestinationOutcome =
    code === EXIT_CODES.success
      ? { ok: true, result: input.value }
      : {
          ok: false,
          error: {
            name: String(input.error?.name ?? 'Error'),
            message: String(input.error?.message ?? 'the runner failed'),
            ...(typeof input.error?.stack === 'string' ? { stack: input.error.stack } : {}),
          },
        };
  try {
    // Loaded at the end of a run only: a runner's start loads no destination SDK client.
    const { deliverOutcome, parseKnownDestinations } = await import('@immortal-lambda/protocol/destinations');
    const destination = await deliverOutcome({
      known: parseKnownDestinations(input.known),
      envelope: input.envelope,
      outcome,
      attempt: input.attempt,
      taskArn: input.taskArn,
      writer: 'runner',
      clients: await input.clients(),
      now: input.now(),
      ...(input.store ? { store: input.store } : {}),
    });
    if (destination)
      input.log('INFO', 'The outcome was sent to the function destination', { requestId, destination });
  } catch (error) {
    input.log('ERROR', 'The outcome could not be sent to the function destination', {
      requestId,
      error: { name: (error as Error).name, message: (error as Error).message },
    });
  }
}

/**
 * The journal of the invocation in the payload bucket (`journal.json` beside its records): each
 * finished step and checkpoint is saved, at most once a second and always before the run ends,
 * so that a relaunch resumes from the latest step instead of from the handoff.
 *
 * @example
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3';
 * import { JournalStore } from '@immortal-lambda/runner';
 * const store = new JournalStore({
 *   envelope, bucket: 'jobs-payloads', prefix: 'immortal-lambda/outcomes/', s3: () => new S3Client({}),
 *   now: Date.now, log: console.log, timers: { set: setTimeout, clear: (t) => clearTimeout(t as NodeJS.Timeout) },
 * });
 * store.save({ steps: { load: { result: 42 } } });
 * await store.flush();
 * ```
 */
export class JournalStore {
  readonly #key: string;
  readonly #bucket: string | undefined;
  readonly #s3: S3Source;
  readonly #now: () => number;
  readonly #log: Log;
  readonly #timers: { set: (callback: () => void, ms: number) => unknown; clear: (handle: unknown) => void };
  #latest: Journal | undefined;
  #lastWrite = Number.NEGATIVE_INFINITY;
  #timer: unknown;
  #writing: Promise<void> = Promise.resolve();

  constructor(input: {
    envelope: Envelope;
    bucket: string | undefined;
    prefix: string;
    s3: S3Source;
    now: () => number;
    log: Log;
    timers: { set: (callback: () => void, ms: number) => unknown; clear: (handle: unknown) => void };
  }) {
    this.#key = outcomeKey(
      input.prefix,
      input.envelope.function.name,
      input.envelope.invocation.awsRequestId,
      'journal',
    );
    this.#bucket = input.bucket;
    this.#s3 = input.s3;
    this.#now = input.now;
    this.#log = input.log;
    this.#timers = input.timers;
  }

  /** The journal a previous attempt saved, or `undefined` (none, or no bucket). */
  async load(): Promise<Journal | undefined> {
    if (!this.#bucket) return undefined;
    const text = await getObjectIfPresent(this.#s3, this.#bucket, this.#key);
    return text === undefined ? undefined : (JSON.parse(text || 'null') as Journal);
  }

  /** Saves the journal now, or within a second of the last write. */
  save(journal: Journal): void {
    if (!this.#bucket) return;
    this.#latest = journal;
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#lastWrite + 1_000 - this.#now());
    this.#timer = this.#timers.set(() => {
      this.#timer = undefined;
      this.#write();
    }, wait);
  }

  /** Writes what is not written yet, and waits for it. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) {
      this.#timers.clear(this.#timer);
      this.#timer = undefined;
      this.#write();
    }
    await this.#writing;
  }

  #write(): void {
    const journal = this.#latest;
    if (!journal) return;
    this.#latest = undefined;
    this.#lastWrite = this.#now();
    this.#writing = this.#writing
      .then(() => putJson(this.#s3, this.#bucket as string, this.#key, JSON.stringify(journal)))
      .catch((error: unknown) => {
        this.#log('ERROR', 'The journal could not be saved; a relaunch would resume from an earlier step', {
          error: { name: (error as Error).name, message: (error as Error).message },
        });
      });
  }
}
