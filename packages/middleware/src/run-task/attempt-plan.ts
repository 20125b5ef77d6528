import type { Failure, RunTaskCommandInput } from '@aws-sdk/client-ecs';
import { isThrottled } from '@immortal-lambda/protocol';
import { HandoffError } from '../errors.js';
import { isRetryableError } from '../retry.js';
import { buildRunTaskInput, type CapacityProvider, isRetryableFailure } from './input.js';
import type { StartTaskParams } from './types.js';

/** "1 RunTask attempt", "3 RunTask attempts". */
export const runTaskAttempts = (attempts: number): string =>
  `${attempts} RunTask attempt${attempts === 1 ? '' : 's'}`;

/** The attempts ran out of time; `unanswered` when some RunTask call never answered. */
export class OutOfTime extends Error {
  constructor(
    /** Why no task started: the last error, or the call still unanswered. */
    readonly detail: string,
    readonly unanswered: boolean,
    readonly attempts: number,
    readonly lastError: unknown,
    readonly provider: CapacityProvider,
    /** Only the invocation's own token was used: a launch queue may take the start over. */
    readonly ownToken = false,
  ) {
    super(
      `no Fargate task could be started before the deadline after ${runTaskAttempts(attempts)}: ${detail}`,
    );
  }
}

/**
 * What to do after a RunTask attempt that started no task: try the next placement at once, back
 * off and retry, or leave the start to the launch queue.
 */
export type AfterAttempt = 'next-placement' | 'retry' | 'queue';

/**
 * The task cannot start now (launch rate, capacity, or RunTask calls that went unanswered until
 * the time ran out), and the handoff asked to queue it then (`queueWhenLimited`): only the
 * invocation's own token was used, so the launcher's call with that token and the same
 * parameters starts the one task, or finds the one an unanswered call started.
 */
export class LaunchLimited extends Error {
  constructor(
    /** Why: the last error, or the call left unanswered. */
    cause: string,
    readonly attempts: number,
    readonly lastError: unknown,
  ) {
    super(`the task could not start now (${cause})`);
  }
}

const failureText = (failures: Failure[]) =>
  failures.map((f) => [f.reason, f.detail, f.arn].filter(Boolean).join(' ')).join('; ') ||
  'no task and no failure given';

/**
 * The decisions of a handoff's RunTask attempts, apart from the calls: which placement to try
 * (Spot, then on-demand) with which client token, whether a look-up must guard the attempt, what a
 * failure or an error calls for (next placement, retry, queue, or rejected), and how the attempts
 * ran out of time.
 *
 * Client tokens: every attempt uses the invocation's own token, and ECS deduplicates on it: a
 * retried or duplicated invocation gets the task that token started, or `ConflictException`
 * naming it when its parameters differ (another placement, another envelope), so these attempts
 * need no look-up. ECS's documentation does not say whether it remembers a token whose RunTask
 * answered only `failures[]`. So a retry after every placement failed carries a tag of its own
 * (`immortal-lambda:retry`): where ECS forgot the token, the retry is a new call that may start
 * the task; where it remembered it, the retry's other parameters meet a conflict that names no
 * task, and the plan moves on to a token of its own (`<token>-p<n>`, the same n for every
 * attempt of the invocation, so they deduplicate on it too). Only those tokens are guarded, as a
 * task could exist under the token before: a look-up before (an earlier task is kept) and after
 * (the earliest of two is kept).
 */
export class AttemptPlan {
  readonly #params: StartTaskParams;
  readonly #providers: CapacityProvider[];
  readonly #tried = new Set<string>();
  #providerIndex = 0;
  /** Which client token: 0 is the invocation's own, n > 0 its n-th token of its own. */
  #token = 0;
  /** Which retry after every placement found no capacity: tagged, so its parameters differ. */
  #retry = 0;
  attempts = 0;
  retries = 0;
  lastError: unknown;
  /** Some RunTask call was abandoned unanswered: it may have started a task. */
  unanswered = false;

  constructor(params: StartTaskParams) {
    this.#params = params;
    const { capacity } = params.config;
    this.#providers = capacity === 'FARGATE_SPOT,FARGATE' ? ['FARGATE_SPOT', 'FARGATE'] : [capacity];
  }

  get provider(): CapacityProvider {
    return this.#providers[this.#providerIndex] as CapacityProvider;
  }

  /** Whether a launch that meets the rate or no capacity may be queued now (see {@link LaunchLimited}). */
  get #queueable(): boolean {
    return this.#params.queueWhenLimited === true && !this.guarded;
  }

  /** The attempts end here: the launch is queued. */
  limited(): LaunchLimited {
    const cause = this.lastError instanceof Error ? this.lastError.message : String(this.lastError);
    return new LaunchLimited(cause, this.attempts, this.lastError);
  }

  /** Whether the current token is one of the plan's own (not the invocation's): its attempts are guarded by look-ups. */
  get guarded(): boolean {
    return this.#token > 0;
  }

  /**
   * The RunTask request of the next attempt. `lookFirst` when its client token is one of the
   * plan's own, not tried yet: it may start a task although another attempt of this invocation
   * started one under another token, which must be looked for first.
   */
  next(): { input: RunTaskCommandInput; lookFirst: boolean } {
    const params = this.#params;
    const input = buildRunTaskInput(
      params.config,
      this.provider,
      {
        requestId: params.requestId,
        functionName: params.functionName,
        functionVersion: params.functionVersion,
        placement: this.#token,
        retry: this.#retry,
        tokenBase: params.tokenBase,
        standby: params.standby,
      },
      params.overrides,
    );
    const token = input.clientToken;
    const lookFirst = this.guarded && token !== undefined && !this.#tried.has(token);
    if (token !== undefined) this.#tried.add(token);
    return { input, lookFirst };
  }

  /**
   * RunTask answered without a task: a failure that is not capacity or throttling rejects the
   * handoff; otherwise the next capacity provider is tried at once, and after the last one the
   * launch is queued (with a launch queue) or retried after a backoff, tagged as a retry.
   */
  afterFailures(failures: Failure[]): AfterAttempt {
    this.lastError = new Error(`RunTask answered without a task: ${failureText(failures)}`);
    const lastProvider = this.#providerIndex === this.#providers.length - 1;
    if (!failures.every((f) => isRetryableFailure(f.reason))) {
      throw new HandoffError(
        'run-task-rejected',
        `ECS did not start the runner task: ${failureText(failures)}`,
        {
          requestId: this.#params.requestId,
          attempts: this.attempts,
          cause: this.lastError,
        },
      );
    }
    if (!lastProvider) {
      this.#providerIndex += 1;
      return 'next-placement';
    }
    if (this.#queueable) return 'queue';
    this.#retry += 1;
    return 'retry';
  }

  /**
   * RunTask answered `ConflictException` and neither ECS nor a look-up named a task: the token is
   * remembered without one (a failed placement under the same token), so a token of the plan's
   * own is tried at once.
   */
  afterEmptyConflict(error: unknown): AfterAttempt {
    this.lastError = error;
    this.#token += 1;
    return 'next-placement';
  }

  /**
   * RunTask failed: throttling, server and network errors, and an attempt abandoned by its own
   * timeout, are retried; anything else rejects the handoff.
   */
  afterError(error: unknown, abandoned: boolean): AfterAttempt {
    this.lastError = error;
    if (isThrottled(error) && this.#queueable) return 'queue';
    if (!isRetryableError(error) && !abandoned) {
      const name = (error as { name?: string }).name;
      throw new HandoffError(
        'run-task-rejected',
        `ECS rejected RunTask (${name ?? 'Error'}: ${error instanceof Error ? error.message : String(error)}); check the cluster, task definition, subnets and the function's ecs:RunTask and iam:PassRole permissions`,
        { requestId: this.#params.requestId, attempts: this.attempts, cause: error },
      );
    }
    return 'retry';
  }

  /** The attempts are over: why, and whether a call still in flight may have started a task. */
  outOfTime(inFlight: boolean): OutOfTime {
    const { lastError, attempts } = this;
    const last = inFlight
      ? `the last RunTask call had not answered${lastError instanceof Error ? ` (before it: ${lastError.message})` : ''}`
      : lastError instanceof Error
        ? lastError.message
        : 'no RunTask call finished';
    return new OutOfTime(
      last,
      this.unanswered || inFlight,
      attempts,
      lastError,
      this.provider,
      !this.guarded,
    );
  }
}
