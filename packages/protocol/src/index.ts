export { CLAIM_KIND, type ClaimStore, claimInvocation, isPreconditionFailed, type Leg } from './claim.js';
export {
  CAPACITY_OPTIONS,
  type CapacityOption,
  DEFAULT_CONTAINER_NAME,
  DEFAULT_MARGIN_MS,
  DEFAULT_OUTCOME_PREFIX,
  DEFAULT_PAYLOAD_PREFIX,
  ENVELOPE_TRANSPORTS,
  type EnvelopeTransport,
  MIN_MARGIN_MS,
  OWN_STOP_PREFIX,
  runtimeNodeMajor,
  TASK_TAGS,
} from './defaults.js';
export {
  DestinationError,
  type DestinationKind,
  type DestinationOutcome,
  type DestinationRecord,
  destinationKind,
  destinationRecord,
} from './destination-record.js';
export { DIAGNOSTICS, publishCheckpoint, traceHandler, traceStep } from './diagnostics.js';
export { emfLine, type MetricUnit } from './emf.js';
export {
  createEnvelope,
  ENVELOPE_KIND,
  ENVELOPE_VERSION,
  type Envelope,
  type EnvelopeFunction,
  type EnvelopeInput,
  type EnvelopeInvocation,
  encodeEnvelope,
  handlerProblem,
  parseEnvelope,
  serializeEnvelope,
  validateEnvelope,
} from './envelope.js';
export { EnvelopeError, ERROR_KIND, ImmortalLambdaError } from './errors.js';
export { EXIT_CODES, type ExitCode, isRelaunchable, OUTCOMES } from './exit-codes.js';
export { FARGATE_SIZES, isFargateSize, largerTaskSize } from './fargate-sizes.js';
export { IMAGE_TASK } from './image-task.js';
export {
  GIVEN_JOURNAL,
  type Journal,
  JournalRecorder,
  MAX_JOURNAL_BYTES,
  MAX_JOURNAL_STEPS,
  StepError,
} from './journal.js';
export {
  DEFAULT_METRICS_NAMESPACE,
  type MetricsSettings,
  metricsProblem,
  readMetricsSettings,
} from './metrics.js';
export { ENV, type EnvName } from './names.js';
export {
  CANCEL_KIND,
  cancelMarker,
  type InvocationStatus,
  type InvocationStatusView,
  isCancelMarker,
  OUTCOME_KIND,
  OUTCOME_VERSION,
  type OutcomeError,
  type OutcomeRecord,
  type OutcomeWriter,
  outcomeFolder,
  outcomeKey,
  outcomeRecord,
  parseOutcome,
  RESULT_INLINE_LIMIT,
  type RunnerTimeline,
  summarizeOutcomes,
} from './outcome.js';
export {
  parseQueuedLaunch,
  QUEUED_LAUNCH_KIND,
  QUEUED_LAUNCH_VERSION,
  type QueuedLaunch,
} from './queued-launch.js';
export {
  CLIENT_TOKEN_MAX_LENGTH,
  CLIENT_TOKEN_PATTERN,
  clientToken,
  digest,
  MAX_TASK_TAGS,
  RUN_TASK_OVERRIDES_LIMIT,
  STARTED_BY_PATTERN,
  startedBy,
} from './run-task.js';
export { envelopeKey, formatS3Uri, isS3Uri, parseS3Uri, type S3Location } from './s3-uri.js';
export {
  failedItems,
  HELD_MESSAGE_KIND,
  HELD_MESSAGE_VERSION,
  type HeldMessage,
  HOLD_VISIBILITY_S,
  heldMessageKey,
  MAX_VISIBILITY_S,
  parseHeldMessage,
  queueUrlOf,
  RUNNER_EXTEND_EVERY_MS,
  RUNNER_VISIBILITY_S,
  SQS_BATCH_ENTRIES,
  type SqsBatchMessage,
  sqsBatchOf,
} from './sqs-hold.js';
export {
  HELD_STREAM_KIND,
  HELD_STREAM_VERSION,
  type HeldStreamBatch,
  heldStreamKey,
  parseHeldStreamBatch,
  type StreamBatch,
  streamBatchOf,
} from './stream-hold.js';
export { isThrottled } from './throttling.js';
