import {
  cancelMarker,
  claimInvocation,
  formatS3Uri,
  isPreconditionFailed,
  type Journal,
  outcomeKey,
} from '@immortal-lambda/protocol';
import type { ResolvedConfig } from '../config.js';
import { describeError } from '../logger.js';
import { bounded } from '../retry.js';
import { loadEcs, loadS3 } from '../sdk.js';
import { spillEnvelope } from '../spill.js';
import type { HandoffDependencies, HandoffTarget } from '../target.js';
import type { HandoffAnswer, HandoffReceipt } from '../types.js';
import type { HandoffClients } from './clients.js';
import { asHandoffError, buildEnvelope } from './envelope.js';
import { deadlineGuard, recordGuard } from './guard.js';
import type { HandoffMetrics } from './metrics.js';
import type { WrapperStatus } from './records.js';
import { type HeldBatch, heldBatchOf } from './sqs-hold.js';

/** What the standby protocol uses of the handoff mechanism. */
export interface StandbyParts {
  config: ResolvedConfig;
  deps: HandoffDependencies;
  clients: HandoffClients;
  metrics: HandoffMetrics;
  failAt(deadlineAt: number): number;
  /** A plain handoff: a task of the invocation's own. */
  handOff(target: HandoffTarget, journal?: Journal): Promise<HandoffAnswer>;
  stopTask(taskArn: string, target: HandoffTarget, why: string): Promise<boolean>;
  record(
    receipt: HandoffReceipt,
    fn: { name: string; version: string },
    status: WrapperStatus,
    signal: AbortSignal,
  ): Promise<Record<string, unknown> | undefined>;
  /** Holds the invocation's batch for the runner, when it has one; the receipt names what it held. */
  hold<T extends HandoffAnswer>(target: HandoffTarget, receipt: T, held: HeldBatch | undefined): Promise<T>;
}

/** Where a standby task waits for its envelope or the cancel marker: `resume.json` beside the records. */
export function resumeKey(config: ResolvedConfig, functionName: string, requestId: string): string {
  return outcomeKey(config.outcomePrefix, functionName, requestId, 'resume');
}

/** The resume location as the standby task is told it (`s3://…`). */
export function resumeUri(config: ResolvedConfig, functionName: string, requestId: string): string {
  return formatS3Uri({
    bucket: config.payloadBucket as string,
    key: resumeKey(config, functionName, requestId),
  });
}

/**
 * The pre-warm protocol over a task started in standby: at the handoff it is told to go
 * ({@link resumeStandby}); when the handler finishes in Lambda first it is cancelled
 * ({@link cancelStandby}).
 *
 * Tells a pre-warmed task to go: writes the envelope, with the journal as it is now, where the
 * task waits. A standby task that is not running any more (it failed to start, or stopped) is
 * replaced by a normal handoff (its client token and `startedBy` are the invocation's own; the
 * standby task's are `<request id>-s` and `…/standby`).
 */
export async function resumeStandby(
  parts: StandbyParts,
  standby: HandoffReceipt,
  target: HandoffTarget,
  journal?: Journal,
): Promise<HandoffAnswer> {
  const { clock, logger } = parts.deps;
  const began = clock.now();
  const id = standby.requestId;
  const guard = deadlineGuard(clock, parts.failAt(target.deadlineAt), id);
  try {
    const state = await taskState(parts, standby.taskArn, id, guard.signal);
    if (state !== 'running') {
      logger.info('The standby task is not running; handing off with a task of its own', {
        requestId: id,
        standbyTaskArn: standby.taskArn,
        standbyState: state,
      });
      guard.dispose();
      return parts.handOff(target, journal);
    }
    const held = heldBatchOf(parts.config, target.event);
    const { envelope, json } = buildEnvelope(target, journal, began, parts.deps.env, held?.kind);
    const location = await spillEnvelope({
      client: await parts.clients.s3(id),
      bucket: parts.config.payloadBucket as string,
      key: resumeKey(parts.config, envelope.function.name, id),
      body: json,
      requestId: id,
      clock,
      random: parts.deps.random,
      signal: guard.signal,
    });
    const confirmed = clock.now();
    const receipt = await parts.hold(
      target,
      {
        ...standby,
        envelopeLocation: location,
        envelopeBytes: Buffer.byteLength(json, 'utf8'),
        handedOffAt: new Date(confirmed).toISOString(),
      },
      held,
    );
    parts.metrics.handedOff(target, began, confirmed, receipt.envelopeBytes, {
      requestId: id,
      taskArn: standby.taskArn,
      prewarmed: true,
    });
    logger.info('Invocation handed off to its pre-warmed task', {
      requestId: id,
      functionName: target.context.functionName,
      taskArn: standby.taskArn,
      prewarmed: true,
      ranInLambdaMs: began - target.startedAt,
      elapsedMs: confirmed - began,
      envelopeBytes: receipt.envelopeBytes,
      envelopeLocation: location,
    });
    // The envelope is where the task waits: its record may take until the deadline guard.
    const recording = recordGuard(clock, target.deadlineAt);
    const recordError = await parts
      .record(receipt, envelope.function, 'handed-off', recording.signal)
      .finally(recording.dispose);
    if (recordError) {
      logger.error('The handed-off record could not be written; the invocation is handed off', {
        requestId: id,
        taskArn: standby.taskArn,
        error: recordError,
      });
    }
    return receipt;
  } catch (caught) {
    const error = asHandoffError(caught, id);
    parts.metrics.failed(target, began, { requestId: id, reason: error.reason, prewarmed: true });
    logger.error('Handoff to the pre-warmed task failed', {
      requestId: id,
      taskArn: standby.taskArn,
      reason: error.reason,
      failsAt: new Date(parts.failAt(target.deadlineAt)).toISOString(),
      error: describeError(error),
    });
    throw error;
  } finally {
    guard.dispose();
  }
}

/**
 * The handler finished in Lambda after its task was pre-warmed: writes the cancel marker where
 * the task waits (it exits 0, not needed, when it reads it), stops the task, and records
 * `not-needed`. Best effort within the deadline guard; never throws.
 */
export async function cancelStandby(
  parts: StandbyParts,
  standby: HandoffReceipt,
  target: HandoffTarget,
): Promise<void> {
  const { clock, logger } = parts.deps;
  const id = standby.requestId;
  const fn = { name: target.context.functionName, version: target.context.functionVersion };
  const guard = deadlineGuard(
    clock,
    parts.failAt(target.deadlineAt),
    id,
    () => new Error('the cancel did not finish before the deadline guard'),
  );
  try {
    await spillEnvelope({
      client: await parts.clients.s3(id),
      bucket: parts.config.payloadBucket as string,
      key: resumeKey(parts.config, fn.name, id),
      body: JSON.stringify(cancelMarker(id, clock.now())),
      requestId: id,
      clock,
      random: parts.deps.random,
      signal: guard.signal,
      what: 'the cancel marker',
    });
  } catch (error) {
    logger.error('The cancel marker of the standby task could not be written; the task is stopped', {
      requestId: id,
      taskArn: standby.taskArn,
      error: describeError(error),
    });
  } finally {
    guard.dispose();
  }
  await parts.stopTask(
    standby.taskArn,
    target,
    'the invocation finished in Lambda before its pre-warmed task was needed',
  );
  const guardRecord = deadlineGuard(clock, parts.failAt(target.deadlineAt), id, () => new Error('deadline'));
  try {
    const recordError = await parts.record(standby, fn, 'not-needed', guardRecord.signal);
    if (recordError) {
      logger.error('The not-needed record could not be written', { requestId: id, error: recordError });
    }
  } finally {
    guardRecord.dispose();
  }
}

/**
 * The handler finished in Lambda while its pre-warmed task was being told to go: claims the
 * invocation for Lambda with the conditional create the runner also makes before it calls the
 * handler (`claim.json`), so that both legs see one winner. `true`: Lambda won, the task will not
 * call the handler (it is stopped and recorded not needed as any task of a handoff Lambda
 * outran); `false`: the runner claimed it first (or no answer came), and the handoff stands.
 */
export async function claimForLambda(
  parts: StandbyParts,
  standby: HandoffReceipt,
  target: HandoffTarget,
): Promise<boolean> {
  const { clock, logger } = parts.deps;
  const id = standby.requestId;
  const bucket = parts.config.payloadBucket as string;
  const key = outcomeKey(parts.config.outcomePrefix, target.context.functionName, id, 'claim');
  const guard = deadlineGuard(clock, parts.failAt(target.deadlineAt), id, () => new Error('deadline'));
  try {
    const s3 = await parts.clients.s3(id);
    const { GetObjectCommand, PutObjectCommand } = await loadS3();
    const abortSignal = guard.signal;
    const winner = await claimInvocation(
      {
        create: async (body) => {
          try {
            await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, IfNoneMatch: '*' }), {
              abortSignal,
            });
            return true;
          } catch (error) {
            if (isPreconditionFailed(error)) return false;
            throw error;
          }
        },
        read: async () => {
          const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
          return object.Body?.transformToString();
        },
      },
      'lambda',
      id,
      clock.now(),
    );
    if (winner === 'runner')
      logger.info(
        'The handler finished in Lambda after its pre-warmed task took the invocation; the handoff stands',
        {
          requestId: id,
          taskArn: standby.taskArn,
        },
      );
    return winner === 'lambda';
  } catch (error) {
    logger.error('The invocation could not be claimed for Lambda; the handoff stands', {
      requestId: id,
      taskArn: standby.taskArn,
      error: describeError(error),
    });
    return false;
  } finally {
    guard.dispose();
  }
}

/** Whether a task still runs (or is starting, or is not described yet), from DescribeTasks. */
async function taskState(
  parts: StandbyParts,
  taskArn: string,
  requestId: string,
  signal: AbortSignal,
): Promise<'running' | string> {
  const { DescribeTasksCommand } = await loadEcs();
  const client = await parts.clients.ecs(requestId);
  const answer = await bounded(
    client.send(new DescribeTasksCommand({ cluster: parts.config.cluster, tasks: [taskArn] }), {
      abortSignal: signal,
    }),
    signal,
  );
  const task = answer.tasks?.[0];
  // RunTask named this task, so it exists: ECS's reads are eventually consistent, and a task
  // started moments ago may not be described yet. Only one seen stopping is replaced.
  if (!task) return 'running';
  if (task.lastStatus === 'STOPPED' || task.desiredStatus === 'STOPPED') {
    return `stopped (${task.stopCode ?? 'no stop code'}${task.stoppedReason ? `: ${task.stoppedReason}` : ''})`;
  }
  return 'running';
}
