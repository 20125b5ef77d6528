export {
  ENVELOPE_PREFIX,
  type FallbackNetworking,
  FargateFallback,
  type FargateFallbackProps,
  OUTCOME_PREFIX,
  runnerImageDirectory,
} from './fargate-fallback.js';
export { SafetyNet, type SafetyNetProps } from './safety-net.js';
