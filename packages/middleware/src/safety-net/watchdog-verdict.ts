import { ENV, largerTaskSize, type OutcomeRecord } from '@immortal-lambda/protocol';
import { classifyStop, runnerOverride, type StopVerdict, type TaskStateChangeDetail } from './stop.js';

/**
 * What the watchdog did with one event.
 *
 * @example
 * ```ts
 * import type { WatchdogOutcome } from '@immortal-lambda/middleware/safety-net';
 * const relaunched = (outcome: WatchdogOutcome) => outcome.action === 'relaunched';
 * ```
 */
export interface WatchdogOutcome {
  action: 'ignored' | 'succeeded' | 'result' | 'relaunched' | 'already-relaunched' | 'gave-up';
  reason: string;
  requestId?: string;
  attempt?: number;
  taskArn?: string | undefined;
}

/**
 * An "ECS Task State Change" event, as EventBridge delivers it.
 *
 * @example
 * ```ts
 * import type { TaskStateChangeEvent } from '@immortal-lambda/middleware/safety-net';
 * const isEcs = (event: TaskStateChangeEvent) => event.source === 'aws.ecs';
 * ```
 */
export interface TaskStateChangeEvent {
  source?: string;
  'detail-type'?: string;
  detail?: TaskStateChangeDetail;
}

/** A stopped runner task the watchdog follows: its event, its runner's override, and how it stopped. */
export interface StoppedRunner {
  detail: TaskStateChangeDetail;
  override: NonNullable<ReturnType<typeof runnerOverride>>;
  verdict: Exclude<StopVerdict, { kind: 'ignore' }>;
}

/**
 * The first look at an event, from the event alone: a stopped runner task to follow, or the
 * reason it is ignored (not a task state change, no envelope, still running, stopped on purpose).
 */
export function screenEvent(
  event: TaskStateChangeEvent | undefined,
): StoppedRunner | { ignored: WatchdogOutcome } {
  const detail = event?.detail;
  if (event?.source !== 'aws.ecs' || event['detail-type'] !== 'ECS Task State Change' || !detail) {
    return { ignored: { action: 'ignored', reason: 'not an ECS Task State Change event' } };
  }
  const override = runnerOverride(detail);
  if (!override)
    return { ignored: { action: 'ignored', reason: `task ${detail.taskArn} carries no ${ENV.envelope}` } };
  const verdict = classifyStop(detail);
  if (verdict.kind === 'ignore') return { ignored: { action: 'ignored', reason: verdict.reason } };
  return { detail, override, verdict };
}

/**
 * What a watchdog serves: its cluster's runner tasks (of one family, when it serves one
 * placement), in its own region and account (when known).
 */
export interface ServedTasks {
  cluster: string;
  family: string | undefined;
  region: string | undefined;
  account: string | undefined;
}

/** The family of a stopped task, from its task definition ARN (`…:task-definition/<family>:<revision>`). */
export function familyOfTask(detail: TaskStateChangeDetail): string | undefined {
  return /:task-definition\/([^:/]+):\d+$/.exec(detail.taskDefinitionArn ?? '')?.[1];
}

/**
 * Why a stopped task is none of this watchdog's business (another cluster, family, region or
 * account: a rule that matches too much), or `undefined` when it is its own.
 */
export function foreignTask(detail: TaskStateChangeDetail, served: ServedTasks): WatchdogOutcome | undefined {
  const cluster = /^arn:aws[a-z-]*:ecs:([^:]+):(\d+):cluster\/(.+)$/.exec(detail.clusterArn ?? '');
  const family = familyOfTask(detail);
  const why = !cluster
    ? `it names no cluster (${detail.clusterArn ?? 'none'})`
    : cluster[3] !== served.cluster
      ? `its cluster is ${cluster[3]}, not ${served.cluster}`
      : served.region && cluster[1] !== served.region
        ? `it ran in ${cluster[1]}, not ${served.region}`
        : served.account && cluster[2] !== served.account
          ? `it ran in account ${cluster[2]}, not ${served.account}`
          : served.family !== undefined && family !== served.family
            ? `its family is ${family ?? 'unknown'}, not ${served.family}`
            : undefined;
  if (!why) return undefined;
  return { action: 'ignored', reason: `task ${detail.taskArn} is not one this watchdog serves: ${why}` };
}

/**
 * A pre-warmed task that stopped before it was told to go held nothing yet: at the handoff the
 * wrapper sees it stopped and starts a task of its own. Once told, it is like any other.
 */
export function untoldStandby(verdict: StoppedRunner['verdict']): WatchdogOutcome {
  return {
    action: 'ignored',
    reason: `a standby task stopped before it was told to go (${verdict.reason}): the wrapper hands off without it`,
  };
}

/**
 * A standby task that was told to go and exited 0 may have given up waiting without seeing its
 * envelope: unless its runner recorded success (which {@link decide} reads first), it stopped
 * before a result.
 */
export function toldStandbyVerdict(verdict: StoppedRunner['verdict']): StoppedRunner['verdict'] {
  if (verdict.kind !== 'success') return verdict;
  return {
    kind: 'relaunch',
    reason: 'a standby task told to go exited 0 without recording a result (it never read its envelope)',
    onDemand: false,
    exitCode: 0,
  };
}

/**
 * What a stopped runner task calls for, from how it stopped and the invocation's records:
 * - `succeeded`: it exited 0, or its runner recorded success;
 * - `result`: its end is the invocation's result (a handler error, bad input), recorded by the
 *   runner, or (`record`) by nobody yet, so the watchdog must record it and send it on; a task
 *   cancelled by someone else's StopTask is a failure the watchdog records unless the runner
 *   already recorded a final one;
 * - `already-relaunched`: a later attempt exists (the event came twice);
 * - `gave-up`: it stopped before a result on every attempt: recorded and sent as failed;
 * - `relaunch`: start attempt `next`, on on-demand capacity after a Spot interruption.
 */
export type WatchdogDecision =
  | { kind: 'succeeded'; reason: string }
  | { kind: 'result'; reason: string; record: boolean }
  | { kind: 'already-relaunched'; reason: string; taskArn: string | undefined }
  | { kind: 'gave-up'; reason: string }
  | {
      kind: 'relaunch';
      reason: string;
      next: number;
      onDemand: boolean;
      /** The task size to start it with: more memory after it ran out of memory. */
      size?: { cpu: number; memory: number };
    };

/** The watchdog's decision (see {@link WatchdogDecision}): pure, from the stop, the attempt and the records. */
export function decide(input: {
  verdict: StoppedRunner['verdict'];
  attempt: number;
  maxAttempts: number;
  records: readonly OutcomeRecord[];
  /** After an out-of-memory kill: the task's size and the most memory a relaunch may have. */
  memory?: MemoryLimits;
}): WatchdogDecision {
  const { verdict, attempt, maxAttempts, records } = input;
  const own = records.find((record) => record.writer === 'runner' && record.attempt === attempt);
  if (verdict.kind === 'success' || own?.status === 'succeeded')
    return { kind: 'succeeded', reason: verdict.reason };
  const finalFailure = own?.status === 'failed' && own.error?.retryable === false;
  if (verdict.kind === 'cancelled') return { kind: 'result', reason: verdict.reason, record: !finalFailure };
  if (verdict.kind === 'result' || finalFailure) {
    // The runner ended without recording why (its image could not run it, or it died before it
    // could write): nothing else will, so the watchdog records the result.
    return {
      kind: 'result',
      reason: verdict.reason,
      record: verdict.kind === 'result' && own?.status !== 'failed',
    };
  }
  const later = records.find((record) => record.attempt > attempt);
  if (later)
    return { kind: 'already-relaunched', reason: `attempt ${later.attempt} exists`, taskArn: later.taskArn };
  if (attempt >= maxAttempts) {
    return {
      kind: 'gave-up',
      reason: `the runner task stopped before a result ${attempt} time${attempt === 1 ? '' : 's'}, the last time: ${verdict.reason}`,
    };
  }
  if (verdict.kind === 'relaunch' && verdict.outOfMemory) return moreMemory(verdict, attempt, input.memory);
  return { kind: 'relaunch', reason: verdict.reason, next: attempt + 1, onDemand: verdict.onDemand };
}

/** A stopped task's size (CPU units, MiB), and the most memory a relaunch may have. */
export interface MemoryLimits {
  size: { cpu: number; memory: number } | undefined;
  ceiling: number | undefined;
}

/** The size a stopped task ran with (its overrides', else its own), and the ceiling. */
export function memoryLimits(detail: TaskStateChangeDetail, ceiling: number | undefined): MemoryLimits {
  const cpu = Number(detail.overrides?.cpu ?? detail.cpu);
  const memory = Number(detail.overrides?.memory ?? detail.memory);
  const size = Number.isFinite(cpu) && Number.isFinite(memory) && memory > 0 ? { cpu, memory } : undefined;
  return { size, ceiling };
}

/**
 * A task killed for its memory is started again with twice the memory, up to the ceiling
 * (`FARGATE_FALLBACK_MAX_MEMORY_MIB`); with no larger size allowed, running out of memory is the
 * result.
 */
function moreMemory(
  verdict: Extract<StoppedRunner['verdict'], { kind: 'relaunch' }>,
  attempt: number,
  memory: MemoryLimits | undefined,
): WatchdogDecision {
  const size = memory?.size;
  const larger = size && memory?.ceiling ? largerTaskSize(size, memory.ceiling) : undefined;
  if (larger) {
    return { kind: 'relaunch', reason: verdict.reason, next: attempt + 1, onDemand: false, size: larger };
  }
  const at = size ? `${size.memory} MiB` : 'its size';
  const ceiling = memory?.ceiling
    ? `${ENV.maxMemoryMiB} (${memory.ceiling} MiB) allows no more`
    : `${ENV.maxMemoryMiB} is not set`;
  return {
    kind: 'result',
    reason: `the task ran out of memory at ${at}, and ${ceiling}: raise the task's memory or the ceiling (the construct's maxMemoryLimitMiB); the same run would die the same way (${verdict.reason})`,
    record: true,
  };
}
