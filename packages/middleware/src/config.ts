import { ConfigurationError } from './errors.js';
import { ENV } from './protocol/env-names.js';
import type { CapacityOption, FargateFallbackOptions } from './types.js';

/**
 * The default margin: see the package README for how it was chosen.
 *
 * @example
 * ```ts
 * import { DEFAULT_MARGIN_MS } from '@immortal-lambda/middleware';
 * middy(job, { timeoutEarlyInMillis: DEFAULT_MARGIN_MS });
 * ```
 */
export const DEFAULT_MARGIN_MS = 10_000;
/**
 * The smallest margin accepted: below it a RunTask call cannot reliably complete.
 *
 * @example
 * ```ts
 * import { MIN_MARGIN_MS, withFargateFallback } from '@immortal-lambda/middleware';
 * export const handler = withFargateFallback(fn, { marginMs: Math.max(MIN_MARGIN_MS, 2_000) });
 * ```
 */
export const MIN_MARGIN_MS = 1_000;
/** Lambda's longest timeout. */
export const MAX_LAMBDA_TIMEOUT_MS = 900_000;
export const DEFAULT_CONTAINER_NAME = 'runner';
export const DEFAULT_PAYLOAD_PREFIX = 'immortal-lambda/envelopes/';

const CAPACITIES: readonly CapacityOption[] = ['FARGATE', 'FARGATE_SPOT', 'FARGATE_SPOT,FARGATE'];

/** Settings after options, environment and defaults were merged and validated. */
export interface ResolvedConfig {
  cluster: string;
  taskDefinition: string;
  containerName: string;
  subnets: readonly string[];
  securityGroups: readonly string[];
  assignPublicIp: boolean;
  capacity: CapacityOption;
  payloadBucket: string | undefined;
  payloadPrefix: string;
  marginMs: number;
}

/** Whether the wrapper should do anything at all in this process. */
export type FallbackMode = 'runner' | 'disabled' | 'active';

const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,255}$/;
const ECS_ARN = /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:(cluster|task-definition)\/.+$/;
const TASK_DEFINITION = /^[A-Za-z0-9_-]{1,255}(:\d+)?$/;
const SUBNET = /^subnet-[0-9a-f]{8,17}$/;
const SECURITY_GROUP = /^sg-[0-9a-f]{8,17}$/;
const BUCKET = /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no', '']);

function list(value: readonly string[] | string | undefined): string[] {
  if (value === undefined) return [];
  const items = typeof value === 'string' ? value.split(',') : [...value];
  return items.map((item) => item.trim()).filter((item) => item.length > 0);
}

function flag(
  name: string,
  option: boolean | undefined,
  raw: string | undefined,
  problems: string[],
): boolean | undefined {
  if (option !== undefined) return option;
  if (raw === undefined) return undefined;
  const value = raw.trim().toLowerCase();
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  problems.push(`${name} is "${raw}": use true or false`);
  return undefined;
}

/**
 * Decides, from options and environment, whether the wrapper is active, disabled by the kill
 * switch, or running inside the runner (where it must never hand off again).
 */
export function resolveMode(
  options: FargateFallbackOptions,
  env: Readonly<Record<string, string | undefined>>,
): FallbackMode {
  if (env[ENV.runner] === '1') return 'runner';
  const problems: string[] = [];
  const disabled = flag(`${ENV.disabled}`, options.disabled, env[ENV.disabled], problems);
  if (problems.length > 0) throw new ConfigurationError(problems);
  return disabled ? 'disabled' : 'active';
}

/**
 * Merges options over environment variables over defaults and validates the result. Throws one
 * {@link ConfigurationError} that lists every missing or invalid setting.
 */
export function resolveConfig(
  options: FargateFallbackOptions,
  env: Readonly<Record<string, string | undefined>>,
): ResolvedConfig {
  const problems: string[] = [];
  const pick = (option: string | undefined, name: string) => {
    const value = option ?? env[name];
    return value?.trim() === '' ? undefined : value?.trim();
  };

  const cluster = pick(options.cluster, ENV.cluster);
  if (cluster === undefined) {
    problems.push(
      `cluster is missing: set the "cluster" option or ${ENV.cluster} to the ECS cluster name or ARN`,
    );
  } else if (!CLUSTER_NAME.test(cluster) && !ECS_ARN.test(cluster)) {
    problems.push(
      `cluster "${cluster}" is neither a cluster name (letters, digits, - and _) nor an ECS cluster ARN (${ENV.cluster})`,
    );
  }

  const taskDefinition = pick(options.taskDefinition, ENV.taskDefinition);
  if (taskDefinition === undefined) {
    problems.push(
      `taskDefinition is missing: set the "taskDefinition" option or ${ENV.taskDefinition} to the runner's task definition (family, family:revision or ARN)`,
    );
  } else if (!TASK_DEFINITION.test(taskDefinition) && !ECS_ARN.test(taskDefinition)) {
    problems.push(
      `taskDefinition "${taskDefinition}" is not a family, family:revision or task definition ARN (${ENV.taskDefinition})`,
    );
  }

  const containerName = pick(options.containerName, ENV.containerName) ?? DEFAULT_CONTAINER_NAME;
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(containerName)) {
    problems.push(`containerName "${containerName}" is not a valid container name (${ENV.containerName})`);
  }

  const subnets = list(options.subnets ?? env[ENV.subnets]);
  if (subnets.length === 0) {
    problems.push(
      `subnets are missing: set the "subnets" option or ${ENV.subnets} to comma-separated subnet ids (Fargate tasks need awsvpc networking)`,
    );
  }
  for (const subnet of subnets) {
    if (!SUBNET.test(subnet))
      problems.push(`"${subnet}" is not a subnet id like subnet-0123456789abcdef0 (${ENV.subnets})`);
  }
  if (subnets.length > 16)
    problems.push(`${subnets.length} subnets given; RunTask accepts at most 16 (${ENV.subnets})`);

  const securityGroups = list(options.securityGroups ?? env[ENV.securityGroups]);
  for (const group of securityGroups) {
    if (!SECURITY_GROUP.test(group)) {
      problems.push(
        `"${group}" is not a security group id like sg-0123456789abcdef0 (${ENV.securityGroups})`,
      );
    }
  }
  if (securityGroups.length > 5) {
    problems.push(
      `${securityGroups.length} security groups given; RunTask accepts at most 5 (${ENV.securityGroups})`,
    );
  }

  const assignPublicIp =
    flag(ENV.assignPublicIp, options.assignPublicIp, env[ENV.assignPublicIp], problems) ?? false;

  const capacityRaw = pick(options.capacity, ENV.capacity)?.toUpperCase().replace(/\s+/g, '') ?? 'FARGATE';
  const capacity = CAPACITIES.find((c) => c === capacityRaw);
  if (capacity === undefined) {
    problems.push(`capacity "${capacityRaw}" is not one of ${CAPACITIES.join(' | ')} (${ENV.capacity})`);
  }

  const payloadBucket = pick(options.payloadBucket, ENV.payloadBucket);
  if (payloadBucket !== undefined && !BUCKET.test(payloadBucket)) {
    problems.push(`payloadBucket "${payloadBucket}" is not a valid S3 bucket name (${ENV.payloadBucket})`);
  }
  const payloadPrefix = options.payloadPrefix ?? DEFAULT_PAYLOAD_PREFIX;

  let marginMs = DEFAULT_MARGIN_MS;
  const marginRaw = options.marginMs ?? env[ENV.marginMs];
  if (marginRaw !== undefined && String(marginRaw).trim() !== '') {
    const value = typeof marginRaw === 'number' ? marginRaw : Number(marginRaw.trim());
    if (!Number.isInteger(value) || value < MIN_MARGIN_MS || value >= MAX_LAMBDA_TIMEOUT_MS) {
      problems.push(
        `marginMs "${marginRaw}" must be a whole number of milliseconds from ${MIN_MARGIN_MS} to ${MAX_LAMBDA_TIMEOUT_MS - 1} (${ENV.marginMs})`,
      );
    } else {
      marginMs = value;
    }
  }

  if (problems.length > 0) throw new ConfigurationError(problems);
  return {
    cluster: cluster as string,
    taskDefinition: taskDefinition as string,
    containerName,
    subnets,
    securityGroups,
    assignPublicIp,
    capacity: capacity as CapacityOption,
    payloadBucket,
    payloadPrefix,
    marginMs,
  };
}
