import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  cancelMarker,
  createEnvelope,
  DEFAULT_METRICS_NAMESPACE,
  ENV,
  type Envelope,
  emfLine,
  encodeEnvelope,
  envelopeKey,
  formatS3Uri,
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
import {
  DEADLINE_GUARD_MS,
  type Handoff,
  type HandoffDependencies,
  type HandoffMode,
  type HandoffTarget,
} from './target.js';
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
  async handOff(target: HandoffTarget, journal?: Journal, mode: HandoffMode = {}): Promise<HandoffReceipt> {
    const { clock, logger } = this.#deps;
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
      const { envelope, json } = this.#envelope(target, journal, began);
      envelopeBytes = Buffer.byteLength(json, 'utf8');
      const outcomes = { bucket: this.config.payloadBucket, prefix: this.config.outcomePrefix };
      // A standby task is told where to wait for its envelope (or the cancel marker).
      const standby = mode.standby ? this.#resumeUri(envelope.function.name, id) : undefined;
      const extra = [
        ...(standby ? [{ name: ENV.standby, value: standby }] : []),
        ...this.#metricsEnvironment(),
      ];
      let overrides = buildOverrides(this.config.containerName, json, outcomes, extra);
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
        overrides = buildOverrides(this.config.containerName, envelopeLocation, outcomes, extra);
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
        ...(standby ? { standby: true, tokenBase: `${id}-s` } : {}),
        ...(mode.tokenBase ? { tokenBase: mode.tokenBase } : {}),
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
      logger.info(standby ? 'Runner task started in standby' : 'Invocation handed off to Fargate', {
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
        ...(standby ? { standby: true, resumeLocation: standby } : {}),
        ...(mode.tokenBase ? { tokenBase: mode.tokenBase } : {}),
      });
      // A standby start is not a handoff yet: its metrics come when it is told to go.
      if (!standby) {
        this.#handedOffMetric(target, began, confirmed, envelopeBytes, {
          requestId: id,
          taskArn: started.taskArn,
          ...(target.routed ? { routed: true } : {}),
        });
      }
      const recordError = await this.#record(
        receipt,
        envelope.function,
        standby ? 'standby' : 'handed-off',
        guard.signal,
      );
      if (recordError) {
        logger.error(
          `The ${standby ? 'standby' : 'handed-off'} record could not be written; the invocation is handed off`,
          {
            requestId: id,
            taskArn: started.taskArn,
            error: recordError,
          },
        );
      }
      return receipt;
    } catch (caught) {
      const error = asHandoffError(caught, requestId);
      this.#failedMetric(target, began, { requestId, reason: error.reason });
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
  async stopTask(
    taskArn: string,
    target: HandoffTarget,
    why = 'the invocation finished in Lambda while its handoff was in flight',
  ): Promise<boolean> {
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
            reason: `immortal-lambda: ${why}`,
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
   * Records the wrapper's part in the payload bucket: `handed-off` once the task exists, `standby`
   * once a pre-warmed task exists, `not-needed` when it was cancelled. The invocation is handed off
   * (or finished) whatever happens here: a failed write is returned for the log, never thrown.
   */
  async #record(
    receipt: HandoffReceipt,
    fn: { name: string; version: string },
    status: 'handed-off' | 'standby' | 'not-needed',
    signal: AbortSignal,
  ): Promise<Record<string, unknown> | undefined> {
    const bucket = this.config.payloadBucket;
    if (!bucket) return undefined;
    const { requestId, taskArn, handedOffAt } = receipt;
    try {
      await spillEnvelope({
        client: await this.#s3Client(requestId),
        bucket,
        key: outcomeKey(
          this.config.outcomePrefix,
          fn.name,
          requestId,
          status === 'handed-off' ? 'handed-off' : 'standby',
        ),
        body: JSON.stringify(
          outcomeRecord({
            functionName: fn.name,
            functionVersion: fn.version,
            requestId,
            status,
            attempt: 1,
            writer: 'wrapper',
            taskArn,
            updatedAt: status === 'not-needed' ? new Date(this.#deps.clock.now()).toISOString() : handedOffAt,
          }),
        ),
        requestId,
        clock: this.#deps.clock,
        random: this.#deps.random,
        signal,
        what: `the ${status} record`,
      });
      return undefined;
    } catch (error) {
      // What S3 answered, not the wrapping meant for a failed handoff: this one succeeded.
      return describeError(error instanceof HandoffError && error.cause !== undefined ? error.cause : error);
    }
  }

  /**
   * Tells a pre-warmed task to go: writes the envelope, with the journal as it is now, where the
   * task waits. A standby task that is not running any more (it failed to start, or stopped) is
   * replaced by a normal handoff (its client token and `startedBy` are the invocation's own; the
   * standby task's are `<request id>-s` and `…/standby`).
   */
  async resume(standby: HandoffReceipt, target: HandoffTarget, journal?: Journal): Promise<HandoffReceipt> {
    const { clock, logger } = this.#deps;
    const began = clock.now();
    const id = standby.requestId;
    const guard = abortAfter(
      clock,
      this.failAt(target.deadlineAt) - began,
      () =>
        new HandoffError('deadline', 'the handoff did not finish before the deadline guard', {
          requestId: id,
        }),
    );
    try {
      const state = await this.#taskState(standby.taskArn, id, guard.signal);
      if (state !== 'running') {
        logger.info('The standby task is not running; handing off with a task of its own', {
          requestId: id,
          standbyTaskArn: standby.taskArn,
          standbyState: state,
        });
        guard.dispose();
        return this.handOff(target, journal);
      }
      const { envelope, json } = this.#envelope(target, journal, began);
      const location = await spillEnvelope({
        client: await this.#s3Client(id),
        bucket: this.config.payloadBucket as string,
        key: this.#resumeKey(envelope.function.name, id),
        body: json,
        requestId: id,
        clock,
        random: this.#deps.random,
        signal: guard.signal,
      });
      const confirmed = clock.now();
      const receipt: HandoffReceipt = {
        ...standby,
        envelopeLocation: location,
        envelopeBytes: Buffer.byteLength(json, 'utf8'),
        handedOffAt: new Date(confirmed).toISOString(),
      };
      this.#handedOffMetric(target, began, confirmed, receipt.envelopeBytes, {
        requestId: id,
        taskArn: standby.taskArn,
        prewarmed: true,
      });
      logger.info('Invocation handed off to its pre-warmed task', {
        requestId: id,
        functionName: target.context.functionName,
        taskArn: standby.taskArn,
        prewarmed: true,
        ranInLambdaMs: began - target.startedAt,
        elapsedMs: confirmed - began,
        envelopeBytes: receipt.envelopeBytes,
        envelopeLocation: location,
      });
      const recordError = await this.#record(receipt, envelope.function, 'handed-off', guard.signal);
      if (recordError) {
        logger.error('The handed-off record could not be written; the invocation is handed off', {
          requestId: id,
          taskArn: standby.taskArn,
          error: recordError,
        });
      }
      return receipt;
    } catch (caught) {
      const error = asHandoffError(caught, id);
      this.#failedMetric(target, began, { requestId: id, reason: error.reason, prewarmed: true });
      logger.error('Handoff to the pre-warmed task failed', {
        requestId: id,
        taskArn: standby.taskArn,
        reason: error.reason,
        failsAt: new Date(this.failAt(target.deadlineAt)).toISOString(),
        error: describeError(error),
      });
      throw error;
    } finally {
      guard.dispose();
    }
  }

  /**
   * The handler finished in Lambda after its task was pre-warmed: writes the cancel marker where
   * the task waits (it exits 0, not needed, when it reads it), stops the task, and records
   * `not-needed`. Best effort within the deadline guard; never throws.
   */
  async cancel(standby: HandoffReceipt, target: HandoffTarget): Promise<void> {
    const { clock, logger } = this.#deps;
    const id = standby.requestId;
    const guard = abortAfter(
      clock,
      this.failAt(target.deadlineAt) - clock.now(),
      () => new Error('the cancel did not finish before the deadline guard'),
    );
    const fn = { name: target.context.functionName, version: target.context.functionVersion };
    try {
      await spillEnvelope({
        client: await this.#s3Client(id),
        bucket: this.config.payloadBucket as string,
        key: this.#resumeKey(fn.name, id),
        body: JSON.stringify(cancelMarker(id, clock.now())),
        requestId: id,
        clock,
        random: this.#deps.random,
        signal: guard.signal,
        what: 'the cancel marker',
      });
    } catch (error) {
      logger.error('The cancel marker of the standby task could not be written; the task is stopped', {
        requestId: id,
        taskArn: standby.taskArn,
        error: describeError(error),
      });
    } finally {
      guard.dispose();
    }
    await this.stopTask(
      standby.taskArn,
      target,
      'the invocation finished in Lambda before its pre-warmed task was needed',
    );
    const guardRecord = abortAfter(
      clock,
      this.failAt(target.deadlineAt) - clock.now(),
      () => new Error('deadline'),
    );
    try {
      const recordError = await this.#record(standby, fn, 'not-needed', guardRecord.signal);
      if (recordError) {
        logger.error('The not-needed record could not be written', { requestId: id, error: recordError });
      }
    } finally {
      guardRecord.dispose();
    }
  }

  /** The runner's metrics follow the function's settings: passed when they are not the defaults. */
  #metricsEnvironment(): { name: string; value: string }[] {
    const { enabled, namespace, dimensions } = this.config.metrics;
    const pairs = Object.entries(dimensions).map(([name, value]) => `${name}=${value}`);
    return [
      ...(enabled ? [] : [{ name: ENV.metrics, value: 'false' }]),
      ...(namespace !== DEFAULT_METRICS_NAMESPACE ? [{ name: ENV.metricsNamespace, value: namespace }] : []),
      ...(pairs.length > 0 ? [{ name: ENV.metricsDimensions, value: pairs.join(',') }] : []),
    ];
  }

  /** The metrics of a handoff that reached its task: started at `began`, confirmed at `confirmed`. */
  #handedOffMetric(
    target: HandoffTarget,
    began: number,
    confirmed: number,
    envelopeBytes: number,
    properties: Record<string, unknown>,
  ): void {
    this.#metric(
      target.context.functionName,
      {
        Handoffs: { value: 1, unit: 'Count' },
        HandoffLatency: { value: confirmed - began, unit: 'Milliseconds' },
        TimeInLambda: { value: began - target.startedAt, unit: 'Milliseconds' },
        EnvelopeBytes: { value: envelopeBytes, unit: 'Bytes' },
      },
      properties,
    );
  }

  /** The metrics of a handoff that failed. */
  #failedMetric(target: HandoffTarget, began: number, properties: Record<string, unknown>): void {
    this.#metric(
      target.context.functionName,
      {
        HandoffFailures: { value: 1, unit: 'Count' },
        TimeInLambda: { value: began - target.startedAt, unit: 'Milliseconds' },
      },
      properties,
    );
  }

  /** One EMF line of this handoff, unless metrics are off; a writer that throws costs nothing. */
  #metric(
    functionName: string,
    metrics: Parameters<typeof emfLine>[0]['metrics'],
    properties: Record<string, unknown>,
  ): void {
    const settings = this.config.metrics;
    if (!settings.enabled) return;
    try {
      this.#deps.writeMetric(
        emfLine({
          namespace: settings.namespace,
          dimensions: { FunctionName: String(functionName), ...settings.dimensions },
          metrics,
          properties,
          timestamp: this.#deps.clock.now(),
        }),
      );
    } catch {
      // Metrics never change how a handoff ends.
    }
  }

  /** Whether a task still runs (or is starting), from DescribeTasks. */
  async #taskState(taskArn: string, requestId: string, signal: AbortSignal): Promise<'running' | string> {
    const { DescribeTasksCommand } = await loadEcs();
    const client = await this.#ecsClient(requestId);
    const answer = await bounded(
      client.send(new DescribeTasksCommand({ cluster: this.config.cluster, tasks: [taskArn] }), {
        abortSignal: signal,
      }),
      signal,
    );
    const task = answer.tasks?.[0];
    if (!task) return 'missing';
    if (task.lastStatus === 'STOPPED' || task.desiredStatus === 'STOPPED') {
      return `stopped (${task.stopCode ?? 'no stop code'}${task.stoppedReason ? `: ${task.stoppedReason}` : ''})`;
    }
    return 'running';
  }

  #resumeKey(functionName: string, requestId: string): string {
    return outcomeKey(this.config.outcomePrefix, functionName, requestId, 'resume');
  }

  #resumeUri(functionName: string, requestId: string): string {
    return formatS3Uri({
      bucket: this.config.payloadBucket as string,
      key: this.#resumeKey(functionName, requestId),
    });
  }

  /** The envelope of the invocation as of now, with its journal, and its JSON. */
  #envelope(
    target: HandoffTarget,
    journal: Journal | undefined,
    began: number,
  ): { envelope: Envelope; json: string } {
    const { context } = target;
    const envelope = createEnvelope({
      event: target.event,
      context,
      env: target.env ?? this.#deps.env,
      journal,
      startedAt: target.startedAt,
      deadlineAt: target.deadlineAt,
      handedOffAt: began,
    });
    try {
      return { envelope, json: encodeEnvelope(envelope) };
    } catch (error) {
      const invalidField = error instanceof EnvelopeError && error.problems.length > 0;
      throw new HandoffError(
        invalidField ? 'invalid-context' : 'unserializable-event',
        error instanceof EnvelopeError
          ? `${invalidField ? 'the invocation cannot be handed off: ' : ''}${error.message}`
          : `the envelope cannot be built: ${String(error)}`,
        { requestId: context.awsRequestId, cause: error },
      );
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

/** A failure of the handoff as the {@link HandoffError} it is, or wrapped in one. */
function asHandoffError(caught: unknown, requestId: string | undefined): HandoffError {
  if (caught instanceof HandoffError) return caught;
  return new HandoffError(
    'deadline',
    `the handoff failed: ${caught instanceof Error ? caught.message : String(caught)}`,
    { requestId, cause: caught },
  );
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
