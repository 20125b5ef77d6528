export {
  ENVELOPE_PREFIX,
  type FallbackNetworking,
  FargateFallback,
  type FargateFallbackProps,
  OUTCOME_PREFIX,
  runnerImageDirectory,
} from './fargate-fallback.js';
export { SAFETY_NET_FUNCTIONS, SafetyNet, type SafetyNetProps, type ServedFunction } from './safety-net.js';
