export { runtimeNodeMajor } from '@immortal-lambda/protocol';
export { type ArrivingDownload, downloadArriving } from './arriving-download.js';
export { fetchCode } from './code.js';
export { createContext, type RunnerContext } from './context.js';
export { downloadVerified, type Fetch, type FetchResponse } from './download.js';
export { readEnvelope } from './envelope-source.js';
export { handlerEnvironment } from './environment.js';
export {
  BadInputError,
  CodeFetchError,
  HandlerLoadError,
  KeyUnknownError,
  RunnerError,
  UnsafeArchiveError,
} from './errors.js';
export { EXIT_CODES, type ExitCode, OUTCOMES } from './exit-codes.js';
export { loadHandler, splitHandler } from './handler-loader.js';
export { httpGet } from './http-get.js';
export { type InstallOptions, installArchive, LAMBDA_UNZIPPED_LIMIT } from './install.js';
export { jsonSafe } from './json-safe.js';
export { JournalStore } from './outcomes.js';
export { type RunnerDependencies, runInvocation } from './runner.js';
export { getObjectIfPresent } from './s3.js';
export {
  type AwsCallBounds,
  DEFAULT_AWS_MAX_ATTEMPTS,
  DEFAULT_AWS_TIMEOUT_MS,
  DEFAULT_MAX_RUNTIME_MS,
  DEFAULT_STOP_GRACE_MS,
  DEFAULT_THROTTLE_BUDGET_MS,
  readSettings,
} from './settings.js';
export { STANDBY_GRACE_MS, STANDBY_POLL_MS, type StandbyAnswer, waitForGo } from './standby.js';
export {
  daemonAddress,
  parseTraceHeader,
  runnerSegment,
  sendSegment,
  type TraceContext,
} from './trace.js';
export type { ArchiveArrival } from './zip/arrival.js';
export { type ExtractOptions, type ExtractResult, extractZip } from './zip/extract.js';
