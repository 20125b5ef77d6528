import { HandoffError } from '../errors.js';
import { abortAfter, backoffDelay, bounded, sleep } from '../retry.js';
import { loadEcs } from '../sdk.js';
import { type AfterAttempt, AttemptPlan, LaunchLimited, OutOfTime } from './attempt-plan.js';
import { startedByOf } from './input.js';
import { findStartedTask, keepOne, lookForEarlierTask } from './lookups.js';
import type { StartedTask, StartTaskParams } from './types.js';

/** The part of the remaining time kept for checking an unanswered attempt: a quarter, 250 ms to 2 s. */
export function reconcileReserve(budgetMs: number): number {
  return Math.min(Math.floor(budgetMs / 2), 2_000, Math.max(250, Math.floor(budgetMs / 4)));
}

/**
 * The time kept after the attempts: for the look-up of an unanswered attempt, or, with a launch
 * queue, half the time, so that queueing the start (which settles an unanswered call under the
 * same token) still has time when ECS answers slowly under a burst.
 */
function attemptsReserve(budgetMs: number, queueWhenLimited: boolean | undefined): number {
  const reserve = reconcileReserve(budgetMs);
  return queueWhenLimited ? Math.max(reserve, Math.floor(budgetMs / 2)) : reserve;
}

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
  const reserve =
    params.budgetMs === undefined ? 0 : attemptsReserve(params.budgetMs, params.queueWhenLimited);
  const workMs = params.budgetMs === undefined ? Number.MAX_SAFE_INTEGER : params.budgetMs - reserve;
  const endsAt = clock.now() + workMs;
  const work = abortAfter(clock, workMs, () => new Error('the attempts ran out of time'), params.signal);
  try {
    return await attemptUntil({ ...params, signal: work.signal }, endsAt);
  } catch (error) {
    if (!(error instanceof OutOfTime)) throw error;
    // With a launch queue, the launcher's call under the same token settles what went unanswered.
    if (params.queueWhenLimited && error.ownToken)
      throw new LaunchLimited(error.detail, error.attempts, error.lastError);
    return await reconcile(params, error, reserve);
  } finally {
    work.dispose();
  }
}

/**
 * The attempts ran out of time. When a call went unanswered and time was kept for it, the task
 * it may have started is looked for: found, the handoff succeeded; otherwise the handoff fails,
 * saying whether a task may exist.
 */
async function reconcile(
  params: StartTaskParams,
  outOfTime: OutOfTime,
  reserve: number,
): Promise<StartedTask> {
  const fail = (detail: string, cause: unknown): never => {
    throw new HandoffError('deadline', `${outOfTime.message}${detail}`, {
      requestId: params.requestId,
      attempts: outOfTime.attempts,
      cause: cause ?? outOfTime.lastError ?? params.signal.reason,
    });
  };
  if (!outOfTime.unanswered || reserve === 0 || params.signal.aborted) return fail('', undefined);
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
  if (!found) return fail('; a look-up found no task of this invocation, so none was started', undefined);
  return {
    taskArn: found,
    capacityProvider: outOfTime.provider,
    attempts: outOfTime.attempts,
    reused: true,
    reconciled: true,
  };
}

/**
 * The RunTask calls, as the {@link AttemptPlan} decides them: one call per attempt within its own
 * timeout, the task kept when it exists, a conflict resolved to the task the token started, and
 * backoff between retries. Under a token of the plan's own (see {@link AttemptPlan}), a look-up
 * before the first call and after the task started makes it the only one of its invocation.
 */
async function attemptUntil(params: StartTaskParams, endsAt: number): Promise<StartedTask> {
  const { client, signal, clock, random } = params;
  const { RunTaskCommand } = await loadEcs();
  const attemptTimeoutMs = params.attemptTimeoutMs ?? 5_000;
  const plan = new AttemptPlan(params);
  let lookupError: string | undefined;
  let inFlight = false;
  while (!signal.aborted) {
    const { input, lookFirst } = plan.next();
    if (lookFirst) {
      const earlier = await lookForEarlierTask(params, signal, endsAt, attemptTimeoutMs);
      if (earlier.kind === 'aborted') throw plan.outOfTime(inFlight);
      if (earlier.kind === 'failed') lookupError = earlier.error;
      if (earlier.kind === 'found')
        return {
          taskArn: earlier.taskArn,
          capacityProvider: plan.provider,
          attempts: plan.attempts,
          reused: true,
        };
    }
    plan.attempts += 1;
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
    let after: AfterAttempt;
    try {
      const response = await bounded(
        client.send(new RunTaskCommand(input), { abortSignal: attempt.signal }),
        attempt.signal,
      );
      const task = response.tasks?.find((t) => t.taskArn);
      if (task?.taskArn) {
        const started = {
          taskArn: task.taskArn,
          capacityProvider: plan.provider,
          attempts: plan.attempts,
          reused: false,
        };
        if (!plan.guarded) return started;
        return await keepOne(
          params,
          { ...started, ...(lookupError ? { lookupError } : {}) },
          attemptTimeoutMs,
        );
      }
      after = plan.afterFailures(response.failures ?? []);
    } catch (error) {
      if (error instanceof HandoffError && error.reason !== 'deadline') throw error;
      // Abandoned by its own timeout or by the deadline: ECS may have started the task anyway.
      if (attempt.signal.aborted) plan.unanswered = true;
      if (signal.aborted) throw plan.outOfTime(inFlight);
      inFlight = false;
      const conflict = await conflictingTask(params, error, attempt.signal);
      if (conflict?.taskArn)
        return {
          taskArn: conflict.taskArn,
          capacityProvider: plan.provider,
          attempts: plan.attempts,
          reused: true,
        };
      after = conflict ? plan.afterEmptyConflict(error) : plan.afterError(error, attempt.signal.aborted);
    } finally {
      if (!signal.aborted) inFlight = false;
      attempt.dispose();
    }
    if (after === 'queue') throw plan.limited();
    if (after === 'next-placement') continue;
    const { baseMs, capMs } = params.backoff ?? { baseMs: undefined, capMs: undefined };
    try {
      await sleep(backoffDelay(plan.retries, random, baseMs, capMs), clock, signal);
    } catch {
      throw plan.outOfTime(inFlight);
    }
    plan.retries += 1;
  }
  throw plan.outOfTime(inFlight);
}

/**
 * When RunTask answered ConflictException (the same token with other parameters): the task the
 * token started, as ECS names it, or as ListTasks finds it; `taskArn` undefined when neither
 * names one. Undefined for any other error.
 */
async function conflictingTask(
  params: StartTaskParams,
  error: unknown,
  signal: AbortSignal,
): Promise<{ taskArn: string | undefined } | undefined> {
  if ((error as { name?: string }).name !== 'ConflictException') return undefined;
  const named = (error as { resourceIds?: string[] }).resourceIds?.find((id) => id.length > 0);
  return { taskArn: named ?? (await findStartedTask(params, signal).catch(() => undefined)) };
}
