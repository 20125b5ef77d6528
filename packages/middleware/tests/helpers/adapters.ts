import middy6 from '@middy/core';
import type { Context } from 'aws-lambda';
import middy5 from 'middy-core-5';
import { runnerExtras } from '../../src/extras.js';
import { fargateFallback } from '../../src/middy.js';
import type { FallbackHandler, FargateFallbackOptions } from '../../src/types.js';
import { withFargateFallback } from '../../src/wrapper.js';

export type AnyHandler = (event: unknown, context: Context) => Promise<unknown>;

/** One way of attaching the fallback to a handler; the shared suite runs through each. */
export interface Adapter {
  name: string;
  /** Whether the handler keeps running after a failed handoff (middy aborts it at its timeout). */
  handlerSurvivesFailedHandoff: boolean;
  wrap(fn: FallbackHandler<unknown, unknown>, options: FargateFallbackOptions): AnyHandler;
}

const viaMiddy =
  (middy: typeof middy6): Adapter['wrap'] =>
  (fn, options) => {
    const margin = typeof options?.marginMs === 'number' ? options.marginMs : 10_000;
    const handler = middy(
      (event: unknown, context: Context, extras: { signal: AbortSignal }) =>
        fn(event, context, runnerExtras({ signal: extras.signal }, 'lambda')),
      { timeoutEarlyInMillis: margin },
    ).use(fargateFallback(options));
    return ((event: unknown, context: Context) => handler(event, context)) as AnyHandler;
  };

export const adapters: Adapter[] = [
  {
    name: 'withFargateFallback',
    handlerSurvivesFailedHandoff: true,
    wrap: (fn, options) => withFargateFallback(fn, options) as AnyHandler,
  },
  {
    name: 'middy 6 + fargateFallback',
    handlerSurvivesFailedHandoff: false,
    wrap: viaMiddy(middy6),
  },
  {
    name: 'middy 5 + fargateFallback',
    handlerSurvivesFailedHandoff: false,
    wrap: viaMiddy(middy5 as unknown as typeof middy6),
  },
];
