export {
  CAPACITY_OPTIONS,
  type CapacityOption,
  DEFAULT_CONTAINER_NAME,
  DEFAULT_PAYLOAD_PREFIX,
  ENVELOPE_TRANSPORTS,
  type EnvelopeTransport,
  runtimeNodeMajor,
} from './defaults.js';
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
export { EnvelopeError, ImmortalLambdaError } from './errors.js';
export { ENV, type EnvName } from './names.js';
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
