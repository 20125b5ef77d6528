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

const NAME = /^[A-Za-z0-9_-]{1,255}$/;
const CLUSTER_ARN = /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/[A-Za-z0-9_-]{1,255}$/;
const TASK_DEFINITION = /^[A-Za-z0-9_-]{1,255}(:\d+)?$/;
const TASK_DEFINITION_ARN =
  /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition\/[A-Za-z0-9_-]{1,255}(:\d+)?$/;
const PAYLOAD_PREFIX = /^(?!\/)(?!.*\/\/)[A-Za-z0-9!_.*'()/-]*$/;
const TRUE = ['true', '1', 'yes'];
const FALSE = ['false', '0', 'no'];

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
  const reserved =
    name.match(/^(xn--|sthree-|amzn-s3-demo-)/)?.[0] ??
    name.match(/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/)?.[0];
  return reserved && `${name.startsWith(reserved) ? 'starts' : 'ends'} with "${reserved}", which S3 reserves`;
}

/** A setting that has an option and an environment variable of the same name. */
type Setting = keyof typeof ENV & keyof FargateFallbackOptions;

/**
 * Reads one setting at a time, its option over its environment variable, collecting every
 * problem, each naming the variable.
 */
class SettingsReader {
  readonly problems: string[] = [];
  /** The settings whose option had the wrong type: reported already, so not "missing" too. */
  readonly #mistypedNames = new Set<Setting>();
  readonly #options: Options;
  readonly #env: Env;

  constructor(options: Options, env: Env) {
    this.#options = options;
    this.#env = env;
  }

  /** Records a problem with a setting; its variable is named after it. */
  problem(name: Setting, text: string): void {
    this.problems.push(`${text} (${ENV[name]})`);
  }

  /** Records that a required setting is missing, unless its option was of the wrong type. */
  missing(name: Setting, what: string): void {
    if (!this.#mistypedNames.has(name))
      this.problem(name, `${name} is missing: set the "${name}" option or the variable to ${what}`);
  }

  /** The option when given, else the variable; blank counts as unset. */
  #raw(name: Setting): unknown {
    const option = this.#options[name];
    const raw = option !== undefined ? option : this.#env[ENV[name]];
    return typeof raw === 'string' && raw.trim() === '' ? undefined : raw;
  }

  /** Records a problem of type, after which the setting is not reported missing too. */
  #mistyped(name: Setting, text: string): undefined {
    this.#mistypedNames.add(name);
    this.problem(name, text);
    return undefined;
  }

  /** A string setting, trimmed. */
  text(name: Setting): string | undefined {
    const raw = this.#raw(name);
    return typeof raw === 'string' || raw === undefined
      ? raw?.trim()
      : this.#mistyped(name, `${name} must be a string, got ${kind(raw)}`);
  }

  /** A boolean option, or the same words the variable takes: true/false, 1/0, yes/no. */
  flag(name: Setting): boolean | undefined {
    const raw = this.#raw(name);
    if (raw === undefined || typeof raw === 'boolean') return raw;
    if (typeof raw !== 'string')
      return this.#mistyped(name, `${name} must be true or false, got ${kind(raw)}`);
    const value = raw.trim().toLowerCase();
    if (TRUE.includes(value)) return true;
    if (FALSE.includes(value)) return false;
    this.problem(name, `${name} is "${raw}": use true or false`);
    return undefined;
  }

  /**
   * A required string matching one of `accepted` (else it is not `what`); one that matches the
   * `mistaken` pattern is said to be that other kind of value, the usual slip.
   */
  identifier(
    name: Setting,
    accepted: readonly RegExp[],
    what: string,
    [mistaken, mistakenFor]: readonly [RegExp, string],
  ): string | undefined {
    const value = this.text(name);
    if (value === undefined) this.missing(name, what);
    else if (!accepted.some((pattern) => pattern.test(value)))
      this.problem(
        name,
        `${name} "${value}" is ${mistaken.test(value) ? `${mistakenFor}, not` : 'not'} ${what}`,
      );
    return value;
  }

  /**
   * A list (an array of strings, or one comma-separated string), each item matching `pattern`
   * (else it is not `item`), at most `max` of them.
   */
  list(name: Setting, pattern: RegExp, item: string, max: number): string[] {
    const raw = this.#raw(name);
    const items: unknown[] =
      raw === undefined ? [] : typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : [raw];
    const bad = items.find((each) => typeof each !== 'string');
    if (bad !== undefined) {
      this.#mistyped(
        name,
        Array.isArray(raw)
          ? `${name} must hold strings only, got ${kind(bad)}`
          : `${name} must be an array of strings or a comma-separated string, got ${kind(raw)}`,
      );
      return [];
    }
    const list = (items as string[]).map((each) => each.trim()).filter((each) => each !== '');
    for (const each of list) if (!pattern.test(each)) this.problem(name, `"${each}" is not ${item}`);
    if (list.length > max) this.problem(name, `${list.length} ${name} given; RunTask accepts at most ${max}`);
    return list;
  }

  /** One of a few words, compared once `normalize` made it so; `fallback` when unset. */
  oneOf<T extends string>(
    name: Setting,
    words: readonly T[],
    fallback: T,
    normalize: (raw: string) => string,
  ): T {
    const raw = this.text(name);
    if (raw === undefined) return fallback;
    const word = words.find((each) => each === normalize(raw));
    if (word === undefined)
      this.problem(name, `${name} "${normalize(raw)}" is not one of ${words.join(' | ')}`);
    return word ?? fallback;
  }

  /** A whole number of milliseconds (a number, or a string of decimal digits). */
  integer(name: Setting, min: number, max: number): number | undefined {
    const raw = this.#raw(name);
    if (raw === undefined) return undefined;
    const value =
      typeof raw === 'number'
        ? raw
        : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw)
          ? Number(raw)
          : Number.NaN;
    if (Number.isInteger(value) && value >= min && value <= max) return value;
    const shown = typeof raw === 'string' || typeof raw === 'number' ? `"${raw}"` : kind(raw);
    this.problem(name, `${name} ${shown} must be a whole number of milliseconds from ${min} to ${max}`);
    return undefined;
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
  const disabled = reader.flag('disabled');
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

  const cluster = reader.identifier(
    'cluster',
    [NAME, CLUSTER_ARN],
    'a cluster name (letters, digits, - and _) or ECS cluster ARN',
    [TASK_DEFINITION_ARN, 'a task definition ARN'],
  );
  const taskDefinition = reader.identifier(
    'taskDefinition',
    [TASK_DEFINITION, TASK_DEFINITION_ARN],
    "a task definition: the runner's family, family:revision or ARN",
    [CLUSTER_ARN, 'a cluster ARN'],
  );

  const containerName = reader.text('containerName') ?? DEFAULT_CONTAINER_NAME;
  if (!NAME.test(containerName))
    reader.problem(
      'containerName',
      `containerName "${containerName}" is not a container name (letters, digits, - and _)`,
    );

  const subnets = reader.list(
    'subnets',
    /^subnet-[0-9a-f]{8,17}$/,
    'a subnet id like subnet-0123456789abcdef0',
    16,
  );
  if (subnets.length === 0)
    reader.missing('subnets', 'comma-separated subnet ids (Fargate tasks need awsvpc networking)');
  const securityGroups = reader.list(
    'securityGroups',
    /^sg-[0-9a-f]{8,17}$/,
    'a security group id like sg-0123456789abcdef0',
    5,
  );

  const assignPublicIp = reader.flag('assignPublicIp') ?? false;
  const capacity = reader.oneOf('capacity', CAPACITY_OPTIONS, 'FARGATE', (raw) =>
    raw.toUpperCase().replace(/\s+/g, ''),
  );

  const payloadBucket = reader.text('payloadBucket');
  const bucketProblem = payloadBucket && bucketNameProblem(payloadBucket);
  if (bucketProblem)
    reader.problem(
      'payloadBucket',
      `payloadBucket "${payloadBucket}" is not a valid S3 bucket name: it ${bucketProblem}`,
    );
  const needsBucket = (what: string) =>
    reader.problem(
      'payloadBucket',
      `${what} but no payload bucket is set: set the "payloadBucket" option or the variable`,
    );

  const payloadPrefix = reader.text('payloadPrefix') ?? DEFAULT_PAYLOAD_PREFIX;
  if (payloadPrefix.length > MAX_PAYLOAD_PREFIX_LENGTH)
    reader.problem(
      'payloadPrefix',
      `payloadPrefix is ${payloadPrefix.length} characters long; use at most ${MAX_PAYLOAD_PREFIX_LENGTH}, so that the envelope's key stays within S3's 1,024 bytes`,
    );
  else if (!PAYLOAD_PREFIX.test(payloadPrefix))
    reader.problem(
      'payloadPrefix',
      `payloadPrefix "${payloadPrefix}" may hold only letters, digits and ! _ . * ' ( ) / -, without a leading or doubled /`,
    );

  const marginMs = reader.integer('marginMs', MIN_MARGIN_MS, MAX_LAMBDA_TIMEOUT_MS - 1) ?? DEFAULT_MARGIN_MS;
  const envelopeTransport = reader.oneOf('envelopeTransport', ENVELOPE_TRANSPORTS, 'auto', (raw) =>
    raw.toLowerCase(),
  );
  if (envelopeTransport === 's3' && payloadBucket === undefined) needsBucket('envelopeTransport is s3');
  const maxInLambdaMs = reader.integer('maxInLambdaMs', 1, MAX_LAMBDA_TIMEOUT_MS);
  const prewarmMs = reader.integer('prewarmMs', 0, MAX_LAMBDA_TIMEOUT_MS) ?? 0;
  if (prewarmMs > 0 && payloadBucket === undefined) needsBucket(`prewarmMs is ${prewarmMs}`);

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
    capacity,
    payloadBucket,
    payloadPrefix,
    outcomePrefix: env[ENV.outcomePrefix]?.trim() || DEFAULT_OUTCOME_PREFIX,
    marginMs,
    envelopeTransport,
    maxInLambdaMs,
    prewarmMs,
    metrics,
  };
}
