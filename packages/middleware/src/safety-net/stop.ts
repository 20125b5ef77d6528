import {
  DEFAULT_CONTAINER_NAME,
  ENV,
  EXIT_CODES,
  isRelaunchable,
  OWN_STOP_PREFIX,
} from '@immortal-lambda/protocol';

/**
 * The `detail` of an "ECS Task State Change" event, as far as the watchdog reads it.
 *
 * @example
 * ```ts
 * import type { TaskStateChangeDetail } from '@immortal-lambda/middleware/safety-net';
 * const stopped = (detail: TaskStateChangeDetail) => detail.lastStatus === 'STOPPED';
 * ```
 */
export interface TaskStateChangeDetail {
  taskArn?: string;
  clusterArn?: string;
  taskDefinitionArn?: string;
  lastStatus?: string;
  capacityProviderName?: string;
  startedBy?: string;
  stopCode?: string;
  stoppedReason?: string;
  containers?: { name?: string; exitCode?: number; reason?: string }[];
  /** The task's size as it ran (CPU units, MiB), as strings. */
  cpu?: string;
  memory?: string;
  overrides?: {
    cpu?: string;
    memory?: string;
    containerOverrides?: { name?: string; environment?: { name?: string; value?: string }[] }[];
  };
}

/**
 * What a stopped runner task calls for: nothing (it succeeded, or the wrapper stopped it: a
 * duplicate, or an invocation that finished in Lambda), its end as the invocation's result (the
 * handler threw, the input was bad; or cancelled: anyone else's StopTask), or a relaunch
 * (it ended before a result: interrupted, killed, never started, code not fetched), on on-demand
 * capacity after a Spot interruption.
 *
 * @example
 * ```ts
 * import { classifyStop } from '@immortal-lambda/middleware/safety-net';
 * classifyStop({ lastStatus: 'STOPPED', stopCode: 'SpotInterruption', containers: [{ exitCode: 143 }] });
 * // { kind: 'relaunch', onDemand: true, reason: 'SpotInterruption: …' }
 * ```
 */
export type StopVerdict =
  | { kind: 'ignore'; reason: string }
  | { kind: 'success'; reason: string }
  | { kind: 'result'; reason: string; exitCode: number | undefined }
  /** Stopped by a StopTask that was not the wrapper's (an operator, a script): the invocation is cancelled. */
  | { kind: 'cancelled'; reason: string; exitCode: number | undefined }
  | {
      kind: 'relaunch';
      reason: string;
      onDemand: boolean;
      exitCode: number | undefined;
      /** Killed for its memory (137, `OutOfMemoryError`): started again only with more. */
      outOfMemory?: true;
    };

/** ECS's reasons for a task whose container never ran. */
const START_FAILURE =
  /CannotPullContainer|ResourceInitializationError|CannotStartContainer|ENI|TaskFailedToStart/i;

/**
 * ECS's reason for a container whose entry point cannot run: the image has no `node` on its
 * PATH, or one built for another CPU. Starting it again cannot help.
 */
const UNRUNNABLE_ENTRY_POINT = /executable file .*not found|exec format error|no such file or directory/i;

/** The runner's container override of the task: the one that carries the envelope. */
export function runnerOverride(detail: TaskStateChangeDetail) {
  for (const override of detail.overrides?.containerOverrides ?? []) {
    const environment = new Map<string, string>();
    for (const variable of override.environment ?? []) {
      if (variable.name) environment.set(variable.name, variable.value ?? '');
    }
    if (environment.has(ENV.envelope)) return { name: override.name, environment };
  }
  return undefined;
}

export function classifyStop(detail: TaskStateChangeDetail): StopVerdict {
  if (detail.lastStatus !== 'STOPPED')
    return { kind: 'ignore', reason: `the task is ${detail.lastStatus}, not STOPPED` };
  // The runner's own container, by the name its override carries (ECS requires one): never
  // another container of the task, whose exit code says nothing of the invocation.
  const name = runnerOverride(detail)?.name ?? DEFAULT_CONTAINER_NAME;
  const container = detail.containers?.find((c) => c.name === name);
  const exitCode = container?.exitCode;
  const why = [detail.stopCode, detail.stoppedReason, container?.reason].filter(Boolean).join(': ');
  // The runner's exit code decides first: a run that finished is not undone by its stop code.
  if (exitCode === 0) return { kind: 'success', reason: 'the runner exited 0' };
  if (detail.stopCode === 'UserInitiated') {
    const reason = detail.stoppedReason ?? '';
    if (reason.startsWith(OWN_STOP_PREFIX))
      return { kind: 'ignore', reason: `the wrapper stopped the task on purpose (StopTask): ${reason}` };
    return {
      kind: 'cancelled',
      reason: `cancelled: the task was stopped by StopTask${reason ? ` (${reason})` : ' with no reason'}, not by the wrapper`,
      exitCode,
    };
  }
  const spot = detail.capacityProviderName === 'FARGATE_SPOT';
  if (detail.stopCode === 'SpotInterruption' || (spot && exitCode === 143)) {
    return { kind: 'relaunch', reason: why || 'Spot interruption', onDemand: true, exitCode };
  }
  if (exitCode === undefined && /CannotStartContainer/i.test(why) && UNRUNNABLE_ENTRY_POINT.test(why)) {
    return {
      kind: 'result',
      reason: `the task's image cannot run the runner: it has no usable node on its PATH, or is built for another CPU architecture than the task's; build the function's image on a Lambda Node.js base image (Node 20 or later) for the function's architecture (${why})`,
      exitCode: EXIT_CODES.badInput,
    };
  }
  if (exitCode === undefined && (detail.stopCode === 'TaskFailedToStart' || START_FAILURE.test(why))) {
    return { kind: 'relaunch', reason: why, onDemand: false, exitCode };
  }
  if (exitCode === 137 && /OutOfMemoryError/i.test(container?.reason ?? '')) {
    return { kind: 'relaunch', reason: why, onDemand: false, exitCode, outOfMemory: true };
  }
  if (isRelaunchable(exitCode)) {
    return { kind: 'relaunch', reason: why || `the runner exited ${exitCode}`, onDemand: false, exitCode };
  }
  return { kind: 'result', reason: `the runner exited ${exitCode}: ${why}`, exitCode };
}
