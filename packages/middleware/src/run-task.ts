import type { ECSClient, RunTaskCommandInput, Task, TaskOverride } from '@aws-sdk/client-ecs';
import { clientToken, DEFAULT_OUTCOME_PREFIX, ENV, startedBy } from '@immortal-lambda/protocol';
import type { ResolvedConfig } from './config.js';
import { HandoffError } from './errors.js';
import { abortAfter, backoffDelay, bounded, isRetryableError, sleep } from './retry.js';
import { loadEcs } from './sdk.js';
import type { Clock } from './types.js';

/** One placement to try: Spot or on-demand. */
export type CapacityProvider = 'FARGATE' | 'FARGATE_SPOT';

/**
 * The container override that carries the envelope (inline JSON or an s3:// URI), and where the
 * runner writes its outcome records: the payload bucket, and the prefix when it is not the default;
 * `extra` adds variables (a standby task's resume location).
 */
export function buildOverrides(
  containerName: string,
  envelopeValue: string,
  outcomes: { bucket: string | undefined; prefix: string } = {
    bucket: undefined,
    prefix: DEFAULT_OUTCOME_PREFIX,
  },
  extra: readonly { name: string; value: string }[] = [],
): TaskOverride {
  return {
    containerOverrides: [
      {
        name: containerName,
        environment: [
          { name: ENV.envelope, value: envelopeValue },
          ...(outcomes.bucket ? [{ name: ENV.payloadBucket, value: outcomes.bucket }] : []),
          ...(outcomes.bucket && outcomes.prefix !== DEFAULT_OUTCOME_PREFIX
            ? [{ name: ENV.outcomePrefix, value: outcomes.prefix }]
            : []),
          ...extra,
        ],
      },
    ],
  };
}

/**
 * The size RunTask counts against its 8192-character limit: the serialised overrides, JSON
 * included. UTF-8 bytes are counted, which is never less than characters.
 */
export function overridesSize(overrides: TaskOverride): number {
  return Buffer.byteLength(JSON.stringify(overrides), 'utf8');
}

const tagValue = (value: string) => value.replace(/[^\p{L}\p{N}\s_.:/=+\-@]/gu, '_').slice(0, 256);

/**
 * The `startedBy` mark: `immortal-lambda/<request id>` for a handoff, with `/standby` for a
 * pre-warmed task, so that a handoff that replaces a standby task never takes it for its own.
 */
function startedByOf(ids: { requestId: string; standby?: boolean | undefined }): string {
  return startedBy(ids.standby ? `${ids.requestId}/standby` : ids.requestId);
}

/** The RunTask request for one placement. */
export function buildRunTaskInput(
  config: ResolvedConfig,
  provider: CapacityProvider,
  ids: {
    requestId: string;
    functionName: string;
    functionVersion: string;
    placement: number;
    /** What the client token is made from (default: the request id). */
    tokenBase?: string | undefined;
    /** A pre-warmed task: marked `immortal-lambda/<request id>/standby`, apart from handoffs. */
    standby?: boolean | undefined;
  },
  overrides: TaskOverride,
): RunTaskCommandInput {
  const input: RunTaskCommandInput = {
    cluster: config.cluster,
    taskDefinition: config.taskDefinition,
    count: 1,
    clientToken: clientToken(ids.tokenBase ?? ids.requestId, ids.placement),
    startedBy: startedByOf(ids),
    networkConfiguration: {
      awsvpcConfiguration: {
        subnets: [...config.subnets],
        assignPublicIp: config.assignPublicIp ? 'ENABLED' : 'DISABLED',
        ...(config.securityGroups.length > 0 ? { securityGroups: [...config.securityGroups] } : {}),
      },
    },
    overrides,
    tags: [
      { key: 'immortal-lambda:function', value: tagValue(ids.functionName) },
      { key: 'immortal-lambda:version', value: tagValue(ids.functionVersion) },
      { key: 'immortal-lambda:request-id', value: tagValue(ids.requestId) },
    ],
  };
  if (provider === 'FARGATE_SPOT') {
    input.capacityProviderStrategy = [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }];
  } else {
    input.launchType = 'FARGATE';
  }
  return input;
}

/** Capacity shortages and throttling reported in `failures[]` may clear on a later attempt. */
export function isRetryableFailure(reason: string | undefined): boolean {
  return /capacity|RESOURCE:|throttl|rate exceeded|try again|unavailable/i.test(reason ?? '');
}

export interface StartTaskParams {
  config: ResolvedConfig;
  client: ECSClient;
  requestId: string;
  functionName: string;
  functionVersion: string;
  overrides: TaskOverride;
  clock: Clock;
  random: () => number;
  /** Aborts at the hard deadline; every call and every wait ends with it. */
  signal: AbortSignal;
  /** How long one RunTask call may take before it is abandoned and retried. */
  attemptTimeoutMs?: number;
  /**
   * What the client tokens are made from, when not the request id: a relaunch is a new attempt
   * at the same invocation and needs tokens of its own (`<request id>-a<attempt>`).
   */
  tokenBase?: string;
  /** A pre-warmed task (see {@link buildRunTaskInput}'s `standby`). */
  standby?: boolean;
  /**
   * Look for earlier tasks of the invocation among running ones only: a relaunch follows a task
   * that stopped, which must not count as started.
   */
  runningOnly?: boolean;
  /**
   * How long until `signal` aborts. When given, the attempts stop a little earlier, so that an
   * attempt whose answer never came can be checked (did it start a task?) before the deadline.
   */
  budgetMs?: number;
}

export interface StartedTask {
  taskArn: string;
  capacityProvider: CapacityProvider;
  attempts: number;
  /** True when the task had been started by an earlier attempt of the same invocation. */
  reused: boolean;
  /** A task this handoff started and stopped again because an earlier one of the same invocation exists. */
  stoppedDuplicate?: string;
  /** Why looking for an earlier task failed, when it did: the handoff went on without knowing. */
  lookupError?: string;
  /** True when the task was found after the attempts ran out with an attempt unanswered. */
  reconciled?: boolean;
}

/** The attempts ran out of time; `unanswered` when some RunTask call never answered. */
class OutOfTime extends Error {
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

/** The part of the remaining time kept for checking an unanswered attempt: a quarter, 250 ms to 2 s. */
export function reconcileReserve(budgetMs: number): number {
  return Math.min(Math.floor(budgetMs / 2), 2_000, Math.max(250, Math.floor(budgetMs / 4)));
}

const failureText = (
  failures: { arn?: string | undefined; reason?: string | undefined; detail?: string | undefined }[],
) =>
  failures.map((f) => [f.reason, f.detail, f.arn].filter(Boolean).join(' ')).join('; ') ||
  'no task and no failure given';

/**
 * Calls RunTask until a task exists, retrying throttling, network errors and capacity
 * failures with jittered backoff inside the time that the signal allows, and moving from Spot
 * to on-demand when Spot has no capacity. A 200 answer with `failures[]` and no task is a
 * failure. Throws {@link HandoffError} when no task can be started.
 *
 * A RunTask call that never answered may still have started a task. So the attempts stop a
 * reserve before the deadline, and when one went unanswered, the task is looked for by its
 * `startedBy` mark: found, the handoff succeeded; not found, nothing was started; the look-up
 * itself unanswered, the error says that a task may exist and how to find it.
 */
export async function startTask(params: StartTaskParams): Promise<StartedTask> {
  const { clock } = params;
  const reserve = params.budgetMs === undefined ? 0 : reconcileReserve(params.budgetMs);
  const workMs = params.budgetMs === undefined ? Number.MAX_SAFE_INTEGER : params.budgetMs - reserve;
  const endsAt = clock.now() + workMs;
  const work = abortAfter(clock, workMs, () => new Error('the attempts ran out of time'), params.signal);
  try {
    return await attemptUntil({ ...params, signal: work.signal }, endsAt);
  } catch (error) {
    if (!(error instanceof OutOfTime)) throw error;
    const fail = (detail: string, cause: unknown): never => {
      throw new HandoffError('deadline', `${error.message}${detail}`, {
        requestId: params.requestId,
        attempts: error.attempts,
        cause: cause ?? error.lastError ?? params.signal.reason,
      });
    };
    if (!error.unanswered || reserve === 0 || params.signal.aborted) return fail('', undefined);
    let found: string | undefined;
    try {
      found = await findStartedTask(params, params.signal);
    } catch (lookupFailure) {
      return fail(
        `; whether that call started a task could not be checked before the deadline (${
          lookupFailure instanceof Error ? lookupFailure.message : String(lookupFailure)
        }): look for tasks with startedBy ${startedByOf(params)} and stop any you find`,
        lookupFailure,
      );
    }
    if (found) {
      return {
        taskArn: found,
        capacityProvider: error.provider,
        attempts: error.attempts,
        reused: true,
        reconciled: true,
      };
    }
    return fail('; a look-up found no task of this invocation, so none was started', undefined);
  } finally {
    work.dispose();
  }
}

async function attemptUntil(params: StartTaskParams, endsAt: number): Promise<StartedTask> {
  const { config, client, signal, clock, random } = params;
  const { RunTaskCommand } = await loadEcs();
  const providers: CapacityProvider[] =
    config.capacity === 'FARGATE_SPOT,FARGATE' ? ['FARGATE_SPOT', 'FARGATE'] : [config.capacity];
  const attemptTimeoutMs = params.attemptTimeoutMs ?? 5_000;
  let providerIndex = 0;
  let placement = 0;
  let attempts = 0;
  let retries = 0;
  let lastError: unknown;

  let inFlight = false;
  let unanswered = false;
  const fail = (): never => {
    const last = inFlight
      ? `the last RunTask call had not answered${lastError instanceof Error ? ` (before it: ${lastError.message})` : ''}`
      : lastError instanceof Error
        ? lastError.message
        : 'no RunTask call finished';
    throw new OutOfTime(
      `no Fargate task could be started before the deadline after ${attempts} RunTask attempt${attempts === 1 ? '' : 's'}: ${last}`,
      unanswered || inFlight,
      attempts,
      lastError,
      providers[providerIndex] as CapacityProvider,
    );
  };

  // Tokens already tried: a new one (the first, or after a capacity failure) may start a task
  // although an earlier attempt of this invocation (a Lambda retry, a concurrent duplicate)
  // started one under another token; look for it first.
  const tried = new Set<string>();
  let lookupError: string | undefined;
  const lookup = async (): Promise<string | undefined> => {
    // A quarter of the time left at most: starting the task matters more than this check.
    const limit = Math.min(attemptTimeoutMs, Math.max(50, Math.floor((endsAt - clock.now()) / 4)));
    const look = abortAfter(
      clock,
      limit,
      () => new Error(`ListTasks did not answer within ${limit} ms`),
      signal,
    );
    try {
      return await findStartedTask(params, look.signal);
    } catch (error) {
      if (signal.aborted) fail();
      lookupError = `${(error as { name?: string }).name ?? 'Error'}: ${error instanceof Error ? error.message : String(error)}`;
      return undefined;
    } finally {
      look.dispose();
    }
  };

  while (!signal.aborted) {
    const provider = providers[providerIndex] as CapacityProvider;
    const input = buildRunTaskInput(
      config,
      provider,
      {
        requestId: params.requestId,
        functionName: params.functionName,
        functionVersion: params.functionVersion,
        placement,
        tokenBase: params.tokenBase,
        standby: params.standby,
      },
      params.overrides,
    );
    if (input.clientToken !== undefined && !tried.has(input.clientToken)) {
      tried.add(input.clientToken);
      const earlier = await lookup();
      if (earlier) return { taskArn: earlier, capacityProvider: provider, attempts, reused: true };
    }
    attempts += 1;
    // One attempt ends at its own timeout or at the deadline, whichever comes first.
    const attempt = abortAfter(
      clock,
      attemptTimeoutMs,
      () =>
        Object.assign(new Error(`RunTask did not answer within ${attemptTimeoutMs} ms`), {
          name: 'TimeoutError',
        }),
      signal,
    );
    inFlight = true;
    try {
      const response = await bounded(
        client.send(new RunTaskCommand(input), { abortSignal: attempt.signal }),
        attempt.signal,
      );
      const task: Task | undefined = response.tasks?.find((t) => t.taskArn);
      if (task?.taskArn) {
        const started: StartedTask = {
          taskArn: task.taskArn,
          capacityProvider: provider,
          attempts,
          reused: false,
          ...(lookupError ? { lookupError } : {}),
        };
        return await keepOne(params, started, attemptTimeoutMs);
      }
      const failures = response.failures ?? [];
      lastError = new Error(`RunTask answered without a task: ${failureText(failures)}`);
      if (!failures.every((f) => isRetryableFailure(f.reason))) {
        throw new HandoffError(
          'run-task-rejected',
          `ECS did not start the runner task: ${failureText(failures)}`,
          {
            requestId: params.requestId,
            attempts,
            cause: lastError,
          },
        );
      }
      placement += 1;
      if (providerIndex < providers.length - 1) {
        providerIndex += 1;
        continue;
      }
    } catch (error) {
      if (error instanceof HandoffError && error.reason !== 'deadline') throw error;
      if (error instanceof OutOfTime) throw error;
      // Abandoned by its own timeout or by the deadline: ECS may have started the task anyway.
      if (attempt.signal.aborted) unanswered = true;
      if (signal.aborted) fail();
      inFlight = false;
      const name = (error as { name?: string }).name;
      if (name === 'ConflictException') {
        // ECS names the task the token already started; ListTasks is only the fallback.
        const named = (error as { resourceIds?: string[] }).resourceIds?.find((id) => id.length > 0);
        const existing = named ?? (await findStartedTask(params, attempt.signal).catch(() => undefined));
        if (existing) return { taskArn: existing, capacityProvider: provider, attempts, reused: true };
      }
      lastError = error;
      if (!isRetryableError(error) && !attempt.signal.aborted) {
        throw new HandoffError(
          'run-task-rejected',
          `ECS rejected RunTask (${name ?? 'Error'}: ${error instanceof Error ? error.message : String(error)}); check the cluster, task definition, subnets and the function's ecs:RunTask and iam:PassRole permissions`,
          { requestId: params.requestId, attempts, cause: error },
        );
      }
    } finally {
      if (!signal.aborted) inFlight = false;
      attempt.dispose();
    }
    try {
      await sleep(backoffDelay(retries, random), clock, signal);
    } catch {
      fail();
    }
    retries += 1;
  }
  return fail();
}

/**
 * Finds the task an earlier attempt of the same invocation started, whatever token started it,
 * by its `startedBy` mark: a running one first (the earliest created, when there are several),
 * else one that has already stopped.
 */
async function findStartedTask(params: StartTaskParams, signal: AbortSignal): Promise<string | undefined> {
  const statuses = params.runningOnly ? (['RUNNING'] as const) : (['RUNNING', 'STOPPED'] as const);
  const [running, stopped] = await Promise.all(
    statuses.map((desiredStatus) => listStarted(params, desiredStatus, signal)),
  );
  if (running && running.length > 0) return (await earliest(params, running, signal)) ?? running[0];
  return stopped?.[0];
}

async function listStarted(
  params: StartTaskParams,
  desiredStatus: 'RUNNING' | 'STOPPED',
  signal: AbortSignal,
): Promise<string[]> {
  const { ListTasksCommand } = await loadEcs();
  const found = await bounded(
    params.client.send(
      new ListTasksCommand({
        cluster: params.config.cluster,
        startedBy: startedByOf(params),
        desiredStatus,
      }),
      { abortSignal: signal },
    ),
    signal,
  );
  return found.taskArns ?? [];
}

/** The earliest created of several tasks (ties by ARN): the one every duplicate defers to. */
async function earliest(
  params: StartTaskParams,
  arns: string[],
  signal: AbortSignal,
): Promise<string | undefined> {
  if (arns.length === 1) return arns[0];
  const { DescribeTasksCommand } = await loadEcs();
  const described = await bounded(
    params.client.send(new DescribeTasksCommand({ cluster: params.config.cluster, tasks: arns }), {
      abortSignal: signal,
    }),
    signal,
  );
  const created = (task: Task) =>
    task.createdAt ? new Date(task.createdAt).getTime() : Number.POSITIVE_INFINITY;
  const tasks = (described.tasks ?? []).filter((task) => task.taskArn);
  tasks.sort((a, b) => created(a) - created(b) || String(a.taskArn).localeCompare(String(b.taskArn)));
  return tasks[0]?.taskArn;
}

/**
 * After starting a task, makes sure it is the only one of its invocation: when a concurrent
 * attempt of the same request id started another, the earliest created is kept by both, and
 * this attempt stops its own. Throttled or unanswered look-ups and stops are tried again within
 * the attempt's time (a duplicate left running would run the invocation twice); a look-up that
 * still fails leaves the task as it is.
 */
async function keepOne(
  params: StartTaskParams,
  started: StartedTask,
  timeoutMs: number,
): Promise<StartedTask> {
  const check = abortAfter(
    params.clock,
    timeoutMs,
    () => new Error('ListTasks did not answer'),
    params.signal,
  );
  try {
    for (let retry = 0; ; retry++) {
      try {
        return await dedupe(params, started, check.signal);
      } catch (error) {
        if (check.signal.aborted || !isRetryableError(error)) return started;
        await sleep(backoffDelay(retry, params.random, 50, 500), params.clock, check.signal).catch(
          () => undefined,
        );
      }
    }
  } finally {
    check.dispose();
  }
}

/** One look: the winner among the invocation's running tasks, and this attempt's own stopped if it lost. */
async function dedupe(
  params: StartTaskParams,
  started: StartedTask,
  signal: AbortSignal,
): Promise<StartedTask> {
  const running = await listStarted(params, 'RUNNING', signal);
  if (running.length < 2) return started;
  const winner = await earliest(params, running, signal);
  if (winner === undefined || winner === started.taskArn) return started;
  const { StopTaskCommand } = await loadEcs();
  await bounded(
    params.client.send(
      new StopTaskCommand({
        cluster: params.config.cluster,
        task: started.taskArn,
        reason: `immortal-lambda: duplicate of ${winner}, started for the same request id`,
      }),
      { abortSignal: signal },
    ),
    signal,
  );
  return { ...started, taskArn: winner, reused: true, stoppedDuplicate: started.taskArn };
}
