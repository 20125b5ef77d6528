/** One documented rate: a token bucket of `burst` tokens refilled at `perSecond`. */
export interface RateLimit {
  burst: number;
  perSecond: number;
  /** Where AWS documents it. */
  source: string;
}

const FARGATE_THROTTLING = 'https://docs.aws.amazon.com/AmazonECS/latest/developerguide/throttling.html';
const ECS_THROTTLING = 'https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html';
const LAMBDA_QUOTAS = 'https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html';

/**
 * AWS's rates for the calls this system makes, per account and region, as token buckets.
 *
 * - `fargateLaunches.FARGATE` / `.FARGATE_SPOT`: "Fargate Resource rate quota" for on-demand and
 *   for Spot tasks, 100 burst and 20 a second each (Fargate throttling quotas).
 * - `runTask`: "The rate quota for calling the Amazon ECS RunTask API is 20 calls per second
 *   (burst and sustained)" for Fargate (same page).
 * - `taskReads`: ListTasks and DescribeTasks, which ECS throttles per account and region
 *   ("Request throttling for the Amazon ECS API", task read actions; this plane uses the burst of 100
 *   and 20 a second for them: check the current table).
 * - `getFunction`: Lambda's GetFunction, 100 requests a second (Lambda quotas, "API request rates").
 * - `lambdaControl`: Lambda's other control-plane calls (GetFunctionConfiguration,
 *   GetFunctionEventInvokeConfig, GetLayerVersionByArn), 15 a second, not raisable (same table).
 *
 * @example
 * ```ts
 * import { AWS_LIMITS } from '@immortal-lambda/local';
 * AWS_LIMITS.fargateLaunches.perSecond; // 20
 * ```
 */
export const AWS_LIMITS = {
  fargateLaunches: { burst: 100, perSecond: 20, source: FARGATE_THROTTLING },
  fargateSpotLaunches: { burst: 100, perSecond: 20, source: FARGATE_THROTTLING },
  runTask: { burst: 20, perSecond: 20, source: FARGATE_THROTTLING },
  taskReads: { burst: 100, perSecond: 20, source: ECS_THROTTLING },
  getFunction: { burst: 100, perSecond: 100, source: LAMBDA_QUOTAS },
  lambdaControl: { burst: 15, perSecond: 15, source: LAMBDA_QUOTAS },
} as const satisfies Record<string, RateLimit>;

/** The rates a plane applies: none (the default), AWS's, or a table of one's own. */
export type LimitName = keyof typeof AWS_LIMITS;
export type Limits = 'none' | 'aws' | Partial<Record<LimitName, RateLimit>>;

/**
 * Token buckets, one per rate, refilled continuously from an injected clock: `take` answers
 * whether a call may go now, and counts the calls refused.
 */
export class RateLimiter {
  readonly #limits: Partial<Record<LimitName, RateLimit>>;
  readonly #now: () => number;
  readonly #buckets = new Map<LimitName, { tokens: number; at: number }>();
  /** How many calls each rate refused. */
  readonly refused = new Map<LimitName, number>();

  constructor(limits: Limits | undefined, now: () => number) {
    this.#limits = limits === 'aws' ? AWS_LIMITS : limits === 'none' || limits === undefined ? {} : limits;
    this.#now = now;
  }

  /** Takes one token of the rate; false (and counted) when its bucket is empty. No rate, always true. */
  take(name: LimitName): boolean {
    const limit = this.#limits[name];
    if (!limit) return true;
    const now = this.#now();
    const bucket = this.#buckets.get(name) ?? { tokens: limit.burst, at: now };
    bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * limit.perSecond);
    bucket.at = now;
    this.#buckets.set(name, bucket);
    if (bucket.tokens < 1) {
      this.refused.set(name, (this.refused.get(name) ?? 0) + 1);
      return false;
    }
    bucket.tokens -= 1;
    return true;
  }
}
