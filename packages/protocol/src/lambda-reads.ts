import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { DestinationError } from './destination-record.js';
import { isThrottled } from './throttling.js';

/** The smallest client shape these reads need: the SDK's own clients have it. */
export interface Sender {
  // biome-ignore lint/suspicious/noExplicitAny: each SDK client takes its own command union.
  send(command: any): Promise<unknown>;
}

/**
 * How long a read of Lambda's configuration (a function's destinations, its variables) is used
 * without asking Lambda again.
 *
 * @example
 * ```ts
 * import { DESTINATIONS_CACHE_MS } from '@immortal-lambda/protocol/destinations';
 * const minutes = DESTINATIONS_CACHE_MS / 60_000; // 5
 * ```
 */
export const DESTINATIONS_CACHE_MS = 5 * 60_000;
/** Calls of one read, the first included, before a throttling answer is final. */
const READ_ATTEMPTS = 5;

/** Clock and wait of a read, injectable so that tests do not wait. */
export interface ReadTiming {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const caches = new WeakMap<Sender, Map<string, { until: number; found: Promise<unknown> }>>();

/**
 * One read of Lambda's control plane, kept for {@link DESTINATIONS_CACHE_MS} per client and key
 * (its calls share a per-account quota that a burst of runners or a busy safety net can exhaust),
 * and tried again with backoff when throttled (100 ms doubling, 5 calls in all). A read that
 * failed is not kept: the next asks again.
 */
export function cachedRead<T>(
  lambda: Sender,
  key: string,
  read: () => Promise<T>,
  timing: ReadTiming = {},
): Promise<T> {
  const now = (timing.now ?? Date.now)();
  const cache = caches.get(lambda) ?? new Map<string, { until: number; found: Promise<unknown> }>();
  caches.set(lambda, cache);
  const cached = cache.get(key);
  if (cached && cached.until > now) return cached.found as Promise<T>;
  const found = retryThrottled(read, timing.sleep ?? pause);
  cache.set(key, { until: now + DESTINATIONS_CACHE_MS, found });
  found.catch(() => cache.delete(key));
  return found;
}

async function retryThrottled<T>(read: () => Promise<T>, sleep: (ms: number) => Promise<void>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      if (!isThrottled(error) || attempt >= READ_ATTEMPTS) throw error;
      await sleep(100 * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
    }
  }
}

/**
 * The environment variables of one version of a function (GetFunctionConfiguration): what the
 * safety net reads a served function's `FARGATE_FALLBACK_*` settings from, as that version was
 * deployed. Cached and retried as {@link cachedRead}; variables Lambda cannot decrypt throw.
 *
 * @example
 * ```ts
 * import { functionVariables } from '@immortal-lambda/protocol/destinations';
 * const variables = await functionVariables(lambda, 'report', '7');
 * ```
 */
export function functionVariables(
  lambda: Sender,
  functionName: string,
  qualifier: string | undefined,
  timing: ReadTiming = {},
): Promise<Record<string, string>> {
  const key = `variables ${functionName}:${qualifier ?? ''}`;
  return cachedRead(
    lambda,
    key,
    async () => {
      const configuration = (await lambda.send(
        new GetFunctionConfigurationCommand({
          FunctionName: functionName,
          ...(qualifier ? { Qualifier: qualifier } : {}),
        }),
      )) as { Environment?: { Variables?: Record<string, string>; Error?: { Message?: string } } };
      const problem = configuration.Environment?.Error;
      if (problem) {
        throw new DestinationError(
          `the environment of ${functionName}${qualifier ? `:${qualifier}` : ''} cannot be read (${problem.Message ?? 'Lambda gave no reason'}): let the reader's role decrypt it with the function's KMS key`,
        );
      }
      return { ...configuration.Environment?.Variables };
    },
    timing,
  );
}
