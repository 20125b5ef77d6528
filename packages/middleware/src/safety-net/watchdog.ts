import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  ENV,
  type Envelope,
  isCancelMarker,
  isS3Uri,
  parseEnvelope,
  parseS3Uri,
} from '@immortal-lambda/protocol';
import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
import type { Context } from 'aws-lambda';
import { systemClock } from '../clock.js';
import type { ResolvedConfig } from '../config.js';
import { RelaunchError } from '../errors.js';
import { type IsolatedLogger, isolatedLogger, jsonLogger } from '../logger.js';
import { type OutcomeLocation, readOutcomes } from '../outcome-store.js';
import { BOUNDED_CLIENT, loadEcs, loadS3 } from '../sdk.js';
import type { FargateFallbackOptions } from '../types.js';
import { ServedFunctions } from './served-functions.js';
import { carryOut, type WatchdogTarget } from './watchdog-actions.js';
import {
  decide,
  familyOfTask,
  foreignTask,
  memoryLimits,
  screenEvent,
  type TaskStateChangeEvent,
  toldStandbyVerdict,
  untoldStandby,
  type WatchdogOutcome,
} from './watchdog-verdict.js';

export type { TaskStateChangeEvent, WatchdogOutcome } from './watchdog-verdict.js';

/**
 * Options of {@link taskWatchdog}: the runner's placement (the same settings as the wrapper's, from
 * the same `FARGATE_FALLBACK_*` variables), how often to try, and the clients.
 *
 * @example
 * ```ts
 * import type { TaskWatchdogOptions } from '@immortal-lambda/middleware/safety-net';
 * const options: TaskWatchdogOptions = { maxAttempts: 4, backoffMs: 5_000 };
 * ```
 */
export interface TaskWatchdogOptions
  extends Pick<
    FargateFallbackOptions,
    | 'cluster'
    | 'taskDefinition'
    | 'containerName'
    | 'subnets'
    | 'securityGroups'
    | 'assignPublicIp'
    | 'capacity'
    | 'payloadBucket'
    | 'env'
    | 'logger'
    | 'clock'
    | 'ecsClient'
    | 's3Client'
  > {
  /** Attempts at one invocation, the first included (`FARGATE_FALLBACK_MAX_ATTEMPTS`, default 3). */
  maxAttempts?: number;
  /** Wait before relaunch N: `backoffMs × 2^(N−2)` (default 2,000 ms: 2 s, 4 s, …). */
  backoffMs?: number;
  /**
   * The clients a final failure is sent to the function's on-failure destination with (default:
   * the AWS SDK's, from `@immortal-lambda/protocol/destinations`).
   */
  destinations?: DestinationClients;
  random?: () => number;
}

const DEFAULT_MAX_ATTEMPTS = 3;

/** The envelope a runner task was started with: inline JSON, or read from its `s3://` location. */
async function envelopeOf(value: string, s3: () => Promise<S3Client>): Promise<Envelope> {
  if (!isS3Uri(value)) return parseEnvelope(value);
  const { GetObjectCommand } = await loadS3();
  const location = parseS3Uri(value);
  const object = await (await s3()).send(
    new GetObjectCommand({ Bucket: location.bucket, Key: location.key }),
  );
  return parseEnvelope((await object.Body?.transformToString()) ?? '');
}

/** A cluster by name, from its name or ARN. */
const clusterName = (cluster: string) => cluster.replace(/^arn:.*:cluster\//, '');
/** A task definition's family, from its family, family:revision or ARN. */
const familyOf = (taskDefinition: string) =>
  taskDefinition.replace(/^arn:.*:task-definition\//, '').replace(/:\d+$/, '');

/**
 * The cluster a watchdog serves: its one placement's, else `FARGATE_FALLBACK_CLUSTER` (a watchdog
 * serving several functions of one cluster); the family too when it serves one placement.
 */
function servedCluster(
  functions: ServedFunctions,
  options: TaskWatchdogOptions,
  env: Readonly<Record<string, string | undefined>>,
): { cluster: string; family: string | undefined } {
  if (functions.own) {
    return { cluster: clusterName(functions.own.cluster), family: familyOf(functions.own.taskDefinition) };
  }
  const cluster = (options.cluster ?? env[ENV.cluster])?.trim();
  if (!cluster) {
    throw new RelaunchError(
      `a watchdog serving ${functions.arns.join(', ')} needs the cluster it watches: set ${ENV.cluster}`,
    );
  }
  return { cluster: clusterName(cluster), family: undefined };
}
const accountOf = (arn: string | undefined) =>
  arn ? /^arn:aws[a-z-]*:lambda:[^:]+:(\d+):/.exec(arn)?.[1] : undefined;

/** A task of another cluster, family, account, region or function: said, and left alone. */
function ignoreForeign(logger: IsolatedLogger, outcome: WatchdogOutcome): WatchdogOutcome {
  logger.warn("A stopped task that is not this watchdog's was left alone", {
    reason: outcome.reason,
    hint: 'the EventBridge rule should match this cluster and runner family only (the construct makes it so)',
  });
  return outcome;
}

/** Whether the resume location of a standby task holds its envelope (not the cancel marker, not nothing). */
async function toldToGo(uri: string, s3: () => Promise<S3Client>): Promise<boolean> {
  const { GetObjectCommand } = await loadS3();
  const location = parseS3Uri(uri);
  try {
    const object = await (await s3()).send(
      new GetObjectCommand({ Bucket: location.bucket, Key: location.key }),
    );
    const text = (await object.Body?.transformToString()) ?? '';
    return !isCancelMarker(JSON.parse(text));
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === 'NoSuchKey' || name === 'NotFound') return false;
    // S3 answers a missing key with 403 to a role that may not list the bucket without a prefix:
    // the watchdog may list its function's records, so it lists exactly that key.
    if (name === 'AccessDenied' && !(await listed(await s3(), location.bucket, location.key))) return false;
    throw new RelaunchError(
      `the resume location ${uri} of a stopped standby task cannot be read: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Whether a listing of exactly `key` finds it. */
async function listed(client: S3Client, bucket: string, key: string): Promise<boolean> {
  const { ListObjectsV2Command } = await loadS3();
  const answer = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, MaxKeys: 1 }));
  return (answer.Contents ?? []).some((object) => object.Key === key);
}

/** How often, and up to what memory, a function's invocation is started: its own settings, else the watchdog's. */
function attemptLimits(
  options: TaskWatchdogOptions,
  variables: Readonly<Record<string, string | undefined>>,
  env: Readonly<Record<string, string | undefined>>,
): { maxAttempts: number; maxMemoryMiB: number | undefined } {
  const setting = (name: string) => variables[name]?.trim() || env[name]?.trim() || undefined;
  const ceiling = setting(ENV.maxMemoryMiB);
  return {
    maxAttempts: positiveInteger(
      options.maxAttempts ?? setting(ENV.maxAttempts),
      'maxAttempts',
      DEFAULT_MAX_ATTEMPTS,
    ),
    maxMemoryMiB: ceiling ? positiveInteger(ceiling, ENV.maxMemoryMiB, 0) : undefined,
  };
}

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const number =
    typeof value === 'number' ? value : /^\d+$/.test(String(value).trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < 1) {
    throw new RelaunchError(`${name} is ${JSON.stringify(value)}: use a whole number of at least 1`);
  }
  return number;
}

/**
 * A Lambda handler for EventBridge "ECS Task State Change" events of runner tasks (an EventBridge
 * rule on `source: aws.ecs`, `detail.lastStatus: STOPPED`, the runner's cluster and family). A
 * task that ended before its invocation had a result — a Spot interruption, a failed start, out of
 * memory, code that could not be fetched — is started again with the same envelope, on on-demand
 * capacity after a Spot interruption, up to `maxAttempts`, each attempt with a client token of its
 * own (`<request id>-a<attempt>`), so an event delivered twice never starts two tasks. A handler
 * error is the invocation's result and is left alone. After the last attempt the invocation is
 * recorded `failed` and the failure goes to the function's on-failure destination.
 *
 * Throws {@link RelaunchError} when a relaunch cannot be started, so that Lambda retries the event.
 *
 * @example
 * ```ts
 * import { taskWatchdog } from '@immortal-lambda/middleware/safety-net';
 * export const handler = taskWatchdog({ maxAttempts: 3 });
 * ```
 */
export function taskWatchdog(
  options: TaskWatchdogOptions = {},
): (
  event: TaskStateChangeEvent,
  context?: Pick<Context, 'getRemainingTimeInMillis'> & Partial<Pick<Context, 'invokedFunctionArn'>>,
) => Promise<WatchdogOutcome> {
  const env = options.env ?? process.env;
  const logger = isolatedLogger(options.logger ?? jsonLogger);
  const clock = options.clock ?? systemClock;
  const functions = new ServedFunctions(options, env, options.destinations);
  // The watchdog's own limits are checked when it is made; a function's when it is read.
  attemptLimits(options, {}, env);
  const backoffMs = options.backoffMs ?? 2_000;
  let ecs = options.ecsClient;
  let s3 = options.s3Client;
  const ecsClient = async () => {
    if (!ecs) ecs = new (await loadEcs()).ECSClient(BOUNDED_CLIENT);
    return ecs as ECSClient;
  };
  const s3Client = async () => {
    if (!s3) s3 = new (await loadS3()).S3Client(BOUNDED_CLIENT);
    return s3 as S3Client;
  };

  const served = {
    ...servedCluster(functions, options, env),
    region: env.AWS_REGION?.trim() || undefined,
  };

  return async (event, context) => {
    const stopped = screenEvent(event);
    if ('ignored' in stopped) return stopped.ignored;
    const { detail, override } = stopped;
    const foreign = foreignTask(detail, { ...served, account: accountOf(context?.invokedFunctionArn) });
    if (foreign) return ignoreForeign(logger, foreign);
    const standby = override.environment.get(ENV.standby);
    if (standby && !(await toldToGo(standby, s3Client))) return untoldStandby(stopped.verdict);
    // Told to go, a standby that exited 0 ran the invocation only if its runner recorded success.
    const verdict = standby ? toldStandbyVerdict(stopped.verdict) : stopped.verdict;
    const attempt = positiveInteger(override.environment.get(ENV.attempt), ENV.attempt, 1);
    const envelope = await stoppedEnvelope(
      override.environment.get(ENV.envelope) ?? '',
      detail.taskArn,
      s3Client,
    );
    const name = envelope.function.name;
    if (!functions.serves(name)) {
      return ignoreForeign(logger, {
        action: 'ignored',
        reason: `task ${detail.taskArn} ran ${name}, not ${[...functions.names].join(' or ')}, the function${functions.names.size === 1 ? '' : 's'} this watchdog serves`,
        requestId: envelope.invocation.awsRequestId,
      });
    }
    const { config, variables } = await functions.settingsOf(name, envelope.function.version);
    const family = familyOfTask(detail);
    if (family !== familyOf(config.taskDefinition)) {
      return ignoreForeign(logger, {
        action: 'ignored',
        reason: `task ${detail.taskArn} is of family ${family ?? 'unknown'}, not ${familyOf(config.taskDefinition)}, the runner of ${name}`,
        requestId: envelope.invocation.awsRequestId,
      });
    }
    const { maxAttempts, maxMemoryMiB } = attemptLimits(options, variables, env);
    const at = outcomeLocation(override.environment, config, envelope);
    const records = at ? await readOutcomes(await s3Client(), at) : [];
    const memory = memoryLimits(detail, maxMemoryMiB);
    const decision = decide({ verdict, attempt, maxAttempts, records, memory });
    const target: WatchdogTarget = {
      stopped: { ...stopped, verdict },
      envelope,
      attempt,
      at,
      config,
      clock,
      logger,
      s3: s3Client,
      ecs: ecsClient,
      random: options.random ?? Math.random,
      destinations: options.destinations,
      // Where the function's final failures go: its own setting (the construct's), else the watchdog's.
      finalFailures: variables[ENV.finalFailures]?.trim() || env[ENV.finalFailures]?.trim() || undefined,
      knownDestinations: env[ENV.destinations]?.trim() || undefined,
    };
    return carryOut(decision, target, {
      backoffMs,
      maxAttempts,
      remainingMs: () => context?.getRemainingTimeInMillis?.(),
    });
  };
}

/** The envelope of a stopped task; one that cannot be read cannot be followed up, and Lambda retries. */
async function stoppedEnvelope(
  value: string,
  taskArn: string | undefined,
  s3: () => Promise<S3Client>,
): Promise<Envelope> {
  try {
    return await envelopeOf(value, s3);
  } catch (error) {
    throw new RelaunchError(
      `the envelope of stopped task ${taskArn} cannot be read, so its invocation cannot be followed up: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Where the invocation's records are: the bucket and prefix the task was told, else the configured ones. */
function outcomeLocation(
  environment: ReadonlyMap<string, string>,
  config: ResolvedConfig,
  envelope: Envelope,
): OutcomeLocation | undefined {
  const bucket = environment.get(ENV.payloadBucket) ?? config.payloadBucket;
  if (!bucket) return undefined;
  return {
    bucket,
    prefix: environment.get(ENV.outcomePrefix) ?? config.outcomePrefix,
    functionName: envelope.function.name,
    requestId: envelope.invocation.awsRequestId,
  };
}
