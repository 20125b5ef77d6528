import { randomUUID } from 'node:crypto';
import { ACCOUNT } from '../registry.js';
import type { LocalTask } from './model.js';

/**
 * An "ECS Task State Change" event as EventBridge delivers it: what a rule on the runner's
 * cluster and family would pass to its target (the watchdog).
 *
 * @example
 * ```ts
 * import type { TaskStateChangeEvent } from '@immortal-lambda/local';
 * plane.on('task-state-change', (event: TaskStateChangeEvent) => console.log(event.detail.lastStatus));
 * ```
 */
export interface TaskStateChangeEvent {
  version: '0';
  id: string;
  'detail-type': 'ECS Task State Change';
  source: 'aws.ecs';
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: {
    clusterArn: string;
    taskArn: string;
    taskDefinitionArn: string;
    group: string;
    lastStatus: string;
    desiredStatus: string;
    launchType: 'FARGATE';
    capacityProviderName: string;
    startedBy?: string;
    createdAt: string;
    startedAt?: string;
    stoppedAt?: string;
    stopCode?: string;
    stoppedReason?: string;
    containers: { name: string; taskArn: string; lastStatus: string; exitCode?: number; reason?: string }[];
    overrides: LocalTask['overrides'];
    cpu: string;
    memory: string;
    version: number;
  };
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The event of a task's current state; `version` counts its changes, as ECS's does. */
export function taskStateChange(task: LocalTask, region: string, version: number): TaskStateChangeEvent {
  const stopped = task.lastStatus === 'STOPPED';
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'ECS Task State Change',
    source: 'aws.ecs',
    account: ACCOUNT,
    time: new Date().toISOString(),
    region,
    resources: [task.arn],
    detail: {
      clusterArn: task.clusterArn,
      taskArn: task.arn,
      taskDefinitionArn: task.taskDefinitionArn,
      group: `family:${task.family}`,
      lastStatus: task.lastStatus,
      desiredStatus: task.desiredStatus,
      launchType: 'FARGATE',
      capacityProviderName: task.capacityProvider,
      ...(task.startedBy ? { startedBy: task.startedBy } : {}),
      createdAt: iso(task.createdAt) as string,
      ...(task.startedAt ? { startedAt: iso(task.startedAt) as string } : {}),
      ...(stopped && task.stoppedAt ? { stoppedAt: iso(task.stoppedAt) as string } : {}),
      ...(stopped && task.stopCode ? { stopCode: task.stopCode } : {}),
      ...(stopped && task.stoppedReason ? { stoppedReason: task.stoppedReason } : {}),
      containers: [
        {
          name: task.containerName,
          taskArn: task.arn,
          lastStatus: stopped ? 'STOPPED' : task.lastStatus === 'RUNNING' ? 'RUNNING' : 'PENDING',
          ...(task.exitCode !== undefined ? { exitCode: task.exitCode } : {}),
          ...(task.containerReason ? { reason: task.containerReason } : {}),
        },
      ],
      overrides: task.overrides,
      cpu: String(task.cpu),
      memory: String(task.memory),
      version,
    },
  };
}
