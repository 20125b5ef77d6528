import {
  DEFAULT_OUTCOME_PREFIX,
  ENV,
  isS3Uri,
  type MetricsSettings,
  readMetricsSettings,
} from '@immortal-lambda/protocol';
import { BadInputError } from './errors.js';

/**
 * Default of `FARGATE_FALLBACK_MAX_RUNTIME_MS`: what `getRemainingTimeInMillis()` starts from.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_RUNTIME_MS } from '@immortal-lambda/runner';
 * const hours = DEFAULT_MAX_RUNTIME_MS / 3_600_000; // 24
 * ```
 */
export const DEFAULT_MAX_RUNTIME_MS = 86_400_000;
/**
 * Default of `FARGATE_FALLBACK_STOP_GRACE_MS`: inside ECS's default stopTimeout of 30 s.
 *
 * @example
 * ```ts
 * import { DEFAULT_STOP_GRACE_MS } from '@immortal-lambda/runner';
 * const stopTimeoutSeconds = Math.ceil(DEFAULT_STOP_GRACE_MS / 1000) + 5;
 * ```
 */
export const DEFAULT_STOP_GRACE_MS = 25_000;
/** ECS's largest stopTimeout. */
export const MAX_STOP_GRACE_MS = 120_000;
/**
 * Default of `FARGATE_FALLBACK_AWS_TIMEOUT_MS`: how long one AWS call of the runner (GetFunction,
 * GetLayerVersionByArn, the envelope's GetObject) may wait for its answer before it is abandoned
 * and, within the attempt budget, tried again.
 *
 * @example
 * ```ts
 * import { DEFAULT_AWS_TIMEOUT_MS } from '@immortal-lambda/runner';
 * const worstCaseMs = DEFAULT_AWS_TIMEOUT_MS * 3; // three attempts that never answer
 * ```
 */
export const DEFAULT_AWS_TIMEOUT_MS = 20_000;
/**
 * Default of `FARGATE_FALLBACK_THROTTLE_BUDGET_MS`: how long a throttled GetFunction or
 * GetLayerVersionByArn is retried. Lambda allows 100 GetFunction calls a second and 15 other
 * control-plane calls a second per account, and neither can be raised; a burst of runners must
 * wait its turn, and a task has no Lambda deadline.
 *
 * @example
 * ```ts
 * import { DEFAULT_THROTTLE_BUDGET_MS } from '@immortal-lambda/runner';
 * const minutes = DEFAULT_THROTTLE_BUDGET_MS / 60_000; // 5
 * ```
 */
export const DEFAULT_THROTTLE_BUDGET_MS = 300_000;
/**
 * Default of `FARGATE_FALLBACK_AWS_MAX_ATTEMPTS`: attempts per AWS call, the first included.
 *
 * @example
 * ```ts
 * import { DEFAULT_AWS_MAX_ATTEMPTS } from '@immortal-lambda/runner';
 * const calls = DEFAULT_AWS_MAX_ATTEMPTS; // 3
 * ```
 */
export const DEFAULT_AWS_MAX_ATTEMPTS = 3;

/**
 * How the runner's AWS clients bound each call: a timeout per attempt and a number of attempts.
 *
 * @example
 * ```ts
 * import type { AwsCallBounds } from '@immortal-lambda/runner';
 * const bounds: AwsCallBounds = { timeoutMs: 20_000, maxAttempts: 3 };
 * ```
 */
export interface AwsCallBounds {
  timeoutMs: number;
  maxAttempts: number;
}

export interface RunnerSettings {
  envelope: string | undefined;
  taskRoot: string;
  /** `FARGATE_FALLBACK_TASK_ROOT` was set (an image function's code is then looked for there). */
  taskRootGiven: boolean;
  layersRoot: string;
  /** Where the run's EMF line goes (namespace, dimensions), or off: as the wrapper passed them. */
  metrics: MetricsSettings;
  maxRuntimeMs: number;
  stopGraceMs: number;
  aws: AwsCallBounds;
  /** How long throttled Lambda API calls are retried, with jittered backoff. */
  throttleBudgetMs: number;
  /** Run a function whose runtime's Node major differs from the runner's. */
  allowRuntimeMismatch: boolean;
  /** Where outcome records go: the payload bucket (none: no records) and their key prefix. */
  outcomes: { bucket: string | undefined; prefix: string };
  /** Which attempt at the invocation this task is (1, or more when the watchdog relaunched it). */
  attempt: number;
  /** A pre-warmed task: the `s3://` URI where it waits for its envelope or the cancel marker. */
  standby: string | undefined;
  /** When the wrapper plans to tell a pre-warmed task to go (epoch ms), if it said. */
  standbyGoAt: number | undefined;
  /** A container image function's handler, from the task definition: its image's CMD. */
  imageHandler: string | undefined;
  /** The function's destinations as its deployment configures them (JSON, read when sending). */
  knownDestinations: string | undefined;
}

/**
 * Reads the runner's settings from its environment; one error lists every invalid one.
 *
 * @example
 * ```ts
 * import { readSettings } from '@immortal-lambda/runner';
 * const { taskRoot, layersRoot } = readSettings(process.env);
 * ```
 */
export function readSettings(env: Readonly<Record<string, string | undefined>>): RunnerSettings {
  const problems: string[] = [];
  const integer = (name: string, fallback: number, min: number, max: number, unit = 'milliseconds') => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    // Decimal digits only: Number() would also read "0x10", "1e3" or "0b1" as numbers.
    const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name} is "${raw}": use a whole number of ${unit} from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const settings: RunnerSettings = {
    envelope: env[ENV.envelope],
    taskRoot: env[ENV.taskRoot]?.trim() || '/var/task',
    taskRootGiven: Boolean(env[ENV.taskRoot]?.trim()),
    layersRoot: env[ENV.layersRoot]?.trim() || '/opt',
    // The wrapper refuses malformed metrics settings; the runner writes with what it can read.
    metrics: readMetricsSettings(env).settings,
    // At most what a timer can wait (2^31 - 1 ms, about 24.8 days).
    maxRuntimeMs: integer(ENV.maxRuntimeMs, DEFAULT_MAX_RUNTIME_MS, 1, 2_147_483_647),
    stopGraceMs: integer(ENV.stopGraceMs, DEFAULT_STOP_GRACE_MS, 0, MAX_STOP_GRACE_MS),
    aws: {
      timeoutMs: integer(ENV.awsTimeoutMs, DEFAULT_AWS_TIMEOUT_MS, 100, 600_000),
      maxAttempts: integer(ENV.awsMaxAttempts, DEFAULT_AWS_MAX_ATTEMPTS, 1, 20, 'attempts'),
    },
    throttleBudgetMs: integer(ENV.throttleBudgetMs, DEFAULT_THROTTLE_BUDGET_MS, 0, 3_600_000),
    allowRuntimeMismatch: false,
    outcomes: {
      bucket: env[ENV.payloadBucket]?.trim() || undefined,
      prefix: env[ENV.outcomePrefix]?.trim() || DEFAULT_OUTCOME_PREFIX,
    },
    attempt: integer(ENV.attempt, 1, 1, 100, 'attempts'),
    standby: env[ENV.standby]?.trim() || undefined,
    standbyGoAt: /^\d{13}$/.test(env[ENV.standbyGoAt]?.trim() ?? '')
      ? Number(env[ENV.standbyGoAt])
      : undefined,
    imageHandler: env[ENV.imageHandler]?.trim() || undefined,
    knownDestinations: env[ENV.destinations]?.trim() || undefined,
  };
  if (settings.standby !== undefined && !isS3Uri(settings.standby)) {
    problems.push(`${ENV.standby} is "${settings.standby}": use the s3://bucket/key the wrapper sets`);
  }
  const allow = env[ENV.allowRuntimeMismatch]?.trim().toLowerCase();
  if (allow === 'true' || allow === '1') settings.allowRuntimeMismatch = true;
  else if (allow !== undefined && allow !== '' && allow !== 'false' && allow !== '0')
    problems.push(`${ENV.allowRuntimeMismatch} is "${env[ENV.allowRuntimeMismatch]}": use true or false`);
  for (const name of [ENV.taskRoot, ENV.layersRoot] as const) {
    const value = env[name]?.trim();
    if (value && !value.startsWith('/')) problems.push(`${name} is "${value}": use an absolute path`);
  }
  if (problems.length > 0)
    throw new BadInputError(`the runner is not configured correctly:\n  - ${problems.join('\n  - ')}`);
  return settings;
}
