import type { Failure, RunTaskCommandInput } from '@aws-sdk/client-ecs';
import { HandoffError } from '../errors.js';
import { isRetryableError } from '../retry.js';
import { buildRunTaskInput, type CapacityProvider, isRetryableFailure } from './input.js';
import type { StartTaskParams } from './types.js';

/** The attempts ran out of time; `unanswered` when some RunTask call never answered. */
export class OutOfTime extends Error {
  constructor(
    message: string,
    readonly unanswered: boolean,
    readonly attempts: number,
    readonly lastError: unknown,
    readonly provider: CapacityProvider,
  ) {
    super(message);
  }
}

/** What to do after a RunTask attempt that started no task: try the next placement at once, or back off and retry. */
export type AfterAttempt = 'next-placement' | 'retry';

const failureText = (failures: Failure[]) =>
  failures.map((f) => [f.reason, f.detail, f.arn].filter(Boolean).join(' ')).join('; ') ||
  'no task and no failure given';

/**
 * The decisions of a handoff's RunTask attempts, apart from the calls: which placement to try
 * (Spot, then on-demand) with which client token, whether a look-up must guard the attempt, what a
 * failure or an error calls for (next placement, retry, or rejected), and how the attempts ran
 * out of time.
 *
 * Client tokens: the first pass over the placements (Spot, then on-demand) uses one token, the
 * invocation's own. ECS deduplicates on it: a retried or duplicated invocation gets the task that
 * token started, or `ConflictException` naming it when its parameters differ (another
 * placement, another envelope), so these attempts need no look-up. ECS's documentation does not
 * say whether it remembers a token whose RunTask answered only `failures[]`. If it does, the
 * on-demand call after a Spot failure gets a conflict that names no task, and the plan moves on to
 * a token of its own (`<token>-p<n>`), as it does after every placement failed. Only those later
 * tokens can start a task beside one started under another token, so only they are guarded: a
 * look-up before (an earlier task is kept) and after (the earliest of two is kept).
 */
export class AttemptPlan {
  readonly #params: StartTaskParams;
  readonly #providers: CapacityProvider[];
  readonly #tried = new Set<string>();
  #providerIndex = 0;
  /** Which client token: 0 is the invocation's own, n > 0 its n-th token of its own. */
  #token = 0;
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
   * handoff; otherwise the next capacity provider is tried at once (the same token while it is the
   * invocation's own), and after the last one a new token, after a backoff.
   */
  afterFailures(failures: Failure[]): AfterAttempt {
    this.lastError = new Error(`RunTask answered without a task: ${failureText(failures)}`);
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
    if (this.#providerIndex < this.#providers.length - 1) {
      this.#providerIndex += 1;
      if (this.guarded) this.#token += 1;
      return 'next-placement';
    }
    this.#token += 1;
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
      `no Fargate task could be started before the deadline after ${attempts} RunTask attempt${attempts === 1 ? '' : 's'}: ${last}`,
      this.unanswered || inFlight,
      attempts,
      lastError,
      this.provider,
    );
  }
}
