import type { S3Client } from '@aws-sdk/client-s3';
import { ENV, type Journal, OWN_STOP_PREFIX } from '@immortal-lambda/protocol';
import type { Context } from 'aws-lambda';
import type { HeldKind, ScreenedBatch } from './batches.js';
import type { ResolvedConfig } from './config.js';
import { HandoffClients } from './handoff/clients.js';
import { buildEnvelope, requireInvocationContext } from './handoff/envelope.js';
import { deadlineGuard, recordGuard } from './handoff/guard.js';
import type { QueuedMessage } from './handoff/launch-queue.js';
import { HandoffLog } from './handoff/log-lines.js';
import { HandoffMetrics, metricsEnvironment } from './handoff/metrics.js';
import { type Placement, placeEnvelope } from './handoff/placement.js';
import {
  launchedTask,
  recordFinishedInLambda,
  type WrapperStatus,
  writeWrapperRecord,
} from './handoff/records.js';
import { type HeldBatch, heldBatchOf, holdForRunner } from './handoff/sqs-hold.js';
import {
  cancelStandby,
  claimForLambda,
  resumeStandby,
  resumeUri,
  type StandbyParts,
} from './handoff/standby.js';
import { TaskStarter } from './handoff/start.js';
import type { BatchLookup } from './holder.js';
import { describeError, isolatedLogger } from './logger.js';
import { bounded } from './retry.js';
import type { StartedTask } from './run-task/types.js';
import { loadEcs } from './sdk.js';
import { screenRedeliveries } from './sqs-redelivery.js';
import { screenStreamRetry } from './stream-retry.js';
import {
  DEADLINE_GUARD_MS,
  type Handoff,
  type HandoffDependencies,
  type HandoffMode,
  type HandoffTarget,
} from './target.js';
import type { HandoffAnswer, HandoffReceipt, QueuedReceipt } from './types.js';

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
  readonly #starter: TaskStarter;
  readonly #log: HandoffLog;
  /** What a look-up of a held batch uses (see {@link FargateHandoff.screen}). */
  readonly #lookup: BatchLookup;

  constructor(config: ResolvedConfig, deps: HandoffDependencies) {
    this.config = config;
    this.#deps = deps;
    this.#clients = new HandoffClients(deps.ecsClient, deps.s3Client, deps.sqsClient);
    this.#lookup = { config, clock: deps.clock, logger: isolatedLogger(deps.logger), clients: this.#clients };
    this.#metrics = new HandoffMetrics(config, deps);
    this.#starter = new TaskStarter(config, deps, this.#clients, (at) => this.failAt(at));
    this.#log = new HandoffLog(config, deps, this.#metrics, (at) => this.failAt(at));
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
      hold: (target, receipt, held) => this.hold(target, receipt, held),
    };
  }

  /** Looks up a batch another invocation may hold, with this handoff's clients (see `batches.ts`). */
  screen(
    kind: HeldKind,
    event: unknown,
    context: Context,
    remainingMs: number,
  ): Promise<ScreenedBatch | undefined> {
    return kind === 'sqs'
      ? screenRedeliveries(this.#lookup, event, context)
      : screenStreamRetry(this.#lookup, event, context, remainingMs);
  }

  /** The last moment at which a failed invocation can still be reported: the deadline less the guard. */
  failAt(deadlineAt: number): number {
    return deadlineAt - DEADLINE_GUARD_MS;
  }

  readonly warmUp = (): Promise<void> => this.#clients.warmUp(this.config);

  /**
   * Starts the runner task for the invocation, with the journal of what the handler has done so far
   * (its finished steps, its checkpoint): envelope → placement → start task → record → receipt.
   * Resolves once the task exists; throws {@link HandoffError}.
   */
  async handOff(target: HandoffTarget, journal?: Journal, mode: HandoffMode = {}): Promise<HandoffAnswer> {
    const { clock } = this.#deps;
    const began = clock.now();
    const requestId =
      typeof target.context.awsRequestId === 'string' ? target.context.awsRequestId : undefined;
    const guard = deadlineGuard(clock, this.failAt(target.deadlineAt), requestId);
    const progress = { envelopeBytes: 0, envelopeLocation: 'inline', attempts: 0 };
    try {
      requireInvocationContext(target.context, requestId);
      const id = target.context.awsRequestId;
      // A standby task holds nothing yet: the batch is held when the task is told to go.
      const held = mode.standby ? undefined : heldBatchOf(this.config, target.event);
      const { envelope, json } = buildEnvelope(target, journal, began, this.#deps.env, held?.kind);
      progress.envelopeBytes = Buffer.byteLength(json, 'utf8');
      // A standby task is told where to wait for its envelope (or the cancel marker).
      const standby = mode.standby ? resumeUri(this.config, envelope.function.name, id) : undefined;
      const placement = await this.#place(target, json, standby, guard.signal);
      progress.envelopeLocation = placement.envelopeLocation;
      const started = await this.#starter.start({
        target,
        envelope,
        envelopeBytes: progress.envelopeBytes,
        placement,
        mode,
        standby,
        signal: guard.signal,
      });
      if ('queued' in started) {
        const receipt = await this.hold(target, this.#queuedReceipt(target, started.queued, progress), held);
        this.#log.queued(target, began, receipt, started.attempts);
        await this.#recordHandoff(receipt, envelope.function, 'queued', target.deadlineAt);
        return receipt;
      }
      progress.attempts = started.attempts;
      const confirmed = clock.now();
      const receipt = await this.hold(
        target,
        this.#receipt(id, started, placement, progress.envelopeBytes, confirmed),
        held,
      );
      this.#log.handedOff(target, began, confirmed, receipt, started, mode, standby);
      await this.#recordHandoff(
        receipt,
        envelope.function,
        standby ? 'standby' : 'handed-off',
        target.deadlineAt,
      );
      return receipt;
    } catch (caught) {
      throw this.#log.failed(caught, target, began, requestId, progress);
    } finally {
      guard.dispose();
    }
  }

  /** Holds the invocation's batch for its runner (see `handoff/sqs-hold.ts`); never throws. */
  hold<T extends HandoffAnswer>(target: HandoffTarget, receipt: T, held: HeldBatch | undefined): Promise<T> {
    return holdForRunner(
      { config: this.config, deps: this.#deps, clients: this.#clients },
      target,
      receipt,
      held,
    );
  }

  #queuedReceipt(
    target: HandoffTarget,
    queued: QueuedMessage,
    progress: { envelopeBytes: number; envelopeLocation: string },
  ): QueuedReceipt {
    return {
      status: 'queued',
      requestId: target.context.awsRequestId,
      cluster: this.config.cluster,
      launchQueue: queued.launchQueue,
      messageId: queued.messageId,
      envelopeLocation: progress.envelopeLocation,
      envelopeBytes: progress.envelopeBytes,
      queuedAt: queued.queuedAt,
    };
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

  /**
   * Records the handoff, until the deadline guard at the latest (see {@link recordGuard}): the
   * receipt must reach Lambda before its deadline. A record that cannot be written by then is
   * logged, and the invocation is handed off.
   */
  async #recordHandoff(
    receipt: HandoffAnswer,
    fn: { name: string; version: string },
    status: 'handed-off' | 'queued' | 'standby',
    deadlineAt: number,
  ): Promise<void> {
    const guard = recordGuard(this.#deps.clock, deadlineAt);
    const recordError = await this.#record(receipt, fn, status, guard.signal).finally(guard.dispose);
    if (!recordError) return;
    this.#deps.logger.error(`The ${status} record could not be written; the invocation is handed off`, {
      requestId: receipt.requestId,
      ...(receipt.status === 'handed-off'
        ? { taskArn: receipt.taskArn }
        : { launchQueue: receipt.launchQueue }),
      error: recordError,
    });
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

  /**
   * The invocation finished in Lambda while its handoff was in flight: a started task is stopped;
   * a queued launch is recorded `not-needed`, which the launcher checks before it starts the task,
   * and a task the launcher had started already is stopped too. Best effort; never throws.
   */
  async withdraw(answer: HandoffAnswer, target: HandoffTarget): Promise<boolean> {
    if (answer.status === 'handed-off') return this.stopTask(answer.taskArn, target);
    const guard = deadlineGuard(this.#deps.clock, this.failAt(target.deadlineAt), answer.requestId);
    try {
      await recordFinishedInLambda({
        config: this.config,
        deps: this.#deps,
        s3: (id) => this.#clients.s3(id),
        taskArn: undefined,
        context: target.context,
        signal: guard.signal,
      });
      const launched = await launchedTask({
        config: this.config,
        s3: await this.#clients.s3(answer.requestId),
        functionName: target.context.functionName,
        requestId: answer.requestId,
        signal: guard.signal,
      }).catch(() => undefined);
      this.#deps.logger.info(
        'Invocation finished in Lambda during its handoff; its queued launch was withdrawn',
        {
          requestId: answer.requestId,
          ...(launched ? { taskArn: launched } : {}),
        },
      );
      return launched ? await this.stopTask(launched, target, undefined, false) : true;
    } finally {
      guard.dispose();
    }
  }

  /** Tells a pre-warmed task to go (see {@link resumeStandby}). */
  resume(standby: HandoffReceipt, target: HandoffTarget, journal?: Journal): Promise<HandoffAnswer> {
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
    receipt: HandoffAnswer,
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
