import {
  CAPACITY_OPTIONS,
  type CapacityOption,
  DEFAULT_CONTAINER_NAME,
  DEFAULT_MARGIN_MS,
  DEFAULT_OUTCOME_PREFIX,
  DEFAULT_PAYLOAD_PREFIX,
  ENV,
  ENVELOPE_TRANSPORTS,
  type EnvelopeTransport,
  type MetricsSettings,
  MIN_MARGIN_MS,
  readMetricsSettings,
} from '@immortal-lambda/protocol/basics';
import { ConfigurationError } from './errors.js';
import { type Env, type Options, SettingsReader } from './settings-reader.js';
import type { FargateFallbackOptions } from './types.js';

export { DEFAULT_MARGIN_MS, MIN_MARGIN_MS } from '@immortal-lambda/protocol/basics';

/**
 * How long before a sandbox's first handoff its code and SDK clients are loaded: loading the ECS,
 * S3 and SQS clients costs about 150 ms of one full vCPU, several times that at 128 MB.
 */
export const DEFAULT_LOAD_AHEAD_MS = 3_000;

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
  /** Load the handoff's code and clients this long before the first handoff (0: at the handoff). */
  loadAheadMs: number;
  /** The SQS queue URL where handoffs that meet the launch rate are queued; undefined: none. */
  launchQueue: string | undefined;
  /** Hold a handed-off SQS batch in its queue until the runner has finished it (default true). */
  holdSqsBatches: boolean;
  /** Keep a stream shard in order across a handoff (default false). */
  ordered: boolean;
  /** The CloudWatch metrics (EMF lines) of each handoff: on, namespace, extra dimensions. */
  metrics: MetricsSettings;
}

/** Whether the wrapper should do anything at all in this process. */
export type FallbackMode = 'runner' | 'disabled' | 'active';

const NAME = /^[A-Za-z0-9_-]{1,255}$/;
const CLUSTER_ARN = /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/[A-Za-z0-9_-]{1,255}$/;
const TASK_DEFINITION = /^[A-Za-z0-9_-]{1,255}(:\d+)?$/;
const TASK_DEFINITION_ARN =
  /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition\/[A-Za-z0-9_-]{1,255}(:\d+)?$/;
const SQS_QUEUE_URL = /^https:\/\/sqs\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\/\d{12}\/[A-Za-z0-9_-]{1,80}$/;
const PAYLOAD_PREFIX = /^(?!\/)(?!.*\/\/)[A-Za-z0-9!_.*'()/-]*$/;

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
  const placement = placementSettings(reader);
  const payload = payloadSettings(reader);
  const timing = timingSettings(reader, payload.payloadBucket);
  const { settings: metrics, problems: metricsProblems } = readMetricsSettings(env);
  reader.problems.push(...metricsProblems);
  if ((options as Options).metrics === false) metrics.enabled = false;
  if (reader.problems.length > 0) throw new ConfigurationError(reader.problems);
  // No problem was found, so the required settings are there.
  return {
    ...placement,
    ...payload,
    outcomePrefix: env[ENV.outcomePrefix]?.trim() || DEFAULT_OUTCOME_PREFIX,
    ...timing,
    metrics,
  } as ResolvedConfig;
}

/** Where and how the runner task starts: cluster, task definition, container, network, capacity. */
function placementSettings(reader: SettingsReader) {
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
  return { cluster, taskDefinition, containerName, subnets, securityGroups, assignPublicIp, capacity };
}

/** The payload bucket and the key prefix of envelopes in it. */
function payloadSettings(reader: SettingsReader) {
  const payloadBucket = reader.text('payloadBucket');
  const bucketProblem = payloadBucket && bucketNameProblem(payloadBucket);
  if (bucketProblem)
    reader.problem(
      'payloadBucket',
      `payloadBucket "${payloadBucket}" is not a valid S3 bucket name: it ${bucketProblem}`,
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
  return { payloadBucket, payloadPrefix };
}

/** When and how the handoff happens: the margin, the transport, the cap on time in Lambda, pre-warm. */
function timingSettings(reader: SettingsReader, payloadBucket: string | undefined) {
  const needsBucket = (what: string) =>
    reader.problem(
      'payloadBucket',
      `${what} but no payload bucket is set: set the "payloadBucket" option or the variable`,
    );
  const marginMs = reader.integer('marginMs', MIN_MARGIN_MS, MAX_LAMBDA_TIMEOUT_MS - 1) ?? DEFAULT_MARGIN_MS;
  const envelopeTransport = reader.oneOf('envelopeTransport', ENVELOPE_TRANSPORTS, 'auto', (raw) =>
    raw.toLowerCase(),
  );
  if (envelopeTransport === 's3' && payloadBucket === undefined) needsBucket('envelopeTransport is s3');
  const maxInLambdaMs = reader.integer('maxInLambdaMs', 1, MAX_LAMBDA_TIMEOUT_MS);
  const prewarmMs = reader.integer('prewarmMs', 0, MAX_LAMBDA_TIMEOUT_MS) ?? 0;
  if (prewarmMs > 0 && payloadBucket === undefined) needsBucket(`prewarmMs is ${prewarmMs}`);
  const loadAheadMs = reader.integer('loadAheadMs', 0, MAX_LAMBDA_TIMEOUT_MS) ?? DEFAULT_LOAD_AHEAD_MS;
  const launchQueue = reader.text('launchQueue');
  if (launchQueue !== undefined && !SQS_QUEUE_URL.test(launchQueue))
    reader.problem(
      'launchQueue',
      `launchQueue "${launchQueue}" is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>): give the queue's URL, not its name or ARN`,
    );
  if (launchQueue !== undefined && payloadBucket === undefined) needsBucket('launchQueue is set');
  const holdSqsBatches = reader.flag('holdSqsBatches') ?? true;
  const ordered = reader.flag('ordered') ?? false;
  if (ordered && payloadBucket === undefined) needsBucket('ordered is set');
  return {
    marginMs,
    envelopeTransport,
    maxInLambdaMs,
    prewarmMs,
    loadAheadMs,
    launchQueue,
    holdSqsBatches,
    ordered,
  };
}
