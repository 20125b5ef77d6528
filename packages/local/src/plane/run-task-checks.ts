import { isFargateSize, MAX_TASK_TAGS, RUN_TASK_OVERRIDES_LIMIT } from '@immortal-lambda/protocol';
import { ApiError } from '../errors.js';
import type { RunTaskRequest } from './ecs-api.js';
import type { TaskDefinition } from './model.js';

/** Variables that change how a process starts: code named by a request would run on this machine. */
const PROCESS_LEVEL =
  /^(NODE_OPTIONS|NODE_PATH|NODE_EXTRA_CA_CERTS|LD_PRELOAD|LD_LIBRARY_PATH|DYLD_[A-Z_]+|AWS_LAMBDA_EXEC_WRAPPER|PATH)$/;

/**
 * RunTask's overrides: within ECS's length limit, each for a container of the task definition,
 * and setting no process-level variable unless the task definition allows it.
 */
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
    const processLevel = (override.environment ?? [])
      .map((variable) => variable.name)
      .filter((name) => PROCESS_LEVEL.test(name));
    if (processLevel.length > 0 && !definition.allowProcessOverrides) {
      throw new ApiError(
        'InvalidParameterException',
        `the local control plane does not take ${processLevel.join(', ')} in RunTask's overrides: they decide what the task's processes run on this machine; register the task definition with allowProcessOverrides to allow them`,
      );
    }
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

/**
 * RunTask's tags, as the ECS API reference states them: "Maximum number of tags per resource -
 * 50", "Maximum key length - 128 Unicode characters in UTF-8", "Maximum value length - 256
 * Unicode characters in UTF-8", and "Do not use aws:, AWS:, or any upper or lowercase combination
 * of such as a prefix for either keys or values as it is reserved for AWS use."
 */
export function checkTags(tags: { key: string; value: string }[]): void {
  if (tags.length > MAX_TASK_TAGS)
    throw new ApiError('InvalidParameterException', 'a task may have at most 50 tags');
  for (const { key, value } of tags) {
    if ([...key].length > 128 || [...(value ?? '')].length > 256) {
      throw new ApiError(
        'InvalidParameterException',
        `the tag ${key} is too long: keys take at most 128 characters, values 256`,
      );
    }
    if (/^aws:/i.test(key) || /^aws:/i.test(value ?? '')) {
      throw new ApiError(
        'InvalidParameterException',
        `the tag ${key} uses the prefix aws:, which is reserved for AWS use`,
      );
    }
  }
}
