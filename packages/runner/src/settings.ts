import { ENV } from '@immortal-lambda/middleware/protocol';
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
export const STOP_GRACE_ENV = 'FARGATE_FALLBACK_STOP_GRACE_MS';

export interface RunnerSettings {
  envelope: string | undefined;
  taskRoot: string;
  layersRoot: string;
  maxRuntimeMs: number;
  stopGraceMs: number;
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
  const integer = (name: string, fallback: number, min: number, max: number) => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} is "${raw}": use a whole number of milliseconds from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const settings: RunnerSettings = {
    envelope: env[ENV.envelope],
    taskRoot: env[ENV.taskRoot]?.trim() || '/var/task',
    layersRoot: env[ENV.layersRoot]?.trim() || '/opt',
    maxRuntimeMs: integer(ENV.maxRuntimeMs, DEFAULT_MAX_RUNTIME_MS, 1, Number.MAX_SAFE_INTEGER),
    stopGraceMs: integer(STOP_GRACE_ENV, DEFAULT_STOP_GRACE_MS, 0, MAX_STOP_GRACE_MS),
  };
  for (const name of [ENV.taskRoot, ENV.layersRoot] as const) {
    const value = env[name]?.trim();
    if (value && !value.startsWith('/')) problems.push(`${name} is "${value}": use an absolute path`);
  }
  if (problems.length > 0)
    throw new BadInputError(`the runner is not configured correctly:\n  - ${problems.join('\n  - ')}`);
  return settings;
}
