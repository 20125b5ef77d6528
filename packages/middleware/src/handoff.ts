import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  createEnvelope,
  ENV,
  encodeEnvelope,
  envelopeKey,
  type Journal,
  outcomeKey,
  outcomeRecord,
  RUN_TASK_OVERRIDES_LIMIT,
} from '@immortal-lambda/protocol';
import type { Context } from 'aws-lambda';
import type { ResolvedConfig } from './config.js';
import { EnvelopeError, HandoffError } from './errors.js';
import { describeError } from './logger.js';
import { abortAfter, bounded } from './retry.js';
import { buildOverrides, overridesSize, startTask } from './run-task.js';
import { loadEcs, loadS3 } from './sdk.js';
import { spillEnvelope } from './spill.js';
import { DEADLINE_GUARD_MS, type Handoff, type HandoffDependencies, type HandoffTarget } from './target.js';
import type { HandoffReceipt } from './types.js';

/**
 * The one handoff mechanism behind both the wrapper and the middy middleware: builds the
 * envelope, spills it to S3 when the override would be too large, starts the runner task, and
 * logs one record of the outcome.
 */
export class FargateHandoff implements Handoff {
  readonly config: ResolvedConfig;
  readonly #deps: HandoffDependencies;
  #ecs: ECSClient | undefined;
  #s3: S3Client | undefined;

  constructor(config: ResolvedConfig, deps: HandoffDependencies) {
    this.config = config;
    this.#deps = deps;
    this.#ecs = deps.ecsClient;
    this.#s3 = deps.s3Client;
  }

  /** The last moment at which a failed invocation can still be reported: the deadline less the guard. */
  failAt(deadlineAt: number): number {
    return deadlineAt - DEADLINE_GUARD_MS;
  }

  /**
   * Starts the runner task for the invocation, with the journal of what the handler has done so far
   * (its finished steps, its checkpoint). Resolves once the task exists; throws {@link HandoffError}.
   */
  async handOff(target: HandoffTarget, journal?: Journal): Promise<HandoffReceipt> {
    const { clock, logger, env } = this.#deps;
    const { context } = target;
    const began = clock.now();
    const requestId = typeof context.awsRequestId === 'string' ? context.awsRequestId : undefined;
    const base = {
      requestId,
      functionName: context.functionName,
      marginMs: this.config.marginMs,
      ranInLambdaMs: began - target.startedAt,
      remainingMs: target.deadlineAt - began,
      ...(target.routed
        ? { routed: true, note: 'routeToFargate sent the invocation to Fargate before the handler ran' }
        : target.immediate
          ? {
              immediate: true,
              note: `the margin (${this.config.marginMs} ms) left no time to run: the invocation started with ${
                target.deadlineAt - target.startedAt
              } ms remaining, so it was handed off at once`,
            }
          : {}),
    };
    const guard = abortAfter(
      clock,
      this.failAt(target.deadlineAt) - began,
      () =>
        new HandoffError('deadline', 'the handoff did not finish before the deadline guard', { requestId }),
    );
    let envelopeBytes = 0;
    let envelopeLocation = 'inline';
    let attempts = 0;
    try {
      const invalid = contextProblem(context);
      if (invalid !== undefined) throw new HandoffError('invalid-context', invalid, { requestId });
      const id = context.awsRequestId;
      const envelope = createEnvelope({
        event: target.event,
        context,
        env: target.env ?? env,
        journal,
        startedAt: target.startedAt,
        deadlineAt: target.deadlineAt,
        handedOffAt: began,
      });
      let json: string;
      try {
        json = encodeEnvelope(envelope);
      } catch (error) {
        const invalidField = error instanceof EnvelopeError && error.problems.length > 0;
        throw new HandoffError(
          invalidField ? 'invalid-context' : 'unserializable-event',
          error instanceof EnvelopeError
            ? `${invalidField ? 'the invocation cannot be handed off: ' : ''}${error.message}`
            : `the envelope cannot be built: ${String(error)}`,
          { requestId: id, cause: error },
        );
      }
      envelopeBytes = Buffer.byteLength(json, 'utf8');
      const outcomes = { bucket: this.config.payloadBucket, prefix: this.config.outcomePrefix };
      let overrides = buildOverrides(this.config.containerName, json, outcomes);
      const size = overridesSize(overrides);
      // With the s3 transport the event never travels in the override (DescribeTasks shows that).
      if (this.config.envelopeTransport === 's3' || size > RUN_TASK_OVERRIDES_LIMIT) {
        const bucket = this.config.payloadBucket;
        if (bucket === undefined) {
          throw new HandoffError(
            'payload-too-large',
            `the envelope makes RunTask's overrides ${size} characters, over ECS's limit of ${RUN_TASK_OVERRIDES_LIMIT}; set ${ENV.payloadBucket} (or the payloadBucket option) to an S3 bucket the function may write to, so large envelopes travel through S3`,
            { requestId: id },
          );
        }
        envelopeLocation = await spillEnvelope({
          client: await this.#s3Client(id),
          bucket,
          key: envelopeKey(this.config.payloadPrefix, context.functionName, id),
          body: json,
          requestId: id,
          clock,
          random: this.#deps.random,
          signal: guard.signal,
        });
        overrides = buildOverrides(this.config.containerName, envelopeLocation, outcomes);
      }
      const started = await startTask({
        config: this.config,
        client: await this.#ecsClient(id),
        requestId: id,
        functionName: context.functionName,
        functionVersion: envelope.function.version,
        overrides,
        clock,
        random: this.#deps.random,
        signal: guard.signal,
        budgetMs: this.failAt(target.deadlineAt) - clock.now(),
      });
      attempts = started.attempts;
      const confirmed = clock.now();
      const receipt: HandoffReceipt = {
        status: 'handed-off',
        requestId: id,
        taskArn: started.taskArn,
        cluster: this.config.cluster,
        capacityProvider: started.capacityProvider,
        envelopeLocation,
        envelopeBytes,
        handedOffAt: new Date(confirmed).toISOString(),
      };
      logger.info('Invocation handed off to Fargate', {
        ...base,
        taskArn: started.taskArn,
        cluster: this.config.cluster,
        capacityProvider: started.capacityProvider,
        elapsedMs: confirmed - began,
        envelopeBytes,
        envelopeLocation,
        attempts,
        retries: attempts - 1,
        ...(started.reused ? { reusedTask: true } : {}),
        ...(started.stoppedDuplicate ? { stoppedDuplicate: started.stoppedDuplicate } : {}),
        ...(started.lookupError ? { lookupError: started.lookupError } : {}),
        ...(started.reconciled ? { reconciled: true } : {}),
      });
      const recordError = await this.#recordHandedOff(receipt, envelope.function, guard.signal);
      if (recordError) {
        logger.error('The handed-off record could not be written; the invocation is handed off', {
          requestId: id,
          taskArn: started.taskArn,
          error: recordError,
        });
      }
      return receipt;
    } catch (caught) {
      const error =
        caught instanceof HandoffError
          ? caught
          : new HandoffError(
              'deadline',
              `the handoff failed: ${caught instanceof Error ? caught.message : String(caught)}`,
              {
                requestId,
                cause: caught,
              },
            );
      logger.error('Handoff to Fargate failed', {
        ...base,
        reason: error.reason,
        elapsedMs: clock.now() - began,
        envelopeBytes,
        envelopeLocation,
        attempts: error.attempts || attempts,
        failsAt: new Date(this.failAt(target.deadlineAt)).toISOString(),
        error: describeError(error),
      });
      throw error;
    } finally {
      guard.dispose();
    }
  }

  /**
   * Stops a task that is no longer needed because the invocation finished in Lambda while its
   * handoff was in flight. Best effort, bounded by the deadline guard; never throws.
   */
  async stopTask(taskArn: string, target: HandoffTarget): Promise<boolean> {
    const { clock, logger } = this.#deps;
    const guard = abortAfter(
      clock,
      this.failAt(target.deadlineAt) - clock.now(),
      () => new Error('StopTask did not finish before the deadline guard'),
    );
    try {
      const { StopTaskCommand } = await loadEcs();
      const client = await this.#ecsClient(target.context.awsRequestId);
      await bounded(
        client.send(
          new StopTaskCommand({
            cluster: this.config.cluster,
            task: taskArn,
            reason: 'immortal-lambda: the invocation finished in Lambda while its handoff was in flight',
          }),
          { abortSignal: guard.signal },
        ),
        guard.signal,
      );
      logger.info('Invocation finished in Lambda during its handoff; the runner task was stopped', {
        requestId: target.context.awsRequestId,
        taskArn,
      });
      return true;
    } catch (error) {
      logger.error(
        'Invocation finished in Lambda during its handoff, and its runner task could not be stopped',
        {
          requestId: target.context.awsRequestId,
          taskArn,
          error: describeError(error),
        },
      );
      return false;
    } finally {
      guard.dispose();
    }
  }

  /**
   * Records `handed-off` in the payload bucket once the task exists. The invocation is handed off
   * whatever happens here: a failed write is reported in the handoff's log record, not thrown.
   */
  async #recordHandedOff(
    receipt: HandoffReceipt,
    fn: { name: string; version: string },
    signal: AbortSignal,
  ): Promise<Record<string, unknown> | undefined> {
    const bucket = this.config.payloadBucket;
    if (!bucket) return undefined;
    const { requestId, taskArn, handedOffAt } = receipt;
    try {
      await spillEnvelope({
        client: await this.#s3Client(requestId),
        bucket,
        key: outcomeKey(this.config.outcomePrefix, fn.name, requestId, 'handed-off'),
        body: JSON.stringify(
          outcomeRecord({
            functionName: fn.name,
            functionVersion: fn.version,
            requestId,
            status: 'handed-off',
            attempt: 1,
            writer: 'wrapper',
            taskArn,
            updatedAt: handedOffAt,
          }),
        ),
        requestId,
        clock: this.#deps.clock,
        random: this.#deps.random,
        signal,
        what: 'the handed-off record',
      });
      return undefined;
    } catch (error) {
      // What S3 answered, not the wrapping meant for a failed handoff: this one succeeded.
      return describeError(error instanceof HandoffError && error.cause !== undefined ? error.cause : error);
    }
  }

  async #ecsClient(requestId: string): Promise<ECSClient> {
    if (this.#ecs) return this.#ecs;
    const { ECSClient } = await this.#load(loadEcs, '@aws-sdk/client-ecs', requestId);
    this.#ecs = new ECSClient({ maxAttempts: 1 });
    return this.#ecs;
  }

  /** The S3 client of the payload bucket (loaded on first use). */
  s3(requestId: string): Promise<S3Client> {
    return this.#s3Client(requestId);
  }

  async #s3Client(requestId: string): Promise<S3Client> {
    if (this.#s3) return this.#s3;
    const { S3Client } = await this.#load(loadS3, '@aws-sdk/client-s3', requestId);
    this.#s3 = new S3Client({ maxAttempts: 1 });
    return this.#s3;
  }

  async #load<T>(load: () => Promise<T>, name: string, requestId: string): Promise<T> {
    try {
      return await load();
    } catch (error) {
      throw new HandoffError(
        'sdk-unavailable',
        `${name} could not be loaded; install it next to the handler`,
        {
          requestId,
          cause: error,
        },
      );
    }
  }
}

/**
 * Why the context cannot identify the invocation, or undefined. Checked before anything else
 * of the handoff: the request id and the function name make the client token, the task's tags
 * and the envelope's key.
 */
function contextProblem(context: Context): string | undefined {
  const problems: string[] = [];
  for (const key of ['awsRequestId', 'functionName', 'invokedFunctionArn'] as const) {
    const value: unknown = (context as unknown as Record<string, unknown>)[key];
    if (typeof value !== 'string' || value.trim() === '') {
      problems.push(
        `context.${key} is ${value === undefined ? 'missing' : typeof value === 'string' ? 'empty' : `a ${typeof value}`}`,
      );
    }
  }
  if (problems.length === 0) return undefined;
  return `the invocation cannot be handed off: ${problems.join(', ')}; Lambda always sets these, so pass a Lambda-shaped context (test harnesses included)`;
}
