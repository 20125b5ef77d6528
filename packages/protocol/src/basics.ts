// The part of the protocol a wrapped handler loads when its module is imported: the setting names,
// the defaults, the error classes and the journal of steps. The envelope, the outcome records and
// RunTask's rules load with the first handoff, from the package's main entry.
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
} from './defaults.js';
export { DIAGNOSTICS, publishCheckpoint, traceHandler, traceStep } from './diagnostics.js';
export { EnvelopeError, ERROR_KIND, ImmortalLambdaError } from './errors.js';
export {
  GIVEN_JOURNAL,
  type Journal,
  JournalRecorder,
  MAX_JOURNAL_BYTES,
  MAX_JOURNAL_STEPS,
  StepError,
} from './journal.js';
export { DEFAULT_METRICS_NAMESPACE, type MetricsSettings, readMetricsSettings } from './metrics.js';
export { ENV, type EnvName } from './names.js';
