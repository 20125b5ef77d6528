import { isFargateSize, RUN_TASK_OVERRIDES_LIMIT } from '@immortal-lambda/protocol';
import { ApiError } from '../errors.js';
import type { RunTaskRequest } from './ecs-api.js';
import type { TaskDefinition } from './model.js';

/** RunTask's overrides: within ECS's length limit, and each for a container of the task definition. */
export function checkOverrides(
  overrides: RunTaskRequest['overrides'],
  definition: TaskDefinition,
): RunTaskRequest['overrides'] {
  if (overrides && JSON.stringify(overrides).length > RUN_TASK_OVERRIDES_LIMIT) {
    throw new ApiError(
      'InvalidParameterException',
      `Container Overrides length must be at most ${RUN_TASK_OVERRIDES_LIMIT}`,
    );
  }
  for (const override of overrides?.containerOverrides ?? []) {
    if (override.name !== definition.containerName) {
      throw new ApiError(
        'InvalidParameterException',
        `Override for container named ${override.name} is not a container in the TaskDefinition.`,
      );
    }
  }
  return overrides;
}

/**
 * The size a task runs with: the overrides' CPU and memory, else the definition's. "No Fargate
 * configuration exists for given values" (ECS, for a pair Fargate does not run).
 */
export function taskSize(
  overrides: RunTaskRequest['overrides'],
  definition: TaskDefinition,
): { cpu: number; memory: number } {
  const cpu = Number(overrides?.cpu ?? definition.cpu ?? 1024);
  const memory = Number(overrides?.memory ?? definition.memory ?? 2048);
  if (!isFargateSize(cpu, memory)) {
    throw new ApiError(
      'ClientException',
      `No Fargate configuration exists for given values: ${cpu} CPU, ${memory} memory. See the Amazon ECS documentation for the valid combinations.`,
    );
  }
  return { cpu, memory };
}
