import type { Envelope } from '@immortal-lambda/protocol';
import type { ResolvedConfig } from '../config.js';
import { HandoffError } from '../errors.js';
import { describeError } from '../logger.js';
import { LaunchLimited, runTaskAttempts } from '../run-task/attempt-plan.js';
import { startTask } from '../run-task/start-task.js';
import type { StartedTask } from '../run-task/types.js';
import type { HandoffDependencies, HandoffMode, HandoffTarget } from '../target.js';
import type { HandoffClients } from './clients.js';
import { type QueuedMessage, queuedLaunch, sendToLaunchQueue } from './launch-queue.js';
import type { Placement } from './placement.js';

/** What starting a handoff's task needs: the invocation, its envelope and where it travels, how. */
export interface StartRequest {
  target: HandoffTarget;
  envelope: Envelope;
  envelopeBytes: number;
  placement: Placement;
  mode: HandoffMode;
  /** A standby task's resume location; undefined for a handoff. */
  standby: string | undefined;
  signal: AbortSignal;
}

/** A handoff's task: started now, or its start queued on the launch queue. */
export type TaskStart = StartedTask | { queued: QueuedMessage; attempts: number };

/**
 * Starts the runner task of a handoff: RunTask until the task exists, or, with a launch queue,
 * the start queued when RunTask meets the launch rate or finds no capacity.
 */
export class TaskStarter {
  readonly #config: ResolvedConfig;
  readonly #deps: HandoffDependencies;
  readonly #clients: HandoffClients;
  readonly #failAt: (deadlineAt: number) => number;

  constructor(
    config: ResolvedConfig,
    deps: HandoffDependencies,
    clients: HandoffClients,
    failAt: (deadlineAt: number) => number,
  ) {
    this.#config = config;
    this.#deps = deps;
    this.#clients = clients;
    this.#failAt = failAt;
  }

  /**
   * RunTask until the task exists, within the time left before the deadline guard; with a launch
   * queue, a RunTask throttled or without capacity queues the start instead (a standby task is
   * never queued: it is only worth starting now). A launch that cannot be queued goes back to
   * RunTask, as without a queue.
   */
  async start(request: StartRequest): Promise<TaskStart> {
    const queueUrl = request.standby ? undefined : this.#config.launchQueue;
    try {
      return await this.#runTask(request, queueUrl !== undefined);
    } catch (error) {
      if (!(error instanceof LaunchLimited) || queueUrl === undefined) throw error;
      try {
        return { queued: await this.#sendLaunch(request, queueUrl), attempts: error.attempts };
      } catch (queueError) {
        const requestId = request.target.context.awsRequestId;
        const unqueued = { requestId, limited: error, queueError };
        if (request.signal.aborted) throw unqueuedError(unqueued);
        this.#deps.logger.error('The launch could not be queued; the handoff keeps trying RunTask', {
          requestId,
          launchQueue: queueUrl,
          error: describeError(queueError),
        });
        try {
          return await this.#runTask(request, false);
        } catch (runTaskError) {
          if (!(runTaskError instanceof HandoffError)) throw runTaskError;
          throw unqueuedError({ ...unqueued, after: runTaskError });
        }
      }
    }
  }

  /** Sends the launch to the launch queue (see {@link sendToLaunchQueue}). */
  #sendLaunch({ target, envelope, placement, envelopeBytes, signal }: StartRequest, queueUrl: string) {
    const id = target.context.awsRequestId;
    return sendToLaunchQueue({
      queueUrl,
      launch: queuedLaunch({
        config: this.#config,
        requestId: id,
        fn: envelope.function,
        overrides: placement.overrides,
        envelopeLocation: placement.envelopeLocation,
        envelopeBytes,
        handoffAt: target.handOffAt,
        queuedAt: this.#deps.clock.now(),
      }),
      sqs: () => this.#clients.sqs(id),
      clock: this.#deps.clock,
      random: this.#deps.random,
      signal,
    });
  }

  /** The RunTask attempts (see {@link startTask}). */
  async #runTask(request: StartRequest, queueWhenLimited: boolean): Promise<StartedTask> {
    const { target, envelope, placement, mode, standby, signal } = request;
    const id = target.context.awsRequestId;
    const client = await this.#clients.ecs(id);
    // The record's S3 client loads while RunTask is in flight, not after it answered.
    if (this.#config.payloadBucket) this.#clients.s3(id).catch(() => undefined);
    return startTask({
      queueWhenLimited,
      config: this.#config,
      client,
      requestId: id,
      functionName: target.context.functionName,
      functionVersion: envelope.function.version,
      overrides: placement.overrides,
      clock: this.#deps.clock,
      random: this.#deps.random,
      signal,
      budgetMs: this.#failAt(target.deadlineAt) - this.#deps.clock.now(),
      ...(standby ? { standby: true, tokenBase: `${id}-s` } : {}),
      ...(mode.tokenBase ? { tokenBase: mode.tokenBase } : {}),
    });
  }
}

/**
 * The handoff's error when its start could be neither queued nor started: what RunTask met
 * first, why the launch queue did not take the start, and what the RunTask attempts made after
 * it met (`after`; none when the queue's failure left no time for them).
 */
function unqueuedError(input: {
  requestId: string;
  limited: LaunchLimited;
  queueError: unknown;
  after?: HandoffError;
}): HandoffError {
  const { requestId, limited, after } = input;
  // The queue's error names the queue (see `sendToLaunchQueue`).
  const queue = input.queueError instanceof Error ? input.queueError.message : String(input.queueError);
  const first = `${limited.message} after ${runTaskAttempts(limited.attempts)}, and ${queue}`;
  if (!after)
    return new HandoffError(
      'deadline',
      `${first}; no time was left to try RunTask again before the deadline`,
      {
        requestId,
        attempts: limited.attempts,
        cause: input.queueError,
      },
    );
  return new HandoffError(after.reason, `${after.message}; before those attempts, ${first}`, {
    requestId,
    attempts: limited.attempts + after.attempts,
    cause: after,
  });
}
