import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Journal } from '@immortal-lambda/protocol/basics';
import type { Context } from 'aws-lambda';
import type { HeldKind, ScreenedBatch } from './batches.js';
import type { Clock, FallbackLogger, HandoffAnswer, HandoffReceipt } from './types.js';

/**
 * How long before the hard deadline every AWS call is abandoned, so that a failed handoff can
 * still be reported as an error that Lambda records, rather than as a timeout.
 *
 * @example
 * ```ts
 * import { DEADLINE_GUARD_MS } from '@immortal-lambda/middleware';
 * const failsAt = deadline - DEADLINE_GUARD_MS; // when a HandoffError is thrown at the latest
 * ```
 */
export const DEADLINE_GUARD_MS = 500;

/** The invocation to hand off. */
export interface HandoffTarget {
  event: unknown;
  context: Context;
  /** When the invocation started, epoch ms. */
  startedAt: number;
  /** When Lambda would time the invocation out, epoch ms. */
  deadlineAt: number;
  /** When the handoff starts: the deadline less the margin, or earlier with `maxInLambdaMs`. */
  handOffAt: number;
  /** The remaining time was already below the margin when the invocation started. */
  immediate: boolean;
  /** `routeToFargate` sent the invocation to Fargate before the handler ran. */
  routed?: boolean;
  /**
   * The Lambda environment the envelope is built from, when it is not this process's: the safety
   * net starts another function's invocation (its version, no handler of its own).
   */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface HandoffDependencies {
  env: Readonly<Record<string, string | undefined>>;
  clock: Clock;
  random: () => number;
  logger: FallbackLogger;
  ecsClient?: ECSClient | undefined;
  s3Client?: S3Client | undefined;
  sqsClient?: SQSClient | undefined;
  /** Where the EMF metric lines go. */
  writeMetric: (line: string) => void;
}

/** How a task is started: in standby (pre-warmed), or with client tokens of its own. */
export interface HandoffMode {
  /** Start the task in standby: it prepares, then waits for its envelope at its resume location. */
  standby?: boolean;
  /** What the client tokens are made from, when not the request id. */
  tokenBase?: string;
}

/**
 * What the adapters ask of the handoff mechanism. The wrapper's core loads the mechanism itself
 * (envelope, S3, RunTask: most of the package) on the first handoff only.
 */
export interface Handoff {
  /**
   * Starts the runner task; resolves once it exists, rejects with a `HandoffError`. In standby
   * mode the task waits for its envelope at its resume location ({@link Handoff.resume}).
   */
  handOff(target: HandoffTarget, journal?: Journal, mode?: HandoffMode): Promise<HandoffAnswer>;
  /** Tells a standby task to go, with the journal as it is now; a task that stopped is replaced. */
  resume(standby: HandoffReceipt, target: HandoffTarget, journal?: Journal): Promise<HandoffAnswer>;
  /** The handler finished in Lambda: the standby task is told so, stopped, and recorded not needed. */
  cancel(standby: HandoffReceipt, target: HandoffTarget): Promise<void>;
  /**
   * The invocation finished in Lambda while its handoff was in flight: its task is stopped, or its
   * queued launch withdrawn (and the task stopped if the launcher had started it); best effort,
   * never throws.
   */
  withdraw(answer: HandoffAnswer, target: HandoffTarget): Promise<boolean>;
  /**
   * The handler finished in Lambda while its pre-warmed task was told to go: whether Lambda takes
   * the invocation (`true`) or the task had taken it first (`false`). One decision, both legs.
   */
  claimForLambda(standby: HandoffReceipt, target: HandoffTarget): Promise<boolean>;
  /**
   * Looks up a batch another invocation may hold (`kind` from `heldKindOf`): an SQS batch's
   * redelivered messages, a retried stream batch with `ordered`. Undefined: nothing held.
   */
  screen(
    kind: HeldKind,
    event: unknown,
    context: Context,
    remainingMs: number,
  ): Promise<ScreenedBatch | undefined>;
  /** The last moment at which a failed invocation can still be reported: the deadline less the guard. */
  failAt(deadlineAt: number): number;
  /**
   * Loads what a handoff needs (its code, the SDK clients) ahead of it; never throws: what cannot
   * be loaded fails the handoff itself.
   */
  warmUp(): Promise<void>;
}
