import { ERROR_KIND, ImmortalLambdaError } from '@immortal-lambda/protocol/basics';

export { EnvelopeError, ImmortalLambdaError } from '@immortal-lambda/protocol/basics';

/**
 * The wrapper's configuration is missing or invalid. Thrown once, when the handler is wrapped,
 * and lists every problem found (`problems`), each with the setting to fix.
 *
 * @example
 * ```ts
 * import { ConfigurationError, withFargateFallback } from '@immortal-lambda/middleware';
 * try {
 *   withFargateFallback(fn, { env: {} });
 * } catch (error) {
 *   if (error instanceof ConfigurationError) console.error(error.problems.join('\n'));
 * }
 * ```
 */
export class ConfigurationError extends ImmortalLambdaError {
  static override readonly [ERROR_KIND] = 'ConfigurationError';
  /** One sentence per missing or invalid setting. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super(
      `immortal-lambda is not configured correctly (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems
        .map((problem) => `  - ${problem}`)
        .join('\n')}`,
      options,
    );
    this.problems = problems;
  }
}

/** Why a handoff did not happen. */
export type HandoffFailureReason =
  /** The event (or a context field) could not be serialised to JSON. */
  | 'unserializable-event'
  /**
   * The Lambda context or environment cannot identify the invocation: a missing or non-string
   * `awsRequestId`, `functionName` or `invokedFunctionArn`, an `identity` that is not an object,
   * or a `_HANDLER` the runner would refuse.
   */
  | 'invalid-context'
  /** The envelope is larger than RunTask's override limit and no payload bucket is configured. */
  | 'payload-too-large'
  /** Writing the envelope to S3 failed. */
  | 'payload-upload-failed'
  /** ECS refused RunTask for a reason that retrying cannot fix (permissions, parameters). */
  | 'run-task-rejected'
  /** RunTask kept failing (throttling, capacity, network) until the time ran out. */
  | 'deadline'
  /** The AWS SDK could not be loaded. */
  | 'sdk-unavailable'
  /** The launch could not be sent to the launch queue (the handoff then kept trying RunTask). */
  | 'launch-queue-failed';

/**
 * The invocation could not be handed off to Fargate. When the handler has not finished by the
 * hard deadline either, the wrapper throws this error so that Lambda's retries, dead-letter queue
 * or on-failure destination record the invocation. `cause` holds the underlying error.
 *
 * @example
 * ```ts
 * import { HandoffError } from '@immortal-lambda/middleware';
 * try {
 *   await handler(event, context);
 * } catch (error) {
 *   if (error instanceof HandoffError) console.error(error.reason, error.requestId, error.cause);
 * }
 * ```
 */
export class HandoffError extends ImmortalLambdaError {
  static override readonly [ERROR_KIND] = 'HandoffError';
  readonly reason: HandoffFailureReason;
  readonly requestId: string | undefined;
  /** How many RunTask calls were made before giving up. */
  readonly attempts: number;

  constructor(
    reason: HandoffFailureReason,
    message: string,
    details: { requestId?: string | undefined; attempts?: number; cause?: unknown } = {},
  ) {
    super(message, 'cause' in details ? { cause: details.cause } : undefined);
    this.reason = reason;
    this.requestId = details.requestId;
    this.attempts = details.attempts ?? 0;
  }
}

/**
 * The reason the handler's `signal` is aborted once its invocation has been handed off: the
 * work continues in the Fargate task named by `taskArn`, so the copy in Lambda must stop.
 *
 * @example
 * ```ts
 * import { HandedOffError } from '@immortal-lambda/middleware';
 * signal.addEventListener('abort', () => {
 *   if (signal.reason instanceof HandedOffError) console.info('continuing in', signal.reason.taskArn);
 * });
 * ```
 */
export class HandedOffError extends ImmortalLambdaError {
  static override readonly [ERROR_KIND] = 'HandedOffError';
  /** The task, or undefined when the handoff was queued (the launcher starts the task). */
  readonly taskArn: string | undefined;

  constructor(taskArn: string | undefined) {
    super(
      taskArn
        ? `the invocation was handed off to Fargate task ${taskArn}; stop work here, it continues there`
        : 'the invocation was queued for a Fargate task, which the launcher starts as soon as the launch rate allows; stop work here, it continues there',
    );
    this.taskArn = taskArn;
  }
}

/**
 * The safety net could not start (or restart) an invocation on Fargate. Thrown from the watchdog
 * and from `relaunchFailures`, so that Lambda retries the event and, past its retries, sends it
 * to the safety net function's own dead-letter queue or on-failure destination.
 *
 * @example
 * ```ts
 * import { RelaunchError } from '@immortal-lambda/middleware';
 * const isRelaunch = (error: unknown) => error instanceof RelaunchError;
 * ```
 */
export class RelaunchError extends ImmortalLambdaError {
  static override readonly [ERROR_KIND] = 'RelaunchError';
  /** The invocation that could not be started. */
  readonly requestId: string | undefined;

  constructor(message: string, options?: { requestId?: string | undefined; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.requestId = options?.requestId;
  }
}
