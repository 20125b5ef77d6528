import type { ECSClient, TaskOverride } from '@aws-sdk/client-ecs';
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
import { resolveConfig } from '../config.js';
import { RelaunchError } from '../errors.js';
import { describeError, isolatedLogger, jsonLogger } from '../logger.js';
import { type OutcomeLocation, readOutcomes, writeOutcome } from '../outcome-store.js';
import { abortAfter } from '../retry.js';
import { startTask } from '../run-task/start-task.js';
import { BOUNDED_CLIENT, loadEcs, loadS3 } from '../sdk.js';
import type { FallbackLogger, FargateFallbackOptions } from '../types.js';
import { sendFailure } from './destinations.js';
import { classifyStop, runnerOverride, type TaskStateChangeDetail } from './stop.js';

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

/**
 * What the watchdog did with one event.
 *
 * @example
 * ```ts
 * import type { WatchdogOutcome } from '@immortal-lambda/middleware/safety-net';
 * const relaunched = (outcome: WatchdogOutcome) => outcome.action === 'relaunched';
 * ```
 */
export interface WatchdogOutcome {
  action: 'ignored' | 'succeeded' | 'result' | 'relaunched' | 'already-relaunched' | 'gave-up';
  reason: string;
  requestId?: string;
  attempt?: number;
  taskArn?: string | undefined;
}

/**
 * An "ECS Task State Change" event, as EventBridge delivers it.
 *
 * @example
 * ```ts
 * import type { TaskStateChangeEvent } from '@immortal-lambda/middleware/safety-net';
 * const isEcs = (event: TaskStateChangeEvent) => event.source === 'aws.ecs';
 * ```
 */
export interface TaskStateChangeEvent {
  source?: string;
  'detail-type'?: string;
  detail?: TaskStateChangeDetail;
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
    throw new RelaunchError(
      `the resume location ${uri} of a stopped standby task cannot be read: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
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
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
) => Promise<WatchdogOutcome> {
  const env = options.env ?? process.env;
  const logger: FallbackLogger = isolatedLogger(options.logger ?? jsonLogger);
  const clock = options.clock ?? systemClock;
  const config = resolveConfig(options, env);
  const maxAttempts = positiveInteger(
    options.maxAttempts ?? env[ENV.maxAttempts],
    'maxAttempts',
    DEFAULT_MAX_ATTEMPTS,
  );
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

  return async (event, context) => {
    const detail = event?.detail;
    if (event?.source !== 'aws.ecs' || event['detail-type'] !== 'ECS Task State Change' || !detail) {
      return { action: 'ignored', reason: 'not an ECS Task State Change event' };
    }
    const override = runnerOverride(detail);
    if (!override) return { action: 'ignored', reason: `task ${detail.taskArn} carries no ${ENV.envelope}` };
    const verdict = classifyStop(detail);
    if (verdict.kind === 'ignore') return { action: 'ignored', reason: verdict.reason };
    // A pre-warmed task that stopped before it was told to go held nothing yet: at the handoff
    // the wrapper sees it stopped and starts a task of its own. Once told, it is like any other.
    const standby = override.environment.get(ENV.standby);
    if (standby && verdict.kind !== 'success' && !(await toldToGo(standby, s3Client))) {
      return {
        action: 'ignored',
        reason: `a standby task stopped before it was told to go (${verdict.reason}): the wrapper hands off without it`,
      };
    }
    const attempt = positiveInteger(override.environment.get(ENV.attempt), ENV.attempt, 1);
    let envelope: Envelope;
    try {
      envelope = await envelopeOf(override.environment.get(ENV.envelope) ?? '', s3Client);
    } catch (error) {
      throw new RelaunchError(
        `the envelope of stopped task ${detail.taskArn} cannot be read, so its invocation cannot be followed up: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const requestId = envelope.invocation.awsRequestId;
    const ids = { requestId, attempt, taskArn: detail.taskArn };
    const bucket = override.environment.get(ENV.payloadBucket) ?? config.payloadBucket;
    const at: OutcomeLocation | undefined = bucket
      ? {
          bucket,
          prefix: override.environment.get(ENV.outcomePrefix) ?? config.outcomePrefix,
          functionName: envelope.function.name,
          requestId,
        }
      : undefined;
    const records = at ? await readOutcomes(await s3Client(), at) : [];
    const own = records.find((record) => record.writer === 'runner' && record.attempt === attempt);
    if (verdict.kind === 'success' || own?.status === 'succeeded') {
      return { action: 'succeeded', reason: verdict.reason, ...ids };
    }
    // The invocation's end, recorded as failed in `final` and sent to the on-failure destination.
    const fail = async (message: string) => {
      const error = {
        name: 'TaskStopped',
        message,
        retryable: false,
        ...(verdict.exitCode !== undefined ? { exitCode: verdict.exitCode } : {}),
        ...(detail.stopCode ? { stopCode: detail.stopCode } : {}),
      };
      if (at) {
        await writeOutcome(await s3Client(), at, 'final', {
          status: 'failed',
          attempt,
          writer: 'watchdog',
          ...(detail.taskArn ? { taskArn: detail.taskArn } : {}),
          error,
          reason: message,
          updatedAt: new Date(clock.now()).toISOString(),
        });
      }
      await sendFailure({
        envelope,
        error,
        attempt,
        taskArn: detail.taskArn,
        clients: options.destinations,
        now: clock.now(),
        logger,
      });
    };
    if (verdict.kind === 'result' || (own?.status === 'failed' && own.error?.retryable === false)) {
      if (verdict.kind === 'result' && own?.status !== 'failed') {
        // The runner ended without recording why (its image could not run it, or it died before
        // it could write): nothing else will, so the watchdog records the result.
        await fail(verdict.reason);
        logger.error('Invocation failed: its runner task ended without recording a result', {
          ...ids,
          reason: verdict.reason,
        });
        return { action: 'result', reason: verdict.reason, ...ids };
      }
      logger.info("Runner task ended with its invocation's result; not relaunched", {
        ...ids,
        reason: verdict.reason,
      });
      return { action: 'result', reason: verdict.reason, ...ids };
    }
    const later = records.find((record) => record.attempt > attempt);
    if (later) {
      return {
        action: 'already-relaunched',
        reason: `attempt ${later.attempt} exists`,
        ...ids,
        taskArn: later.taskArn,
      };
    }
    if (attempt >= maxAttempts) {
      const message = `the runner task stopped before a result ${attempt} time${attempt === 1 ? '' : 's'}, the last time: ${verdict.reason}`;
      await fail(message);
      logger.error('Invocation failed: its runner task stopped before a result on every attempt', {
        ...ids,
        maxAttempts,
        reason: verdict.reason,
      });
      return { action: 'gave-up', reason: message, ...ids };
    }

    const next = attempt + 1;
    const wait = backoffMs * 2 ** (attempt - 1);
    await new Promise<void>((resolve) => clock.setTimeout(resolve, wait));
    const remaining = context?.getRemainingTimeInMillis?.() ?? 60_000;
    const budget = Math.max(1_000, remaining - 1_000);
    const guard = abortAfter(clock, budget, () => new Error('the watchdog ran out of time to relaunch'));
    const overrides: TaskOverride = {
      containerOverrides: [
        {
          name: override.name ?? config.containerName,
          environment: [
            ...[...override.environment]
              .filter(([name]) => name !== ENV.attempt)
              .map(([name, value]) => ({ name, value })),
            { name: ENV.attempt, value: String(next) },
          ],
        },
      ],
    };
    try {
      const started = await startTask({
        config: { ...config, capacity: verdict.onDemand ? 'FARGATE' : config.capacity },
        client: await ecsClient(),
        requestId,
        functionName: envelope.function.name,
        functionVersion: envelope.function.version,
        overrides,
        clock,
        random: options.random ?? Math.random,
        signal: guard.signal,
        budgetMs: budget,
        tokenBase: `${requestId}-a${next}`,
        runningOnly: true,
        ...(standby ? { standby: true } : {}),
      });
      if (at) {
        await writeOutcome(await s3Client(), at, `relaunch-${next}`, {
          status: 'relaunching',
          attempt: next,
          writer: 'watchdog',
          taskArn: started.taskArn,
          reason: verdict.reason,
          updatedAt: new Date(clock.now()).toISOString(),
        });
      }
      logger.info('Runner task stopped before a result; the invocation was relaunched', {
        ...ids,
        reason: verdict.reason,
        relaunchedAs: started.taskArn,
        nextAttempt: next,
        capacityProvider: started.capacityProvider,
      });
      return {
        action: 'relaunched',
        reason: verdict.reason,
        requestId,
        attempt: next,
        taskArn: started.taskArn,
      };
    } catch (error) {
      logger.error('The invocation could not be relaunched', { ...ids, error: describeError(error) });
      throw new RelaunchError(
        `invocation ${requestId} could not be relaunched (attempt ${next}): ${(error as Error).message}`,
        {
          requestId,
          cause: error,
        },
      );
    } finally {
      guard.dispose();
    }
  };
}
