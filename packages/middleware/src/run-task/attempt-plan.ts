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
 * (Spot, then on-demand) with which client token, whether a token is new (an earlier task of the
 * invocation is then looked for first), what a failure or an error calls for (next placement,
 * retry, or rejected), and how the attempts ran out of time.
 */
export class AttemptPlan {
  readonly #params: StartTaskParams;
  readonly #providers: CapacityProvider[];
  readonly #tried = new Set<string>();
  #providerIndex = 0;
  #placement = 0;
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

  /**
   * The RunTask request of the next attempt. `newToken` when its client token was not tried yet:
   * it may start a task although an earlier attempt of this invocation (a Lambda retry, a
   * concurrent duplicate) started one under another token, which must be looked for first.
   */
  next(): { input: RunTaskCommandInput; newToken: boolean } {
    const params = this.#params;
    const input = buildRunTaskInput(
      params.config,
      this.provider,
      {
        requestId: params.requestId,
        functionName: params.functionName,
        functionVersion: params.functionVersion,
        placement: this.#placement,
        tokenBase: params.tokenBase,
        standby: params.standby,
      },
      params.overrides,
    );
    const token = input.clientToken;
    const newToken = token !== undefined && !this.#tried.has(token);
    if (token !== undefined) this.#tried.add(token);
    return { input, newToken };
  }

  /**
   * RunTask answered without a task: a failure that is not capacity or throttling rejects the
   * handoff; otherwise the next placement is tried (a new token), at once while there is another
   * capacity provider.
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
    this.#placement += 1;
    if (this.#providerIndex < this.#providers.length - 1) {
      this.#providerIndex += 1;
      return 'next-placement';
    }
    return 'retry';
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
