import type { ECSClient, TaskOverride } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import { ENV, type Envelope } from '@immortal-lambda/protocol';
import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
import type { ResolvedConfig } from '../config.js';
import { RelaunchError } from '../errors.js';
import { describeError } from '../logger.js';
import { type OutcomeLocation, storeDestinationRecord, writeOutcome } from '../outcome-store.js';
import { abortAfter } from '../retry.js';
import { startTask } from '../run-task/start-task.js';
import type { Clock, FallbackLogger } from '../types.js';
import { sendFailure } from './destinations.js';
import type { StoppedRunner, WatchdogDecision, WatchdogOutcome } from './watchdog-verdict.js';

/** What the watchdog's actions work with: the invocation whose task stopped, and the clients. */
export interface WatchdogTarget {
  stopped: StoppedRunner;
  envelope: Envelope;
  attempt: number;
  /** Where the invocation's records are; undefined without a payload bucket. */
  at: OutcomeLocation | undefined;
  config: ResolvedConfig;
  clock: Clock;
  logger: FallbackLogger;
  s3: () => Promise<S3Client>;
  ecs: () => Promise<ECSClient>;
  random: () => number;
  destinations: DestinationClients | undefined;
  /** Where final failures go instead of the function's on-failure destination (`FARGATE_FALLBACK_FINAL_FAILURES`). */
  finalFailures: string | undefined;
  /** `FARGATE_FALLBACK_DESTINATIONS`: the function's destinations as deployed, by qualifier. */
  knownDestinations: string | undefined;
}

/**
 * Does what the watchdog decided: nothing more for a success or a result the runner recorded;
 * records and sends a result nobody recorded, and a final failure; relaunches.
 */
export async function carryOut(
  decision: WatchdogDecision,
  target: WatchdogTarget,
  timing: { backoffMs: number; maxAttempts: number; remainingMs: () => number | undefined },
): Promise<WatchdogOutcome> {
  const { logger, stopped } = target;
  const { verdict } = stopped;
  const ids = {
    requestId: target.envelope.invocation.awsRequestId,
    attempt: target.attempt,
    taskArn: stopped.detail.taskArn,
  };
  switch (decision.kind) {
    case 'succeeded':
      return { action: 'succeeded', reason: decision.reason, ...ids };
    case 'result':
      if (decision.record) {
        await recordFailure(target, decision.reason);
        logger.error('Invocation failed: its runner task ended without recording a result', {
          ...ids,
          reason: decision.reason,
        });
      } else {
        logger.info("Runner task ended with its invocation's result; not relaunched", {
          ...ids,
          reason: decision.reason,
        });
      }
      return { action: 'result', reason: decision.reason, ...ids };
    case 'already-relaunched':
      return { action: 'already-relaunched', reason: decision.reason, ...ids, taskArn: decision.taskArn };
    case 'gave-up':
      await recordFailure(target, decision.reason);
      logger.error('Invocation failed: its runner task stopped before a result on every attempt', {
        ...ids,
        maxAttempts: timing.maxAttempts,
        reason: verdict.reason,
      });
      return { action: 'gave-up', reason: decision.reason, ...ids };
    case 'relaunch': {
      const started = await relaunch(target, decision.next, decision.onDemand, timing, decision.size);
      logger.info('Runner task stopped before a result; the invocation was relaunched', {
        ...ids,
        reason: verdict.reason,
        relaunchedAs: started.taskArn,
        nextAttempt: decision.next,
        capacityProvider: started.capacityProvider,
      });
      return {
        action: 'relaunched',
        reason: verdict.reason,
        requestId: ids.requestId,
        attempt: decision.next,
        taskArn: started.taskArn,
      };
    }
  }
}

/** The invocation's end, recorded as failed in `final` and sent to the on-failure destination. */
async function recordFailure(target: WatchdogTarget, message: string): Promise<void> {
  const { detail, verdict } = target.stopped;
  const error = {
    name: 'TaskStopped',
    message,
    retryable: false,
    ...('exitCode' in verdict && verdict.exitCode !== undefined ? { exitCode: verdict.exitCode } : {}),
    ...(detail.stopCode ? { stopCode: detail.stopCode } : {}),
  };
  if (target.at) {
    await writeOutcome(await target.s3(), target.at, 'final', {
      status: 'failed',
      attempt: target.attempt,
      writer: 'watchdog',
      ...(detail.taskArn ? { taskArn: detail.taskArn } : {}),
      error,
      reason: message,
      updatedAt: new Date(target.clock.now()).toISOString(),
    });
  }
  await sendFailure({
    envelope: target.envelope,
    error,
    attempt: target.attempt,
    taskArn: detail.taskArn,
    clients: target.destinations,
    now: target.clock.now(),
    logger: target.logger,
    onFailure: target.finalFailures,
    known: target.knownDestinations,
    store: target.at ? storeDestinationRecord(target.s3, target.at) : undefined,
  });
}

/**
 * Starts attempt `next` with the same envelope after its backoff (`backoffMs × 2^(attempt−1)`),
 * with client tokens of its own (`<request id>-a<next>`), and records it `relaunching`. Throws
 * {@link RelaunchError} when it cannot be started, so that Lambda retries the event.
 */
async function relaunch(
  target: WatchdogTarget,
  next: number,
  onDemand: boolean,
  timing: { backoffMs: number; remainingMs: () => number | undefined },
  size?: { cpu: number; memory: number },
): Promise<{ taskArn: string; capacityProvider: string }> {
  const { clock, config, envelope, stopped } = target;
  const requestId = envelope.invocation.awsRequestId;
  await new Promise<void>((resolve) =>
    clock.setTimeout(resolve, timing.backoffMs * 2 ** (target.attempt - 1)),
  );
  const budget = Math.max(1_000, (timing.remainingMs() ?? 60_000) - 1_000);
  const guard = abortAfter(clock, budget, () => new Error('the watchdog ran out of time to relaunch'));
  try {
    const started = await startTask({
      config: { ...config, capacity: onDemand ? 'FARGATE' : config.capacity },
      client: await target.ecs(),
      requestId,
      functionName: envelope.function.name,
      functionVersion: envelope.function.version,
      overrides: relaunchOverrides(stopped.override, config.containerName, next, size),
      clock,
      random: target.random,
      signal: guard.signal,
      budgetMs: budget,
      tokenBase: `${requestId}-a${next}`,
      ...(stopped.override.environment.get(ENV.standby) ? { standby: true } : {}),
    });
    if (target.at) {
      await writeOutcome(await target.s3(), target.at, `relaunch-${next}`, {
        status: 'relaunching',
        attempt: next,
        writer: 'watchdog',
        taskArn: started.taskArn,
        reason: stopped.verdict.reason,
        updatedAt: new Date(clock.now()).toISOString(),
      });
    }
    return started;
  } catch (error) {
    target.logger.error('The invocation could not be relaunched', {
      requestId,
      attempt: target.attempt,
      taskArn: stopped.detail.taskArn,
      error: describeError(error),
    });
    throw new RelaunchError(
      `invocation ${requestId} could not be relaunched (attempt ${next}): ${(error as Error).message}`,
      { requestId, cause: error },
    );
  } finally {
    guard.dispose();
  }
}

/** The stopped task's own override, with the next attempt's number. */
function relaunchOverrides(
  override: StoppedRunner['override'],
  containerName: string,
  next: number,
  size: { cpu: number; memory: number } | undefined,
): TaskOverride {
  return {
    // More memory after an out-of-memory kill: a task-level override of the definition's size.
    ...(size ? { cpu: String(size.cpu), memory: String(size.memory) } : {}),
    containerOverrides: [
      {
        name: override.name ?? containerName,
        environment: [
          ...[...override.environment]
            .filter(([name]) => name !== ENV.attempt)
            .map(([name, value]) => ({ name, value })),
          { name: ENV.attempt, value: String(next) },
        ],
      },
    ],
  };
}
