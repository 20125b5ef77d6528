import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { CapacityOption, EnvelopeTransport } from '@immortal-lambda/protocol/basics';
import type { Context } from 'aws-lambda';

/**
 * The third argument the wrapped function receives. `signal` is aborted once the invocation
 * has been handed off (in Lambda) or the task is being stopped (in the runner): stop work and
 * let the promise settle. It is compatible with middy's `{ signal }`.
 *
 * @example
 * ```ts
 * import type { FallbackHandlerExtras } from '@immortal-lambda/middleware';
 * const work = async (extras: FallbackHandlerExtras) => fetch(url, { signal: extras.signal });
 * ```
 */
export interface FallbackHandlerExtras {
  readonly signal: AbortSignal;
  /** Where this call runs: `lambda` before any handoff, `fargate` inside the runner. */
  readonly runtime: 'lambda' | 'fargate';
  /**
   * Runs `fn` once per invocation: its JSON result is recorded under `name`, carried across the
   * handoff (and a relaunch), and returned from the record instead of running `fn` again. A step
   * still running when the handoff begins runs again in Fargate (at-least-once); a finished one
   * never does. Names are unique within an invocation.
   */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  /** Records a JSON progress value (a cursor, a page) that {@link lastCheckpoint} gives back on resume. */
  checkpoint(state: unknown): void;
  /** The last checkpoint recorded for this invocation (before the handoff, or in this run); `undefined` before any. */
  readonly lastCheckpoint: unknown;
}

/**
 * A handler that can be wrapped: an async Lambda handler that may also take the extras.
 *
 * @example
 * ```ts
 * import type { FallbackHandler } from '@immortal-lambda/middleware';
 * const fn: FallbackHandler<{ id: string }, string> = async (event, _context, { signal }) => {
 *   signal.throwIfAborted();
 *   return event.id;
 * };
 * ```
 */
export type FallbackHandler<TEvent = unknown, TResult = unknown> = (
  event: TEvent,
  context: Context,
  extras: FallbackHandlerExtras,
) => Promise<TResult> | TResult;

/**
 * What the wrapper returns after a handoff, unless `handoffResponse` says otherwise.
 *
 * @example
 * ```ts
 * import type { HandoffReceipt } from '@immortal-lambda/middleware';
 * const taskId = (receipt: HandoffReceipt) => receipt.taskArn.split('/').pop();
 * ```
 */
export interface HandoffReceipt {
  status: 'handed-off';
  requestId: string;
  taskArn: string;
  cluster: string;
  capacityProvider: 'FARGATE' | 'FARGATE_SPOT';
  /** `inline` when the envelope travelled in the container override, else its `s3://` URI. */
  envelopeLocation: string;
  envelopeBytes: number;
  /** ISO 8601 time at which the task was confirmed. */
  handedOffAt: string;
  /**
   * The SQS messages of a held batch (their ids): the answer Lambda gets names each as a batch
   * item failure, so that none is deleted before the runner finished it.
   */
  heldMessages?: string[];
  /** A held stream batch's first sequence number: the answer names it as failed, and Lambda retries the batch. */
  heldFrom?: string;
}

/**
 * What the wrapper returns after a handoff whose task could not start at once (Fargate's launch
 * rate, or no capacity anywhere), unless `handoffResponse` says otherwise: the launch is on the
 * launch queue, and the launcher starts the task, with the same client token, as soon as the rate
 * allows. `getInvocationStatus` says `queued`, then `handed-off` with the task.
 *
 * @example
 * ```ts
 * import type { HandoffAnswer } from '@immortal-lambda/middleware';
 * const where = (answer: HandoffAnswer) => (answer.status === 'queued' ? answer.launchQueue : answer.taskArn);
 * ```
 */
export interface QueuedReceipt {
  status: 'queued';
  requestId: string;
  cluster: string;
  /** The launch queue's URL, and the message that carries the launch. */
  launchQueue: string;
  messageId: string;
  envelopeLocation: string;
  envelopeBytes: number;
  /** ISO 8601 time at which the launch was queued. */
  queuedAt: string;
  /**
   * The SQS messages of a held batch (their ids): the answer Lambda gets names each as a batch
   * item failure, so that none is deleted before the runner finished it.
   */
  heldMessages?: string[];
  /** A held stream batch's first sequence number: the answer names it as failed, and Lambda retries the batch. */
  heldFrom?: string;
}

/**
 * A handoff's answer: the task started ({@link HandoffReceipt}), or its start queued ({@link QueuedReceipt}).
 *
 * @example
 * ```ts
 * import type { HandoffAnswer } from '@immortal-lambda/middleware';
 * const started = (answer: HandoffAnswer) => answer.status === 'handed-off';
 * ```
 */
export type HandoffAnswer = HandoffReceipt | QueuedReceipt;

export type { CapacityOption } from '@immortal-lambda/protocol/basics';

/**
 * A structured logger. A Powertools `Logger` fits as it is; the default writes one JSON line.
 *
 * @example
 * ```ts
 * import type { FallbackLogger } from '@immortal-lambda/middleware';
 * const logger: FallbackLogger = {
 *   info: (message, attributes) => console.info(JSON.stringify({ message, ...attributes })),
 *   error: (message, attributes) => console.error(JSON.stringify({ message, ...attributes })),
 * };
 * ```
 */
export interface FallbackLogger {
  info(message: string, attributes: Record<string, unknown>): void;
  error(message: string, attributes: Record<string, unknown>): void;
  /** Used for configuration warnings when present; `error` otherwise. */
  warn?(message: string, attributes: Record<string, unknown>): void;
}

/**
 * Time, injectable so that deadlines can be tested without waiting.
 *
 * @example
 * ```ts
 * import type { Clock } from '@immortal-lambda/middleware';
 * const clock: Clock = {
 *   now: () => Date.now(),
 *   setTimeout: (fn, ms) => setTimeout(fn, ms),
 *   clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
 * };
 * ```
 */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Options of {@link withFargateFallback} and `fargateFallback`. Each setting of the
 * configuration table may also come from its environment variable; an option wins.
 *
 * @example
 * ```ts
 * import { withFargateFallback } from '@immortal-lambda/middleware';
 * export const handler = withFargateFallback(fn, {
 *   cluster: 'jobs',
 *   taskDefinition: 'immortal-runner',
 *   subnets: ['subnet-0123456789abcdef0'],
 *   handoffResponse: (receipt) => ({ statusCode: 202, body: JSON.stringify({ status: receipt.status }) }),
 * });
 * ```
 */
export interface FargateFallbackOptions<TEvent = unknown, TResponse = unknown> {
  /** ECS cluster name or ARN (`FARGATE_FALLBACK_CLUSTER`). */
  cluster?: string;
  /** Runner task definition: family, family:revision or ARN (`FARGATE_FALLBACK_TASK_DEFINITION`). */
  taskDefinition?: string;
  /** The runner's container name in the task definition (`FARGATE_FALLBACK_CONTAINER`, default `runner`). */
  containerName?: string;
  /** Subnet ids for the task's awsvpc network (`FARGATE_FALLBACK_SUBNETS`, comma-separated). */
  subnets?: readonly string[] | string;
  /** Security group ids (`FARGATE_FALLBACK_SECURITY_GROUPS`, comma-separated). */
  securityGroups?: readonly string[] | string;
  /** Give the task a public IP (`FARGATE_FALLBACK_ASSIGN_PUBLIC_IP`, default `false`). */
  assignPublicIp?: boolean;
  /** `FARGATE`, `FARGATE_SPOT` or `FARGATE_SPOT,FARGATE` (`FARGATE_FALLBACK_CAPACITY`, default `FARGATE`). */
  capacity?: CapacityOption;
  /** S3 bucket for envelopes too large for the container override (`FARGATE_FALLBACK_BUCKET`). */
  payloadBucket?: string;
  /**
   * The SQS queue URL of handoffs that meet Fargate's launch rate (`FARGATE_FALLBACK_LAUNCH_QUEUE`):
   * a handoff whose RunTask is throttled, or finds no capacity anywhere, is queued there and
   * answered at once with a `queued` receipt; the launcher starts its task as soon as the rate
   * allows, with the same client token. Needs `payloadBucket` (the records). Default none.
   */
  launchQueue?: string;
  /**
   * Hold a handed-off SQS batch in its queue until the runner has finished it
   * (`FARGATE_FALLBACK_HOLD_SQS_BATCHES`, default `true`): the batch is answered with every
   * message as a batch item failure, so that Lambda deletes none (the mapping needs
   * `ReportBatchItemFailures`), and kept invisible; the runner deletes each message it finished
   * and hands the ones the handler failed back to SQS. `false`: the receipt is the answer, and
   * Lambda deletes the batch at once.
   */
  holdSqsBatches?: boolean;
  /**
   * Keep a Kinesis or DynamoDB shard in order across a handoff (`FARGATE_FALLBACK_ORDERED`,
   * default `false`): a handed-off batch is answered as failed from its first record, so that
   * Lambda retries it instead of moving on; each retry answers the same while the runner works, and
   * the batch is released with the runner's outcome. The mapping needs `ReportBatchItemFailures`,
   * no bisecting, and retries and record age without a limit. Needs `payloadBucket`.
   */
  ordered?: boolean;
  /** Key prefix of spilled envelopes (`FARGATE_FALLBACK_PAYLOAD_PREFIX`, default `immortal-lambda/envelopes/`). */
  payloadPrefix?: string;
  /** How long before the deadline the handoff starts (`FARGATE_FALLBACK_MARGIN_MS`, default 10000). */
  marginMs?: number;
  /**
   * `auto` (default: inline in the container override when it fits, else S3) or `s3` (always
   * through the payload bucket, so the event never shows in DescribeTasks or ECS events)
   * (`FARGATE_FALLBACK_ENVELOPE_TRANSPORT`).
   */
  envelopeTransport?: EnvelopeTransport;
  /**
   * Hand off at most this long after the invocation started, whatever the remaining time
   * (`FARGATE_FALLBACK_MAX_IN_LAMBDA_MS`): behind API Gateway (29 s), answer before it gives up.
   */
  maxInLambdaMs?: number;
  /**
   * Start the runner task this long before the handoff, in standby (`FARGATE_FALLBACK_PREWARM_MS`,
   * default 0: off; needs the payload bucket). The task gets the code and imports the handler,
   * then waits; at the handoff the envelope is written where it waits and it resumes within a
   * second. A handler that finishes in Lambda first cancels it (it exits, "not needed").
   */
  prewarmMs?: number;
  /**
   * Load the handoff's code and its AWS SDK clients this long before the handoff
   * (`FARGATE_FALLBACK_LOAD_AHEAD_MS`, default 3000; 0: at the handoff). Done once per sandbox,
   * and only when an invocation runs that close to its handoff: the handoff then makes its calls
   * at once instead of first loading the SDK (about 150 ms of a full vCPU). With the credentials in
   * the environment (as on Lambda), each client made is also taken through one rehearsed call,
   * nothing sent, so that its first real call does not compile the SDK's code.
   */
  loadAheadMs?: number;
  /**
   * Decides before the handler runs whether the invocation goes straight to Fargate: `true` hands
   * it off at once, with no work in Lambda (a job known to be long: "export all", a large file).
   * The receipt, the records and the status are those of any handoff. A predicate that throws
   * fails the invocation with its error (Lambda's retries apply).
   */
  routeToFargate?: (event: TEvent, context: Context) => boolean | Promise<boolean>;
  /**
   * `false` turns off the CloudWatch metrics (one EMF line per handoff: `Handoffs`,
   * `HandoffFailures`, `HandoffLatency`, `TimeInLambda`, `EnvelopeBytes`) and the runner's
   * (`FARGATE_FALLBACK_METRICS`; namespace and dimensions: `FARGATE_FALLBACK_METRICS_NAMESPACE`,
   * `FARGATE_FALLBACK_METRICS_DIMENSIONS`). No metric is written when nothing is handed off.
   */
  metrics?: boolean;
  /** Where the EMF lines go; default stdout, where Lambda's log turns them into metrics. */
  metricsWriter?: (line: string) => void;
  /** Kill switch: run the handler as if unwrapped (`FARGATE_FALLBACK_DISABLED`). */
  disabled?: boolean;
  /**
   * Builds the response returned after a handoff; by default the receipt: a {@link HandoffReceipt}
   * when the task started, a {@link QueuedReceipt} when its start was queued (`launchQueue`).
   */
  handoffResponse?: (
    receipt: HandoffAnswer,
    event: TEvent,
    context: Context,
  ) => TResponse | Promise<TResponse>;
  /** An ECS client to use instead of the one created on the first handoff. */
  ecsClient?: ECSClient;
  /** An S3 client to use instead of the one created on the first spill. */
  s3Client?: S3Client;
  /** An SQS client for the launch queue, instead of the one created on the first queued launch. */
  sqsClient?: SQSClient;
  /** Where the handoff records go; default: one JSON line on stdout/stderr. */
  logger?: FallbackLogger;
  /** The environment to read settings and Lambda variables from; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Time source; default the system clock. */
  clock?: Clock;
  /** Random source in [0, 1) for retry jitter; default `Math.random`. */
  random?: () => number;
}
