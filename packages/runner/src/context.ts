import type { Envelope } from '@immortal-lambda/protocol';

/**
 * A Lambda-shaped context for the handed-off invocation, keeping the original request id.
 *
 * @example
 * ```ts
 * import type { RunnerContext } from '@immortal-lambda/runner';
 * const left = (context: RunnerContext) => context.getRemainingTimeInMillis();
 * ```
 */
export interface RunnerContext {
  callbackWaitsForEmptyEventLoop: boolean;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  awsRequestId: string;
  logGroupName: string;
  logStreamName: string;
  identity?: unknown;
  clientContext?: unknown;
  getRemainingTimeInMillis(): number;
  done(error?: unknown, result?: unknown): void;
  fail(error: unknown): void;
  succeed(result: unknown): void;
}

/**
 * Builds the context: the original invocation's names and request id, and a
 * `getRemainingTimeInMillis()` counting down from `maxRuntimeMs` from now.
 *
 * @example
 * ```ts
 * import { createContext } from '@immortal-lambda/runner';
 * const context = createContext(envelope, { now: Date.now, maxRuntimeMs: 3_600_000, memoryLimitInMB: 1024, settle: () => {} });
 * ```
 */
export function createContext(
  envelope: Envelope,
  options: {
    now: () => number;
    maxRuntimeMs: number;
    memoryLimitInMB: number;
    settle: (error: unknown, result?: unknown) => void;
  },
): RunnerContext {
  const deadline = options.now() + options.maxRuntimeMs;
  const { invocation } = envelope;
  const context: RunnerContext = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: envelope.function.name,
    functionVersion: envelope.function.version,
    invokedFunctionArn: invocation.invokedFunctionArn,
    memoryLimitInMB: String(options.memoryLimitInMB),
    awsRequestId: invocation.awsRequestId,
    logGroupName: invocation.logGroupName ?? '',
    logStreamName: invocation.logStreamName ?? '',
    getRemainingTimeInMillis: () => Math.max(0, deadline - options.now()),
    done: (error, result) => options.settle(error ?? null, result),
    fail: (error) => options.settle(error ?? new Error('context.fail called')),
    succeed: (result) => options.settle(null, result),
  };
  if (invocation.identity !== undefined) context.identity = invocation.identity;
  if (invocation.clientContext !== undefined) context.clientContext = invocation.clientContext;
  return context;
}
