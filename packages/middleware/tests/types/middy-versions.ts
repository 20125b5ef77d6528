// Compiled by `pnpm typecheck`, never run: the middleware must type-check as a middleware of
// every supported middy major, including 7 (which needs Node 22 to run).
import middy6 from '@middy/core';
import type { Context } from 'aws-lambda';
import middy5 from 'middy-core-5';
import middy7 from 'middy-core-7';
import { fargateFallback } from '../../src/middy.js';

type Event = { reportId: string };
type Result = { pages: number } | { statusCode: number };

const job = async (event: Event, _context: Context, { signal }: { signal: AbortSignal }): Promise<Result> => {
  signal.throwIfAborted();
  return { pages: event.reportId.length };
};
const accepted = () => ({ statusCode: 202 });

export const onMiddy5 = middy5(job, { timeoutEarlyInMillis: 10_000 }).use(
  fargateFallback<Event, Result>({ handoffResponse: accepted }),
);
export const onMiddy6 = middy6(job, { timeoutEarlyInMillis: 10_000 }).use(
  fargateFallback<Event, Result>({ handoffResponse: accepted }),
);
export const onMiddy7 = middy7(job, { timeoutEarlyInMillis: 10_000 }).use(
  fargateFallback<Event, Result>({ handoffResponse: accepted }),
);
