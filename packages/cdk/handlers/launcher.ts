// The launcher function FargateFallback deploys on the launch queue: starts the runner tasks of
// handoffs that met Fargate's launch rate, as soon as the rate allows, with their own client tokens.
import { launchQueued } from '@immortal-lambda/middleware/safety-net';

export const handler: ReturnType<typeof launchQueued> = launchQueued();
