export {
  ENVELOPE_PREFIX,
  type FallbackNetworking,
  FargateFallback,
  type FargateFallbackProps,
  runnerImageDirectory,
} from './fargate-fallback.js';
