import {
  CAPACITY_OPTIONS,
  type CapacityOption,
  DEFAULT_CONTAINER_NAME,
  DEFAULT_OUTCOME_PREFIX,
  DEFAULT_PAYLOAD_PREFIX,
  ENV,
  ENVELOPE_TRANSPORTS,
  type EnvelopeTransport,
  type MetricsSettings,
  readMetricsSettings,
} from '@immortal-lambda/protocol/basics';
import { ConfigurationError } from './errors.js';
import type { FargateFallbackOptions } from './types.js';

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
/** The longest payload prefix: S3 keys hold 1,024 bytes, and the function and request id follow. */
export const MAX_PAYLOAD_PREFIX_LENGTH = 256;

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
  /** Key prefix of outcome records in the payload bucket. */
  outcomePrefix: string;
  marginMs: number;
  envelopeTransport: EnvelopeTransport;
  /** Hand off at most this long after the start; undefined: only the margin counts. */
  maxInLambdaMs: number | undefined;
  /** Start the runner task this long before the handoff, in standby; 0: off. */
  prewarmMs: number;
  /** The CloudWatch metrics (EMF lines) of each handoff: on, namespace, extra dimensions. */
  metrics: MetricsSettings;
}

/** Whether the wrapper should do anything at all in this process. */
export type FallbackMode = 'runner' | 'disabled' | 'active';

type Options = Record<string, unknown>;
type Env = Readonly<Record<string, string | undefined>>;

/** Every option name, for the unknown-name warning and its "did you mean". */
const OPTION_NAMES = [
  'cluster',
  'taskDefinition',
  'containerName',
  'subnets',
  'securityGroups',
  'assignPublicIp',
  'capacity',
  'payloadBucket',
  'payloadPrefix',
  'marginMs',
  'envelopeTransport',
  'maxInLambdaMs',
  'prewarmMs',
  'metrics',
  'metricsWriter',
  'disabled',
  'handoffResponse',
  'routeToFargate',
  'ecsClient',
  's3Client',
  'logger',
  'env',
  'clock',
  'random',
] as const;

const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,255}$/;
const CLUSTER_ARN = /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/[A-Za-z0-9_-]{1,255}$/;
const TASK_DEFINITION = /^[A-Za-z0-9_-]{1,255}(:\d+)?$/;
const TASK_DEFINITION_ARN =
  /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition\/[A-Za-z0-9_-]{1,255}(:\d+)?$/;
const SUBNET = /^subnet-[0-9a-f]{8,17}$/;
const SECURITY_GROUP = /^sg-[0-9a-f]{8,17}$/;
const PAYLOAD_PREFIX = /^[A-Za-z0-9!_.*'()/-]*$/;
const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no', '']);

const kind = (value: unknown) =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'an array'
      : typeof value === 'object'
        ? 'an object'
        : `a ${typeof value}`;

/**
 * Why a name is not a bucket name S3 accepts, or undefined: 3–63 lowercase letters, digits,
 * dots and hyphens, starting and ending with a letter or digit, no adjacent dots, not shaped
 * like an IP address, and none of the prefixes and suffixes S3 reserves.
 * (`bucketNameProblem('192.168.5.4')` is `'is shaped like an IP address'`.)
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'must be 3 to 63 characters long';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name))
    return 'may hold only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit';
  if (name.includes('..')) return 'may not hold two dots in a row';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'is shaped like an IP address';
  const prefix = ['xn--', 'sthree-', 'amzn-s3-demo-'].find((p) => name.startsWith(p));
  if (prefix) return `starts with "${prefix}", which S3 reserves`;
  const suffix = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'].find((p) => name.endsWith(p));
  if (suffix) return `ends with "${suffix}", which S3 reserves`;
  return undefined;
}

/** Reads one setting at a time from options over environment, collecting every problem. */
class SettingsReader {
  readonly problems: string[] = [];
  /** The settings whose option had the wrong type: reported already, so not "missing" too. */
  readonly mistyped = new Set<string>();
  readonly #options: Options;
  readonly #env: Env;

  constructor(options: Options, env: Env) {
    this.#options = options;
    this.#env = env;
  }

  /** A string option, or its environment variable; blank counts as unset. */
  text(name: string, variable: string): string | undefined {
    const option = this.#options[name];
    if (option !== undefined) {
      if (typeof option !== 'string') {
        this.#refuse(name, `${name} must be a string, got ${kind(option)} (${variable})`);
        return undefined;
      }
      return option.trim() === '' ? undefined : option.trim();
    }
    const value = this.#env[variable]?.trim();
    return value === '' ? undefined : value;
  }

  /** A boolean option, or the same words the environment variable takes: true/false, 1/0, yes/no. */
  flag(name: string, variable: string): boolean | undefined {
    const option = this.#options[name];
    if (typeof option === 'boolean') return option;
    const from = option !== undefined ? `${name}` : variable;
    const raw = option !== undefined ? option : this.#env[variable];
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string') {
      this.#refuse(name, `${name} must be true or false, got ${kind(raw)} (${variable})`);
      return undefined;
    }
    const value = raw.trim().toLowerCase();
    if (TRUE.has(value)) return true;
    if (FALSE.has(value)) return false;
    this.problems.push(`${from} is "${raw}": use true or false`);
    return undefined;
  }

  /** A list option (an array of strings, or one comma-separated string), or its variable. */
  list(name: string, variable: string): string[] {
    const option = this.#options[name];
    let items: unknown[];
    if (option === undefined) items = (this.#env[variable] ?? '').split(',');
    else if (typeof option === 'string') items = option.split(',');
    else if (Array.isArray(option)) items = option;
    else {
      this.#refuse(
        name,
        `${name} must be an array of strings or a comma-separated string, got ${kind(option)} (${variable})`,
      );
      return [];
    }
    const bad = items.find((item) => typeof item !== 'string');
    if (bad !== undefined) {
      this.#refuse(name, `${name} must hold strings only, got ${kind(bad)} (${variable})`);
      return [];
    }
    return (items as string[]).map((item) => item.trim()).filter((item) => item.length > 0);
  }

  #refuse(name: string, problem: string): void {
    this.mistyped.add(name);
    this.problems.push(problem);
  }

  /** A whole number option (a number, or a string of decimal digits), or its variable. */
  integer(name: string, variable: string, min: number, max: number): number | undefined {
    const option = this.#options[name];
    const raw = option !== undefined ? option : this.#env[variable];
    if (raw === undefined || (typeof raw === 'string' && raw.trim() === '')) return undefined;
    const value =
      typeof raw === 'number'
        ? raw
        : typeof raw === 'string' && /^\d+$/.test(raw.trim())
          ? Number(raw.trim())
          : Number.NaN;
    if (!Number.isInteger(value) || value < min || value > max) {
      const shown = typeof raw === 'string' || typeof raw === 'number' ? `"${raw}"` : kind(raw);
      this.problems.push(
        `${name} ${shown} must be a whole number of milliseconds from ${min} to ${max} (${variable})`,
      );
      return undefined;
    }
    return value;
  }
}

/**
 * Checks the options object itself: that it is one, and that the callbacks and clients it
 * carries have the shape they must. Returns the names it does not know, for a warning.
 */
export function checkOptions(options: unknown): { options: Options; unknown: string[] } {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ConfigurationError([
      `the options must be an object (or left out), got ${kind(options)}: pass { cluster, taskDefinition, … } or rely on the environment variables (${ENV.cluster}, …)`,
    ]);
  }
  const record = options as Options;
  const problems: string[] = [];
  const callable = (name: string, what: string) => {
    const value = record[name];
    if (value !== undefined && typeof value !== 'function')
      problems.push(`${name} must be ${what}, got ${kind(value)}`);
  };
  callable('handoffResponse', 'a function (receipt, event, context) => response');
  callable('random', 'a function returning a number in [0, 1)');
  callable('routeToFargate', 'a function (event, context) => boolean');
  callable('metricsWriter', 'a function (line) => void');
  if (record.metrics !== undefined && typeof record.metrics !== 'boolean')
    problems.push(`metrics must be true or false, got ${kind(record.metrics)} (${ENV.metrics})`);
  const withMethods = (name: string, methods: readonly string[], what: string) => {
    const value = record[name] as Record<string, unknown> | undefined;
    if (value === undefined) return;
    if (value === null || typeof value !== 'object' || methods.some((m) => typeof value[m] !== 'function'))
      problems.push(`${name} must be ${what} (with ${methods.join(', ')} methods), got ${kind(value)}`);
  };
  withMethods('logger', ['info', 'error'], 'a logger such as a Powertools Logger');
  withMethods('clock', ['now', 'setTimeout', 'clearTimeout'], 'a clock');
  withMethods('ecsClient', ['send'], 'an ECSClient');
  withMethods('s3Client', ['send'], 'an S3Client');
  if (record.env !== undefined && (record.env === null || typeof record.env !== 'object'))
    problems.push(`env must be an object of environment variables, got ${kind(record.env)}`);
  if (problems.length > 0) throw new ConfigurationError(problems);
  const known = new Set<string>(OPTION_NAMES);
  const unknown = Object.keys(record).filter((key) => !known.has(key));
  return { options: record, unknown };
}

/** A warning for option names that are not options, with the closest known name when there is one. */
export function unknownOptionsWarning(names: readonly string[]): string {
  const near = (name: string) =>
    OPTION_NAMES.find((known) => known.toLowerCase() === name.toLowerCase()) ??
    OPTION_NAMES.find((known) => distance(known.toLowerCase(), name.toLowerCase()) <= 2);
  return `immortal-lambda ignores unknown options: ${names
    .map((name) => {
      const guess = near(name);
      return guess ? `${name} (did you mean ${guess}?)` : name;
    })
    .join(', ')}`;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * Decides, from options and environment, whether the wrapper is active, disabled by the kill
 * switch, or running inside the runner (where it must never hand off again).
 */
export function resolveMode(options: FargateFallbackOptions, env: Env): FallbackMode {
  if (env[ENV.runner] === '1') return 'runner';
  const reader = new SettingsReader(options as Options, env);
  const disabled = reader.flag('disabled', ENV.disabled);
  if (reader.problems.length > 0) throw new ConfigurationError(reader.problems);
  return disabled ? 'disabled' : 'active';
}

/**
 * Merges options over environment variables over defaults and validates the result. Throws one
 * {@link ConfigurationError} that lists every missing or invalid setting.
 */
export function resolveConfig(options: FargateFallbackOptions, env: Env): ResolvedConfig {
  const reader = new SettingsReader(options as Options, env);
  const { problems } = reader;

  const cluster = reader.text('cluster', ENV.cluster);
  if (cluster === undefined) {
    if (!reader.mistyped.has('cluster'))
      problems.push(
        `cluster is missing: set the "cluster" option or ${ENV.cluster} to the ECS cluster name or ARN`,
      );
  } else if (TASK_DEFINITION_ARN.test(cluster)) {
    problems.push(`cluster "${cluster}" is a task definition ARN, not a cluster (${ENV.cluster})`);
  } else if (!CLUSTER_NAME.test(cluster) && !CLUSTER_ARN.test(cluster)) {
    problems.push(
      `cluster "${cluster}" is neither a cluster name (letters, digits, - and _) nor an ECS cluster ARN (${ENV.cluster})`,
    );
  }

  const taskDefinition = reader.text('taskDefinition', ENV.taskDefinition);
  if (taskDefinition === undefined) {
    if (!reader.mistyped.has('taskDefinition'))
      problems.push(
        `taskDefinition is missing: set the "taskDefinition" option or ${ENV.taskDefinition} to the runner's task definition (family, family:revision or ARN)`,
      );
  } else if (CLUSTER_ARN.test(taskDefinition)) {
    problems.push(
      `taskDefinition "${taskDefinition}" is a cluster ARN, not a task definition (${ENV.taskDefinition})`,
    );
  } else if (!TASK_DEFINITION.test(taskDefinition) && !TASK_DEFINITION_ARN.test(taskDefinition)) {
    problems.push(
      `taskDefinition "${taskDefinition}" is not a family, family:revision or task definition ARN (${ENV.taskDefinition})`,
    );
  }

  const containerName = reader.text('containerName', ENV.containerName) ?? DEFAULT_CONTAINER_NAME;
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(containerName)) {
    problems.push(`containerName "${containerName}" is not a valid container name (${ENV.containerName})`);
  }

  const subnets = reader.list('subnets', ENV.subnets);
  if (subnets.length === 0 && !reader.mistyped.has('subnets')) {
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

  const securityGroups = reader.list('securityGroups', ENV.securityGroups);
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

  const assignPublicIp = reader.flag('assignPublicIp', ENV.assignPublicIp) ?? false;

  const capacityRaw = reader.text('capacity', ENV.capacity)?.toUpperCase().replace(/\s+/g, '') ?? 'FARGATE';
  const capacity = CAPACITY_OPTIONS.find((c) => c === capacityRaw);
  if (capacity === undefined) {
    problems.push(
      `capacity "${capacityRaw}" is not one of ${CAPACITY_OPTIONS.join(' | ')} (${ENV.capacity})`,
    );
  }

  const payloadBucket = reader.text('payloadBucket', ENV.payloadBucket);
  const bucketProblem = payloadBucket === undefined ? undefined : bucketNameProblem(payloadBucket);
  if (bucketProblem !== undefined) {
    problems.push(
      `payloadBucket "${payloadBucket}" is not a valid S3 bucket name: it ${bucketProblem} (${ENV.payloadBucket})`,
    );
  }

  const prefixOption = reader.text('payloadPrefix', ENV.payloadPrefix);
  let payloadPrefix = DEFAULT_PAYLOAD_PREFIX;
  if (prefixOption !== undefined) {
    if (prefixOption.length > MAX_PAYLOAD_PREFIX_LENGTH) {
      problems.push(
        `payloadPrefix is ${prefixOption.length} characters long; use at most ${MAX_PAYLOAD_PREFIX_LENGTH}, so that the envelope's key stays within S3's 1,024 bytes`,
      );
    } else if (
      !PAYLOAD_PREFIX.test(prefixOption) ||
      prefixOption.startsWith('/') ||
      prefixOption.includes('//')
    ) {
      problems.push(
        `payloadPrefix "${prefixOption}" may hold only letters, digits and ! _ . * ' ( ) / -, without a leading or doubled /`,
      );
    } else {
      payloadPrefix = prefixOption;
    }
  }

  const marginMs =
    reader.integer('marginMs', ENV.marginMs, MIN_MARGIN_MS, MAX_LAMBDA_TIMEOUT_MS - 1) ?? DEFAULT_MARGIN_MS;

  const transportRaw = reader.text('envelopeTransport', ENV.envelopeTransport)?.toLowerCase() ?? 'auto';
  const envelopeTransport = ENVELOPE_TRANSPORTS.find((t) => t === transportRaw);
  if (envelopeTransport === undefined) {
    problems.push(
      `envelopeTransport "${transportRaw}" is not one of ${ENVELOPE_TRANSPORTS.join(' | ')} (${ENV.envelopeTransport})`,
    );
  } else if (envelopeTransport === 's3' && payloadBucket === undefined) {
    problems.push(
      `envelopeTransport is s3 but no payload bucket is set: set the "payloadBucket" option or ${ENV.payloadBucket}`,
    );
  }

  const maxInLambdaMs = reader.integer('maxInLambdaMs', ENV.maxInLambdaMs, 1, MAX_LAMBDA_TIMEOUT_MS);

  const prewarmMs = reader.integer('prewarmMs', ENV.prewarmMs, 0, MAX_LAMBDA_TIMEOUT_MS) ?? 0;
  if (prewarmMs > 0 && payloadBucket === undefined) {
    problems.push(
      `prewarmMs is ${prewarmMs} but no payload bucket is set: a pre-warmed task waits for its envelope in the bucket; set the "payloadBucket" option or ${ENV.payloadBucket}, or set prewarmMs to 0`,
    );
  }

  const { settings: metrics, problems: metricsProblems } = readMetricsSettings(env);
  problems.push(...metricsProblems);
  if ((options as Options).metrics === false) metrics.enabled = false;

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
    outcomePrefix: env[ENV.outcomePrefix]?.trim() || DEFAULT_OUTCOME_PREFIX,
    marginMs,
    envelopeTransport: envelopeTransport as EnvelopeTransport,
    maxInLambdaMs,
    prewarmMs,
    metrics,
  };
}
