import type { Task } from '@aws-sdk/client-ecs';
import { OWN_STOP_PREFIX } from '@immortal-lambda/protocol';
import { abortAfter, backoffDelay, bounded, isRetryableError, sleep } from '../retry.js';
import { loadEcs } from '../sdk.js';
import { startedByOf } from './input.js';
import type { StartedTask, StartTaskParams } from './types.js';

/** What looking for an earlier task of the invocation found. */
export type EarlierTask =
  | { kind: 'found'; taskArn: string }
  | { kind: 'none' }
  /** The look-up failed: the handoff goes on without knowing, and says why. */
  | { kind: 'failed'; error: string }
  /** The deadline came during the look-up. */
  | { kind: 'aborted' };

/**
 * Looks for a task an earlier attempt of the invocation started (a Lambda retry, a concurrent
 * duplicate) under another client token, within a quarter of the time left at most: starting the
 * task matters more than this check.
 */
export async function lookForEarlierTask(
  params: StartTaskParams,
  signal: AbortSignal,
  endsAt: number,
  attemptTimeoutMs: number,
): Promise<EarlierTask> {
  const { clock } = params;
  const limit = Math.min(attemptTimeoutMs, Math.max(50, Math.floor((endsAt - clock.now()) / 4)));
  const look = abortAfter(
    clock,
    limit,
    () => new Error(`ListTasks did not answer within ${limit} ms`),
    signal,
  );
  try {
    const found = await findStartedTask(params, look.signal);
    return found ? { kind: 'found', taskArn: found } : { kind: 'none' };
  } catch (error) {
    if (signal.aborted) return { kind: 'aborted' };
    return { kind: 'failed', error: describeLookupError(error) };
  } finally {
    look.dispose();
  }
}

/**
 * Finds the task an earlier attempt of the same invocation started, whatever token started it,
 * by its `startedBy` mark: the earliest created when there are several. ListTasks by `startedBy`
 * lists tasks whose desired status is RUNNING only, and takes no other filter ("When you specify
 * startedBy as the filter, it must be the only filter that you use"): a task that has already
 * stopped is not found here; a retry with the same client token finds it through RunTask itself.
 */
export async function findStartedTask(
  params: StartTaskParams,
  signal: AbortSignal,
): Promise<string | undefined> {
  const running = await listStarted(params, signal);
  if (running.length === 0) return undefined;
  return (await earliest(params, running, signal)) ?? running[0];
}

/** The tasks of the invocation's `startedBy` mark whose desired status is RUNNING. */
async function listStarted(params: StartTaskParams, signal: AbortSignal): Promise<string[]> {
  const { ListTasksCommand } = await loadEcs();
  const found = await bounded(
    params.client.send(
      new ListTasksCommand({ cluster: params.config.cluster, startedBy: startedByOf(params) }),
      { abortSignal: signal },
    ),
    signal,
  );
  return found?.taskArns ?? [];
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
 * still fails leaves the task as it is, and says why (`lookupError`), for the handoff's log.
 */
export async function keepOne(
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
        if (check.signal.aborted || !isRetryableError(error)) {
          return { ...started, lookupError: started.lookupError ?? describeLookupError(error) };
        }
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
  const running = await listStarted(params, signal);
  if (running.length < 2) return started;
  const winner = await earliest(params, running, signal);
  if (winner === undefined || winner === started.taskArn) return started;
  const { StopTaskCommand } = await loadEcs();
  await bounded(
    params.client.send(
      new StopTaskCommand({
        cluster: params.config.cluster,
        task: started.taskArn,
        reason: `${OWN_STOP_PREFIX}duplicate of ${winner}, started for the same request id`,
      }),
      { abortSignal: signal },
    ),
    signal,
  );
  return { ...started, taskArn: winner, reused: true, stoppedDuplicate: started.taskArn };
}

/** A failed look-up as the handoff's log names it: the error's name and message. */
function describeLookupError(error: unknown): string {
  return `${(error as { name?: string }).name ?? 'Error'}: ${error instanceof Error ? error.message : String(error)}`;
}
