export { EnvelopeError } from '../errors.js';
export { ENV, RUN_TASK_OVERRIDES_LIMIT } from './env-names.js';
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
export { envelopeKey, formatS3Uri, isS3Uri, parseS3Uri, type S3Location } from './s3-uri.js';
