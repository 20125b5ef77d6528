import type { ECSClient, TaskOverride } from '@aws-sdk/client-ecs';
import type { ResolvedConfig } from '../config.js';
import type { Clock } from '../types.js';
import type { CapacityProvider } from './input.js';

export interface StartTaskParams {
  config: ResolvedConfig;
  client: ECSClient;
  requestId: string;
  functionName: string;
  functionVersion: string;
  overrides: TaskOverride;
  clock: Clock;
  random: () => number;
  /** Aborts at the hard deadline; every call and every wait ends with it. */
  signal: AbortSignal;
  /** How long one RunTask call may take before it is abandoned and retried. */
  attemptTimeoutMs?: number;
  /**
   * What the client tokens are made from, when not the request id: a relaunch is a new attempt
   * at the same invocation and needs tokens of its own (`<request id>-a<attempt>`).
   */
  tokenBase?: string;
  /** A pre-warmed task (see {@link buildRunTaskInput}'s `standby`). */
  standby?: boolean;
  /**
   * How long until `signal` aborts. When given, the attempts stop a little earlier, so that an
   * attempt whose answer never came can be checked (did it start a task?) before the deadline.
   */
  budgetMs?: number;
  /**
   * End the attempts with {@link LaunchLimited} as soon as RunTask is throttled (Fargate's launch
   * rate, the RunTask rate) or no placement has capacity, or when the attempts run out of time
   * with calls unanswered, while only the invocation's own token was used: the handoff then
   * queues the launch instead of waiting or failing.
   */
  queueWhenLimited?: boolean;
  /** The backoff between retries (default 100 ms doubling to 2 s, full jitter). */
  backoff?: { baseMs: number; capMs: number };
}

export interface StartedTask {
  taskArn: string;
  capacityProvider: CapacityProvider;
  attempts: number;
  /** True when the task had been started by an earlier attempt of the same invocation. */
  reused: boolean;
  /** A task this handoff started and stopped again because an earlier one of the same invocation exists. */
  stoppedDuplicate?: string;
  /** Why looking for an earlier task failed, when it did: the handoff went on without knowing. */
  lookupError?: string;
  /** True when the task was found after the attempts ran out with an attempt unanswered. */
  reconciled?: boolean;
}
