// The watchdog function FargateFallback deploys: follows STOPPED runner tasks and relaunches the
// ones that ended before a result. Configured by its FARGATE_FALLBACK_* environment.
import { taskWatchdog } from '@immortal-lambda/middleware/safety-net';

export const handler: ReturnType<typeof taskWatchdog> = taskWatchdog();
