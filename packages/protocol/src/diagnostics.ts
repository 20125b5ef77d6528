import { channel, tracingChannel } from 'node:diagnostics_channel';

/**
 * The `node:diagnostics_channel` names the library publishes on, for tools that watch a handler
 * run (`immortal-local dev --chaos`): the handler's call in either leg, each step's work, each
 * checkpoint. Nothing is published, and nothing costs more than a check, without a subscriber.
 *
 * @example
 * ```ts
 * import { tracingChannel } from 'node:diagnostics_channel';
 * import { DIAGNOSTICS } from '@immortal-lambda/protocol';
 * tracingChannel(DIAGNOSTICS.handler).start.subscribe(({ runtime }) => console.log('handler in', runtime));
 * ```
 */
export const DIAGNOSTICS = {
  /** A tracing channel: the handler called, `{ runtime: 'lambda' | 'fargate', requestId }`. */
  handler: 'immortal-lambda:handler',
  /** A tracing channel: a step's function run (not one answered from the journal), `{ name }`. */
  step: 'immortal-lambda:step',
  /** A channel: a checkpoint recorded, `{ state }` (its JSON copy). */
  checkpoint: 'immortal-lambda:checkpoint',
} as const;

const handlerChannel = tracingChannel(DIAGNOSTICS.handler);
const stepChannel = tracingChannel(DIAGNOSTICS.step);
const checkpointChannel = channel(DIAGNOSTICS.checkpoint);

/**
 * Calls the handler inside the handler's tracing channel (its work, sync and async, runs in the
 * context its subscribers bound), or plainly when nobody listens.
 *
 * @example
 * ```ts
 * const result = traceHandler({ runtime: 'lambda', requestId: context.awsRequestId }, () => fn(event, context));
 * ```
 */
export function traceHandler<T>(
  context: { runtime: 'lambda' | 'fargate'; requestId: string },
  call: () => T,
): T {
  return handlerChannel.start.hasSubscribers ? handlerChannel.traceSync(call, context) : call();
}

/**
 * Runs a step's function inside the step's tracing channel, or plainly when nobody listens.
 *
 * @example
 * ```ts
 * const rows = await traceStep('load', () => loadRows());
 * ```
 */
export function traceStep<T>(name: string, call: () => T): T {
  return stepChannel.start.hasSubscribers ? stepChannel.traceSync(call, { name }) : call();
}

/**
 * Publishes a checkpoint's copy, when anybody listens.
 *
 * @example
 * ```ts
 * publishCheckpoint({ nextRow: 200 });
 * ```
 */
export function publishCheckpoint(state: unknown): void {
  if (checkpointChannel.hasSubscribers) checkpointChannel.publish({ state });
}
