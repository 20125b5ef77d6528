// The safety net: what follows a handoff (the watchdog) and what catches invocations that failed
// in Lambda anyway (relaunchFailures). Neither is loaded by the main entry.

export { RelaunchError } from '../errors.js';
export { type FailureCause, failureCause, RELAUNCHED_CAUSES } from './failure-cause.js';
export {
  type FailedInvocation,
  failedInvocations,
  type UnreadableItem,
} from './failure-records.js';
export { type LaunchQueuedOptions, launchQueued } from './launch-queued.js';
export {
  type RelaunchFailuresOptions,
  type RelaunchResult,
  relaunchFailures,
} from './relaunch-failures.js';
export { classifyStop, type StopVerdict, type TaskStateChangeDetail } from './stop.js';
export {
  type TaskStateChangeEvent,
  type TaskWatchdogOptions,
  taskWatchdog,
  type WatchdogOutcome,
} from './watchdog.js';
