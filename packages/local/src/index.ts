export { type AuditedCall, accessKeyOf, roleAccessKey } from './audit.js';
export { Dashboard, type DashboardInvocation, startDashboard } from './dashboard.js';
export { type DevOptions, runDev } from './dev.js';
export { type HandedOffInvocation, handedOffEnvelope } from './envelopes.js';
export { ApiError, LocalPlaneError, RegistrationError } from './errors.js';
export {
  FunctionImageLauncher,
  type LaunchCallbacks,
  type LaunchedTask,
  NoLauncher,
  PodmanLauncher,
  ProcessLauncher,
  runnerCli,
  type TaskLauncher,
} from './launcher.js';
export {
  type ConsumeOptions,
  LocalQueues,
  type QueueEvent,
  type QueueOptions,
  type SqsBatchEvent,
  type SqsConsumer,
  SqsError,
} from './plane/queues.js';
export {
  type KinesisRecord,
  LocalStreams,
  type StreamConsumeOptions,
  type StreamConsumer,
  type StreamEvent,
} from './plane/streams.js';
export {
  AWS_LIMITS,
  type Delivery,
  type EcsRequest,
  type EventRuleSpec,
  type Faults,
  type LimitName,
  type Limits,
  LocalControlPlane,
  type LocalTask,
  type PlaneOptions,
  type RateLimit,
  RateLimiter,
  type SubnetSpec,
  type TaskDefinition,
  type TaskStateChangeEvent,
} from './plane.js';
export { FunctionRegistry, type FunctionSpec, type ImageConfig, type LocalFunction } from './registry.js';
export { type LifecycleRule, type LocalS3, type S3Options, startS3 } from './s3.js';
export { buildZip, codeSha256, type ZipSource, zipFolder } from './zip.js';
