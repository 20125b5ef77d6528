import type { ResolvedConfig } from '../config.js';
import { describeError } from '../logger.js';
import { startedByOf } from '../run-task/input.js';
import type { StartedTask } from '../run-task/types.js';
import type { HandoffDependencies, HandoffMode, HandoffTarget } from '../target.js';
import type { HandoffReceipt, QueuedReceipt } from '../types.js';
import { asHandoffError } from './envelope.js';
import type { HandoffMetrics } from './metrics.js';

/** What a handoff's log lines and metrics say: handed off, queued, or failed. */
export class HandoffLog {
  readonly #config: ResolvedConfig;
  readonly #deps: HandoffDependencies;
  readonly #metrics: HandoffMetrics;
  readonly #failAt: (deadlineAt: number) => number;

  constructor(
    config: ResolvedConfig,
    deps: HandoffDependencies,
    metrics: HandoffMetrics,
    failAt: (deadlineAt: number) => number,
  ) {
    this.#config = config;
    this.#deps = deps;
    this.#metrics = metrics;
    this.#failAt = failAt;
  }

  /** The handoff's log line, and its metrics (a standby start is not a handoff yet: its metrics come when it is told to go). */
  handedOff(
    target: HandoffTarget,
    began: number,
    confirmed: number,
    receipt: HandoffReceipt,
    started: StartedTask,
    mode: HandoffMode,
    standby: string | undefined,
  ): void {
    this.#deps.logger.info(standby ? 'Runner task started in standby' : 'Invocation handed off to Fargate', {
      ...this.base(target, began),
      taskArn: started.taskArn,
      cluster: this.#config.cluster,
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

  /** A failed handoff: its metric and log line, and the {@link HandoffError} to throw. */
  failed(
    caught: unknown,
    target: HandoffTarget,
    began: number,
    requestId: string | undefined,
    progress: { envelopeBytes: number; envelopeLocation: string; attempts: number },
  ) {
    const error = asHandoffError(caught, requestId);
    this.#metrics.failed(target, began, { requestId, reason: error.reason });
    this.#deps.logger.error('Handoff to Fargate failed', {
      ...this.base(target, began),
      reason: error.reason,
      elapsedMs: this.#deps.clock.now() - began,
      envelopeBytes: progress.envelopeBytes,
      envelopeLocation: progress.envelopeLocation,
      attempts: error.attempts || progress.attempts,
      failsAt: new Date(this.#failAt(target.deadlineAt)).toISOString(),
      error: describeError(error),
    });
    return error;
  }

  /** What every log line of a handoff says: whose, how long it ran in Lambda, and why now. */
  base(target: HandoffTarget, began: number): Record<string, unknown> {
    const { context } = target;
    return {
      requestId: typeof context.awsRequestId === 'string' ? context.awsRequestId : undefined,
      functionName: context.functionName,
      marginMs: this.#config.marginMs,
      ranInLambdaMs: began - target.startedAt,
      remainingMs: target.deadlineAt - began,
      ...(target.routed
        ? { routed: true, note: 'routeToFargate sent the invocation to Fargate before the handler ran' }
        : target.immediate
          ? {
              immediate: true,
              note: `the margin (${this.#config.marginMs} ms) left no time to run: the invocation started with ${
                target.deadlineAt - target.startedAt
              } ms remaining, so it was handed off at once`,
            }
          : {}),
    };
  }

  /** A handoff whose task's start was queued: its log line and metrics. */
  queued(target: HandoffTarget, began: number, receipt: QueuedReceipt, attempts: number): void {
    const confirmed = this.#deps.clock.now();
    this.#deps.logger.info(
      'Invocation queued for Fargate: the launcher starts its task as soon as the launch rate allows',
      {
        ...this.base(target, began),
        launchQueue: receipt.launchQueue,
        messageId: receipt.messageId,
        elapsedMs: confirmed - began,
        attempts,
        envelopeBytes: receipt.envelopeBytes,
        envelopeLocation: receipt.envelopeLocation,
      },
    );
    this.#metrics.handedOff(target, began, confirmed, receipt.envelopeBytes, {
      requestId: receipt.requestId,
      queued: true,
    });
  }
}
