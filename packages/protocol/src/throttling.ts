/**
 * Whether an AWS call was throttled (the control planes' per-account rates), or its connection
 * was reset under the same burst: both are worth another call after a wait; a timeout is not.
 *
 * @example
 * ```ts
 * import { isThrottled } from '@immortal-lambda/protocol';
 * if (!isThrottled(error)) throw error;
 * ```
 */
export function isThrottled(error: unknown): boolean {
  const { name, code, $metadata } = error as {
    name?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  return (
    name === 'TooManyRequestsException' ||
    name === 'ThrottlingException' ||
    name === 'Throttling' ||
    $metadata?.httpStatusCode === 429 ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    /ECONNRESET|socket hang up/.test((error as Error).message ?? '')
  );
}
