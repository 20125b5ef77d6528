/**
 * The environment variables that connect the wrapper, the runner and the task definition.
 * These names are part of the protocol: the wrapper, the runner and the CDK construct all
 * read them from here.
 *
 * @example
 * ```ts
 * import { ENV } from '@immortal-lambda/middleware/protocol';
 * const inRunner = process.env[ENV.runner] === '1';
 * ```
 */
export const ENV = {
  cluster: 'FARGATE_FALLBACK_CLUSTER',
  taskDefinition: 'FARGATE_FALLBACK_TASK_DEFINITION',
  containerName: 'FARGATE_FALLBACK_CONTAINER',
  subnets: 'FARGATE_FALLBACK_SUBNETS',
  securityGroups: 'FARGATE_FALLBACK_SECURITY_GROUPS',
  assignPublicIp: 'FARGATE_FALLBACK_ASSIGN_PUBLIC_IP',
  capacity: 'FARGATE_FALLBACK_CAPACITY',
  payloadBucket: 'FARGATE_FALLBACK_BUCKET',
  marginMs: 'FARGATE_FALLBACK_MARGIN_MS',
  disabled: 'FARGATE_FALLBACK_DISABLED',
  /** The envelope: inline JSON or an `s3://bucket/key` URI. Set by RunTask's container override. */
  envelope: 'FARGATE_FALLBACK_ENVELOPE',
  /** `1` inside the runner, set before the handler module is imported. */
  runner: 'FARGATE_FALLBACK_RUNNER',
  /** Where the runner extracts the function's code (default `/var/task`). */
  taskRoot: 'FARGATE_FALLBACK_TASK_ROOT',
  /** Where the runner extracts the function's layers (default `/opt`). */
  layersRoot: 'FARGATE_FALLBACK_LAYERS_ROOT',
  /** What the runner's `context.getRemainingTimeInMillis()` counts down from. */
  maxRuntimeMs: 'FARGATE_FALLBACK_MAX_RUNTIME_MS',
} as const;

/**
 * RunTask's limit on `overrides`, in characters, JSON included.
 *
 * @example
 * ```ts
 * import { RUN_TASK_OVERRIDES_LIMIT } from '@immortal-lambda/middleware/protocol';
 * const fits = JSON.stringify(overrides).length <= RUN_TASK_OVERRIDES_LIMIT;
 * ```
 */
export const RUN_TASK_OVERRIDES_LIMIT = 8192;
