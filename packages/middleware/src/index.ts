export { DEFAULT_MARGIN_MS, MIN_MARGIN_MS } from './config.js';
export {
  ConfigurationError,
  EnvelopeError,
  HandedOffError,
  HandoffError,
  type HandoffFailureReason,
  ImmortalLambdaError,
  RelaunchError,
} from './errors.js';
export { DEADLINE_GUARD_MS } from './target.js';
export type {
  CapacityOption,
  Clock,
  FallbackHandler,
  FallbackHandlerExtras,
  FallbackLogger,
  FargateFallbackOptions,
  HandoffAnswer,
  HandoffReceipt,
  QueuedReceipt,
} from './types.js';
export { type WrappedHandler, withFargateFallback } from './wrapper.js';
