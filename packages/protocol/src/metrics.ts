import { ENV } from './names.js';

/**
 * Where the wrapper's and the runner's metrics go, read and checked with the other settings; the
 * lines themselves are written by `emf.ts`, which loads with the first handoff.
 */

/**
 * Where the metrics go: their namespace and dimensions (by default `ImmortalLambda`, by function
 * name), or nowhere when off.
 *
 * @example
 * ```ts
 * import type { MetricsSettings } from '@immortal-lambda/protocol';
 * const settings: MetricsSettings = { enabled: true, namespace: 'ImmortalLambda', dimensions: {} };
 * ```
 */
export interface MetricsSettings {
  enabled: boolean;
  namespace: string;
  /** Dimensions beside `FunctionName`. */
  dimensions: Record<string, string>;
}

/**
 * The default namespace of the metrics.
 *
 * @example
 * ```ts
 * import { DEFAULT_METRICS_NAMESPACE } from '@immortal-lambda/protocol';
 * DEFAULT_METRICS_NAMESPACE; // 'ImmortalLambda'
 * ```
 */
export const DEFAULT_METRICS_NAMESPACE = 'ImmortalLambda';

/** What CloudWatch accepts as a namespace: 1–255 of these characters, not starting with `AWS/`. */
const NAMESPACE = /^[A-Za-z0-9._/#: -]{1,255}$/;
/** A dimension name: 1–255 printable ASCII characters, not starting with `:`. */
const DIMENSION = /^[\x20-\x7e]{1,255}$/;

/**
 * Why a metrics namespace or dimension set is not one CloudWatch accepts, or undefined.
 *
 * @example
 * ```ts
 * import { metricsProblem } from '@immortal-lambda/protocol';
 * metricsProblem('AWS/Lambda', {}); // 'the namespace may not start with "AWS/" (CloudWatch keeps those)'
 * ```
 */
export function metricsProblem(namespace: string, dimensions: Record<string, string>): string | undefined {
  if (!NAMESPACE.test(namespace))
    return `the namespace "${namespace}" must be 1 to 255 letters, digits, spaces and . _ / # : -`;
  if (namespace.startsWith('AWS/')) return 'the namespace may not start with "AWS/" (CloudWatch keeps those)';
  const names = Object.keys(dimensions);
  if (names.length > 29) return `${names.length} dimensions given; EMF takes 30 with FunctionName`;
  for (const [name, value] of Object.entries(dimensions)) {
    if (!DIMENSION.test(name) || name.startsWith(':'))
      return `the dimension name "${name}" must be 1 to 255 printable ASCII characters, not starting with ":"`;
    if (name === 'FunctionName') return 'FunctionName is always a dimension; give other names';
    if (!DIMENSION.test(value))
      return `the dimension ${name}'s value "${value}" must be 1 to 255 printable ASCII characters`;
  }
  return undefined;
}

/**
 * The metrics settings from the environment (`FARGATE_FALLBACK_METRICS`, `…_METRICS_NAMESPACE`,
 * `…_METRICS_DIMENSIONS` as `Name=value,Name=value`), with what was wrong with them.
 *
 * @example
 * ```ts
 * import { readMetricsSettings } from '@immortal-lambda/protocol';
 * const { settings, problems } = readMetricsSettings(process.env);
 * ```
 */
export function readMetricsSettings(env: Readonly<Record<string, string | undefined>>): {
  settings: MetricsSettings;
  problems: string[];
} {
  const problems: string[] = [];
  const flag = env[ENV.metrics]?.trim().toLowerCase();
  let enabled = true;
  if (flag === 'false' || flag === '0' || flag === 'no') enabled = false;
  else if (flag !== undefined && flag !== '' && flag !== 'true' && flag !== '1' && flag !== 'yes')
    problems.push(`${ENV.metrics} is "${env[ENV.metrics]}": use true or false`);
  const namespace = env[ENV.metricsNamespace]?.trim() || DEFAULT_METRICS_NAMESPACE;
  const dimensions: Record<string, string> = {};
  for (const pair of (env[ENV.metricsDimensions] ?? '').split(',')) {
    if (pair.trim() === '') continue;
    const at = pair.indexOf('=');
    if (at < 1) {
      problems.push(`${ENV.metricsDimensions} holds "${pair.trim()}": use Name=value pairs, comma-separated`);
      continue;
    }
    dimensions[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  const problem = enabled ? metricsProblem(namespace, dimensions) : undefined;
  if (problem) problems.push(`metrics: ${problem} (${ENV.metricsNamespace}, ${ENV.metricsDimensions})`);
  return { settings: { enabled, namespace, dimensions }, problems };
}
