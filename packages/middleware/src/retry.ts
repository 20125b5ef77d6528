import type { Clock } from './types.js';

/** Full-jitter exponential backoff: a random wait up to min(cap, base · 2^retry). */
export function backoffDelay(retry: number, random: () => number, baseMs = 100, capMs = 2_000): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** retry));
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, clock: Clock, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal.reason);
    };
    const handle = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A signal that aborts after `ms` with `reason`, or earlier with the reason of `parent` when
 * that aborts first. `dispose` clears the timer and the link to the parent.
 */
export function abortAfter(
  clock: Clock,
  ms: number,
  reason: () => unknown,
  parent?: AbortSignal,
): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const timer = clock.setTimeout(() => controller.abort(reason()), Math.max(0, ms));
  const follow = () => controller.abort(parent?.reason);
  if (parent?.aborted) follow();
  else parent?.addEventListener('abort', follow, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      clock.clearTimeout(timer);
      parent?.removeEventListener('abort', follow);
    },
  };
}

/**
 * Settles like `promise`, but rejects with the signal's reason as soon as the signal aborts,
 * whatever the promise is still doing: no SDK retry loop can outlive the deadline.
 */
export function bounded<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

const RETRYABLE_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ServerException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalFailure',
  'InternalError',
  'SlowDown',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

/** Throttling, server-side and network errors are worth another attempt; the rest are not. */
export function isRetryableError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as {
    name?: string;
    code?: string;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  if (candidate.$retryable) return true;
  if (candidate.name && RETRYABLE_NAMES.has(candidate.name)) return true;
  if (candidate.code && RETRYABLE_CODES.has(candidate.code)) return true;
  const status = candidate.$metadata?.httpStatusCode;
  return status === 429 || (status !== undefined && status >= 500);
}

/**
 * Calls `send` until it answers, retrying throttling, server and network errors with full-jitter
 * backoff while `signal` allows; an error that is not worth another call, or one that comes once
 * the signal has ended, goes to `giveUp`, which throws.
 */
export async function retryWithin<T>(
  send: () => Promise<T>,
  options: { signal: AbortSignal; clock: Clock; random: () => number; baseMs?: number; capMs?: number },
  giveUp: (error: unknown) => never,
): Promise<T> {
  const { signal, clock, random } = options;
  for (let retry = 0; ; retry++) {
    try {
      return await bounded(send(), signal);
    } catch (error) {
      if (signal.aborted || !isRetryableError(error)) giveUp(error);
      await sleep(backoffDelay(retry, random, options.baseMs, options.capMs), clock, signal).catch(
        () => undefined,
      );
    }
  }
}
