import type { RunTaskCommandInput, TaskOverride } from '@aws-sdk/client-ecs';
import { clientToken, startedBy, TASK_TAGS } from '@immortal-lambda/protocol';
import type { ResolvedConfig } from '../config.js';

/** One placement to try: Spot or on-demand. */
export type CapacityProvider = 'FARGATE' | 'FARGATE_SPOT';

const tagValue = (value: string) => value.replace(/[^\p{L}\p{N}\s_.:/=+\-@]/gu, '_').slice(0, 256);

/**
 * The `startedBy` mark: `immortal-lambda/<request id>` for a handoff, with `/standby` for a
 * pre-warmed task, so that a handoff that replaces a standby task never takes it for its own.
 */
export function startedByOf(ids: { requestId: string; standby?: boolean | undefined }): string {
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
    /** Which retry after every placement found no capacity (0: none), tagged from 1 on. */
    retry?: number;
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
      { key: TASK_TAGS.function, value: tagValue(ids.functionName) },
      { key: TASK_TAGS.version, value: tagValue(ids.functionVersion) },
      { key: TASK_TAGS.requestId, value: tagValue(ids.requestId) },
      ...(ids.retry ? [{ key: TASK_TAGS.retry, value: String(ids.retry) }] : []),
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
