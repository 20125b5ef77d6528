/**
 * The runner's container name in the task definition, and the one RunTask overrides.
 *
 * @example
 * ```ts
 * import { DEFAULT_CONTAINER_NAME } from '@immortal-lambda/protocol';
 * taskDefinition.addContainer(DEFAULT_CONTAINER_NAME, { image });
 * ```
 */
export const DEFAULT_CONTAINER_NAME = 'runner';

/**
 * How long before the deadline the handoff starts by default: time for a first SDK load, RunTask's
 * retries under throttling and the record, on the smallest Lambda. See the middleware's README.
 *
 * @example
 * ```ts
 * import { DEFAULT_MARGIN_MS } from '@immortal-lambda/protocol';
 * const handOffAt = deadline - DEFAULT_MARGIN_MS;
 * ```
 */
export const DEFAULT_MARGIN_MS = 10_000;

/**
 * The smallest margin accepted: below it a RunTask call cannot reliably complete.
 *
 * @example
 * ```ts
 * import { MIN_MARGIN_MS } from '@immortal-lambda/protocol';
 * const marginMs = Math.max(MIN_MARGIN_MS, 2_000);
 * ```
 */
export const MIN_MARGIN_MS = 1_000;

/**
 * The key prefix of envelopes written to the payload bucket.
 *
 * @example
 * ```ts
 * import { DEFAULT_PAYLOAD_PREFIX } from '@immortal-lambda/protocol';
 * const objects = bucket.arnForObjects(`${DEFAULT_PAYLOAD_PREFIX}*`);
 * ```
 */
export const DEFAULT_PAYLOAD_PREFIX = 'immortal-lambda/envelopes/';

/**
 * How the envelope travels: `auto` puts it in RunTask's container override when it fits and
 * spills it to the payload bucket otherwise; `s3` always writes it to the bucket, so the event
 * never appears in DescribeTasks answers or ECS task-state events.
 *
 * @example
 * ```ts
 * import type { EnvelopeTransport } from '@immortal-lambda/protocol';
 * const transport: EnvelopeTransport = 's3';
 * ```
 */
export type EnvelopeTransport = 'auto' | 's3';

/**
 * Every envelope transport, as `FARGATE_FALLBACK_ENVELOPE_TRANSPORT` takes it.
 *
 * @example
 * ```ts
 * import { ENVELOPE_TRANSPORTS } from '@immortal-lambda/protocol';
 * ENVELOPE_TRANSPORTS.includes('s3'); // true
 * ```
 */
export const ENVELOPE_TRANSPORTS: readonly EnvelopeTransport[] = ['auto', 's3'];

/**
 * Capacity choices: `FARGATE_SPOT,FARGATE` tries Spot first and falls back to on-demand.
 *
 * @example
 * ```ts
 * import type { CapacityOption } from '@immortal-lambda/protocol';
 * const capacity: CapacityOption = 'FARGATE_SPOT,FARGATE';
 * ```
 */
export type CapacityOption = 'FARGATE' | 'FARGATE_SPOT' | 'FARGATE_SPOT,FARGATE';

/**
 * Every capacity choice, as `FARGATE_FALLBACK_CAPACITY` takes it.
 *
 * @example
 * ```ts
 * import { CAPACITY_OPTIONS } from '@immortal-lambda/protocol';
 * CAPACITY_OPTIONS.includes('FARGATE_SPOT'); // true
 * ```
 */
export const CAPACITY_OPTIONS: readonly CapacityOption[] = [
  'FARGATE',
  'FARGATE_SPOT',
  'FARGATE_SPOT,FARGATE',
];

/**
 * The Node major of a Lambda runtime name (`nodejs22.x` → 22), or undefined for another runtime.
 *
 * @example
 * ```ts
 * import { runtimeNodeMajor } from '@immortal-lambda/protocol';
 * runtimeNodeMajor('nodejs24.x'); // 24
 * ```
 */
export function runtimeNodeMajor(runtime: string | undefined): number | undefined {
  const match = /^nodejs(\d+)\.x$/.exec(runtime ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * The default key prefix of outcome records in the payload bucket.
 *
 * @example
 * ```ts
 * import { DEFAULT_OUTCOME_PREFIX } from '@immortal-lambda/protocol';
 * const objects = bucket.arnForObjects(`${DEFAULT_OUTCOME_PREFIX}*`);
 * ```
 */
export const DEFAULT_OUTCOME_PREFIX = 'immortal-lambda/outcomes/';

/**
 * How the wrapper's own StopTask reasons begin (a duplicate started for the same request id, a
 * task whose invocation finished in Lambda during the handoff). The watchdog ignores these stops;
 * any other StopTask (an operator, a script) cancels the invocation, recorded and delivered as a
 * failure.
 *
 * @example
 * ```ts
 * import { OWN_STOP_PREFIX } from '@immortal-lambda/protocol';
 * const reason = `${OWN_STOP_PREFIX}duplicate of ${winner}`;
 * ```
 */
export const OWN_STOP_PREFIX = 'immortal-lambda: ';

/**
 * The tags RunTask gives every runner task: the function, its version and the request id. The
 * construct scopes the function's StopTask to tasks whose function tag is its own.
 *
 * @example
 * ```ts
 * import { TASK_TAGS } from '@immortal-lambda/protocol';
 * const condition = { StringEquals: { [`aws:ResourceTag/${TASK_TAGS.function}`]: 'report-job' } };
 * ```
 */
export const TASK_TAGS = {
  function: 'immortal-lambda:function',
  version: 'immortal-lambda:version',
  requestId: 'immortal-lambda:request-id',
  /**
   * On a RunTask retried after every placement found no capacity: which retry. It makes the
   * retry's parameters differ from the failed call's, so that a client token ECS remembered
   * without a task shows itself (`ConflictException` naming no task) instead of answering the
   * old failures again.
   */
  retry: 'immortal-lambda:retry',
} as const;
