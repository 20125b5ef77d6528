import type { S3Client } from '@aws-sdk/client-s3';
import { ENV, type Envelope, type Journal, OWN_STOP_PREFIX } from '@immortal-lambda/protocol';
import type { ResolvedConfig } from './config.js';
import { HandoffClients } from './handoff/clients.js';
import { asHandoffError, buildEnvelope, requireInvocationContext } from './handoff/envelope.js';
import { deadlineGuard, recordGuard } from './handoff/guard.js';
import { HandoffMetrics, metricsEnvironment } from './handoff/metrics.js';
import { type Placement, placeEnvelope } from './handoff/placement.js';
import { recordFinishedInLambda, type WrapperStatus, writeWrapperRecord } from './handoff/records.js';
import {
  cancelStandby,
  claimForLambda,
  resumeStandby,
  resumeUri,
  type StandbyParts,
} from './handoff/standby.js';
import { describeError } from './logger.js';
import { bounded } from './retry.js';
import { startedByOf } from './run-task/input.js';
import { startTask } from './run-task/start-task.js';
import type { StartedTask } from './run-task/types.js';
import { loadEcs } from './sdk.js';
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
 * envelope, places it (inline, or spilled to S3 when the override would be too large), starts the
 * runner task, records it, and returns the receipt; one log line says how it went. The standby
 * protocol of pre-warmed tasks (resume, cancel) is in `handoff/standby.ts`.
 */
export class FargateHandoff implements Handoff {
  readonly config: ResolvedConfig;
  readonly #deps: HandoffDependencies;
  readonly #clients: HandoffClients;
  readonly #metrics: HandoffMetrics;
  readonly #standby: StandbyParts;

  constructor(config: ResolvedConfig, deps: HandoffDependencies) {
    this.config = config;
    this.#deps = deps;
    this.#clients = new HandoffClients(deps.ecsClient, deps.s3Client);
    this.#metrics = new HandoffMetrics(config, deps);
    this.#standby = {
      config,
      deps,
      clients: this.#clients,
      metrics: this.#metrics,
      failAt: (deadlineAt) => this.failAt(deadlineAt),
      handOff: (target, journal) => this.handOff(target, journal),
      // A cancelled standby's record is the standby's own `not-needed`, written by the cancel.
      stopTask: (taskArn, target, why) => this.stopTask(taskArn, target, why, false),
      record: (receipt, fn, status, signal) => this.#record(receipt, fn, status, signal),
    };
  }

  /** The last moment at which a failed invocation can still be reported: the deadline less the guard. */
  failAt(deadlineAt: number): number {
    return deadlineAt - DEADLINE_GUARD_MS;
  }

  /**
   * Starts the runner task for the invocation, with the journal of what the handler has done so far
   * (its finished steps, its checkpoint): envelope → placement → start task → record → receipt.
   * Resolves once the task exists; throws {@link HandoffError}.
   */
  async handOff(target: HandoffTarget, journal?: Journal, mode: HandoffMode = {}): Promise<HandoffReceipt> {
    const { clock } = this.#deps;
    const began = clock.now();
    const requestId =
      typeof target.context.awsRequestId === 'string' ? target.context.awsRequestId : undefined;
    const guard = deadlineGuard(clock, this.failAt(target.deadlineAt), requestId);
    const progress = { envelopeBytes: 0, envelopeLocation: 'inline', attempts: 0 };
    try {
      requireInvocationContext(target.context, requestId);
      const id = target.context.awsRequestId;
      const { envelope, json } = buildEnvelope(target, journal, began, this.#deps.env);
      progress.envelopeBytes = Buffer.byteLength(json, 'utf8');
      // A standby task is told where to wait for its envelope (or the cancel marker).
      const standby = mode.standby ? resumeUri(this.config, envelope.function.name, id) : undefined;
      const placement = await this.#place(target, json, standby, guard.signal);
      progress.envelopeLocation = placement.envelopeLocation;
      const started = await this.#start(target, envelope, placement, mode, standby, guard.signal);
      progress.attempts = started.attempts;
      const confirmed = clock.now();
      const receipt = this.#receipt(id, started, placement, progress.envelopeBytes, confirmed);
      this.#logHandedOff(target, began, confirmed, receipt, started, mode, standby);
      await this.#recordHandoff(
        receipt,
        envelope.function,
        standby ? 'standby' : 'handed-off',
        target.deadlineAt,
      );
      return receipt;
    } catch (caught) {
      throw this.#failed(caught, target, began, requestId, progress);
    } finally {
      guard.dispose();
    }
  }

  /** The envelope's place: inline, or in the payload bucket (see {@link placeEnvelope}). */
  #place(
    target: HandoffTarget,
    json: string,
    standby: string | undefined,
    signal: AbortSignal,
  ): Promise<Placement> {
    const { context } = target;
    return placeEnvelope({
      config: this.config,
      json,
      functionName: context.functionName,
      requestId: context.awsRequestId,
      extra: [
        ...(standby
          ? [
              { name: ENV.standby, value: standby },
              { name: ENV.standbyGoAt, value: String(target.handOffAt) },
            ]
          : []),
        ...metricsEnvironment(this.config),
      ],
      s3: () => this.#clients.s3(context.awsRequestId),
      clock: this.#deps.clock,
      random: this.#deps.random,
      signal,
    });
  }

  /** RunTask until the task exists, within the time left before the deadline guard. */
  async #start(
    target: HandoffTarget,
    envelope: Envelope,
    placement: Placement,
    mode: HandoffMode,
    standby: string | undefined,
    signal: AbortSignal,
  ): Promise<StartedTask> {
    const id = target.context.awsRequestId;
    const client = await this.#clients.ecs(id);
    // The record's S3 client loads while RunTask is in flight, not after it answered.
    if (this.config.payloadBucket) this.#clients.s3(id).catch(() => undefined);
    return startTask({
      config: this.config,
      client,
      requestId: id,
      functionName: target.context.functionName,
      functionVersion: envelope.function.version,
      overrides: placement.overrides,
      clock: this.#deps.clock,
      random: this.#deps.random,
      signal,
      budgetMs: this.failAt(target.deadlineAt) - this.#deps.clock.now(),
      ...(standby ? { standby: true, tokenBase: `${id}-s` } : {}),
      ...(mode.tokenBase ? { tokenBase: mode.tokenBase } : {}),
    });
  }

  #receipt(
    requestId: string,
    started: StartedTask,
    placement: Placement,
    envelopeBytes: number,
    confirmed: number,
  ): HandoffReceipt {
    return {
      status: 'handed-off',
      requestId,
      taskArn: started.taskArn,
      cluster: this.config.cluster,
      capacityProvider: started.capacityProvider,
      envelopeLocation: placement.envelopeLocation,
      envelopeBytes,
      handedOffAt: new Date(confirmed).toISOString(),
    };
  }

  /** The handoff's log line, and its metrics (a standby start is not a handoff yet: its metrics come when it is told to go). */
  #logHandedOff(
    target: HandoffTarget,
    began: number,
    confirmed: number,
    receipt: HandoffReceipt,
    started: StartedTask,
    mode: HandoffMode,
    standby: string | undefined,
  ): void {
    this.#deps.logger.info(standby ? 'Runner task started in standby' : 'Invocation handed off to Fargate', {
      ...this.#base(target, began),
      taskArn: started.taskArn,
      cluster: this.config.cluster,
      capacityProvider: started.capacityProvider,
      elapsedMs: confirmed - began,
      envelopeBytes: receipt.envelopeBytes,
      envelopeLocation: receipt.envelopeLocation,
      attempts: started.attempts,
      retries: started.attempts - 1,
      ...(started.reused ? { reusedTask: true } : {}),
      ...(started.stoppedDuplicate ? { stoppedDuplicate: started.stoppedDuplicate } : {}),
      ...(started.lookupError ? { lookupError: started.lookupError } : {}),
      ...(started.reconciled ? { reconciled: true } : {}),
      ...(standby ? { standby: true, resumeLocation: standby } : {}),
      ...(mode.tokenBase ? { tokenBase: mode.tokenBase } : {}),
    });
    if (started.lookupError) {
      // The handoff went on (the task matters more), but the guard against a second task of the
      // invocation did not run: said as an error, where alarms look.
      this.#deps.logger.error(
        'The look-up for another task of this invocation failed; the task was started without it',
        {
          requestId: receipt.requestId,
          taskArn: started.taskArn,
          startedBy: startedByOf({ requestId: receipt.requestId, standby: Boolean(standby) }),
          lookupError: started.lookupError,
        },
      );
    }
    if (standby) return;
    this.#metrics.handedOff(target, began, confirmed, receipt.envelopeBytes, {
      requestId: receipt.requestId,
      taskArn: started.taskArn,
      ...(target.routed ? { routed: true } : {}),
    });
  }

  /**
   * Records the handoff: the task exists, so its record may take until shortly before the hard
   * deadline (see {@link recordGuard}), not only until the deadline guard. A record that cannot be
   * written is logged, and the invocation is handed off.
   */
  async #recordHandoff(
    receipt: HandoffReceipt,
    fn: { name: string; version: string },
    status: 'handed-off' | 'standby',
    deadlineAt: number,
  ): Promise<void> {
    const guard = recordGuard(this.#deps.clock, deadlineAt);
    const recordError = await this.#record(receipt, fn, status, guard.signal).finally(guard.dispose);
    if (!recordError) return;
    this.#deps.logger.error(`The ${status} record could not be written; the invocation is handed off`, {
      requestId: receipt.requestId,
      taskArn: receipt.taskArn,
      error: recordError,
    });
  }

  /** A failed handoff: its metric and log line, and the {@link HandoffError} to throw. */
  #failed(
    caught: unknown,
    target: HandoffTarget,
    began: number,
    requestId: string | undefined,
    progress: { envelopeBytes: number; envelopeLocation: string; attempts: number },
  ) {
    const error = asHandoffError(caught, requestId);
    this.#metrics.failed(target, began, { requestId, reason: error.reason });
    this.#deps.logger.error('Handoff to Fargate failed', {
      ...this.#base(target, began),
      reason: error.reason,
      elapsedMs: this.#deps.clock.now() - began,
      envelopeBytes: progress.envelopeBytes,
      envelopeLocation: progress.envelopeLocation,
      attempts: error.attempts || progress.attempts,
      failsAt: new Date(this.failAt(target.deadlineAt)).toISOString(),
      error: describeError(error),
    });
    return error;
  }

  /** What every log line of a handoff says: whose, how long it ran in Lambda, and why now. */
  #base(target: HandoffTarget, began: number): Record<string, unknown> {
    const { context } = target;
    return {
      requestId: typeof context.awsRequestId === 'string' ? context.awsRequestId : undefined,
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
  }

  /**
   * Stops a task that is no longer needed because the invocation finished in Lambda while its
   * handoff was in flight. Best effort, bounded by the deadline guard; never throws.
   */
  async stopTask(
    taskArn: string,
    target: HandoffTarget,
    why = 'the invocation finished in Lambda while its handoff was in flight',
    recordEnd = true,
  ): Promise<boolean> {
    const { clock, logger } = this.#deps;
    const requestId = target.context.awsRequestId;
    const guard = deadlineGuard(
      clock,
      this.failAt(target.deadlineAt),
      requestId,
      () => new Error('StopTask did not finish before the deadline guard'),
    );
    try {
      const { StopTaskCommand } = await loadEcs();
      const client = await this.#clients.ecs(requestId);
      await bounded(
        client.send(
          new StopTaskCommand({
            cluster: this.config.cluster,
            task: taskArn,
            reason: `${OWN_STOP_PREFIX}${why}`,
          }),
          { abortSignal: guard.signal },
        ),
        guard.signal,
      );
      logger.info('Invocation finished in Lambda during its handoff; the runner task was stopped', {
        requestId,
        taskArn,
      });
      if (recordEnd)
        await recordFinishedInLambda({
          config: this.config,
          deps: this.#deps,
          s3: (id) => this.#clients.s3(id),
          taskArn,
          context: target.context,
          signal: guard.signal,
        });
      return true;
    } catch (error) {
      logger.error(
        'Invocation finished in Lambda during its handoff, and its runner task could not be stopped',
        {
          requestId,
          taskArn,
          error: describeError(error),
        },
      );
      return false;
    } finally {
      guard.dispose();
    }
  }

  /** Tells a pre-warmed task to go (see {@link resumeStandby}). */
  resume(standby: HandoffReceipt, target: HandoffTarget, journal?: Journal): Promise<HandoffReceipt> {
    return resumeStandby(this.#standby, standby, target, journal);
  }

  /** Lambda or the pre-warmed task: who takes the invocation (see {@link claimForLambda}). */
  claimForLambda(standby: HandoffReceipt, target: HandoffTarget): Promise<boolean> {
    return claimForLambda(this.#standby, standby, target);
  }

  /** The handler finished in Lambda: the standby task is cancelled (see {@link cancelStandby}). */
  cancel(standby: HandoffReceipt, target: HandoffTarget): Promise<void> {
    return cancelStandby(this.#standby, standby, target);
  }

  /** The S3 client of the payload bucket (loaded on first use). */
  s3(requestId: string): Promise<S3Client> {
    return this.#clients.s3(requestId);
  }

  #record(
    receipt: HandoffReceipt,
    fn: { name: string; version: string },
    status: WrapperStatus,
    signal: AbortSignal,
  ): Promise<Record<string, unknown> | undefined> {
    return writeWrapperRecord({
      config: this.config,
      deps: this.#deps,
      s3: (requestId) => this.#clients.s3(requestId),
      receipt,
      fn,
      status,
      signal,
    });
  }
}
