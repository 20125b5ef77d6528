// The relaunch function FargateFallback deploys as the function's on-failure destination: starts
// invocations that failed in Lambda anyway on Fargate. Configured by its FARGATE_FALLBACK_* environment.
import { relaunchFailures } from '@immortal-lambda/middleware/safety-net';

export const handler: ReturnType<typeof relaunchFailures> = relaunchFailures();
