import type { S3Client } from '@aws-sdk/client-s3';
import {
  DEFAULT_OUTCOME_PREFIX,
  ENV,
  type InvocationStatusView,
  parseS3Uri,
  summarizeOutcomes,
} from '@immortal-lambda/protocol';
import { ConfigurationError } from './errors.js';
import { readOutcomes } from './outcome-store.js';
import { BOUNDED_CLIENT, loadS3 } from './sdk.js';

export type { InvocationStatus, OutcomeError } from '@immortal-lambda/protocol';

/**
 * What became of a handed-off invocation: `status`, the task of the latest attempt (`taskArn`),
 * the attempts started, the `result` (when it was small enough to keep in its record; a larger
 * one is at `resultLocation`, read with `loadResult: true`), the `error` (with `retryable` while
 * the watchdog may still relaunch it), and when the latest record was written (`updatedAt`).
 *
 * @example
 * ```ts
 * import type { InvocationStatusResult } from '@immortal-lambda/middleware/status';
 * const done = (s: InvocationStatusResult) => s.status === 'succeeded' || (s.status === 'failed' && !s.error?.retryable);
 * ```
 */
export type InvocationStatusResult = InvocationStatusView;

/**
 * Options of {@link getInvocationStatus}.
 *
 * @example
 * ```ts
 * import type { InvocationStatusOptions } from '@immortal-lambda/middleware/status';
 * const options: InvocationStatusOptions = { bucket: 'my-payloads', loadResult: true };
 * ```
 */
export interface InvocationStatusOptions {
  /** The payload bucket (default `FARGATE_FALLBACK_BUCKET`). */
  bucket?: string;
  /** The records' key prefix (default `FARGATE_FALLBACK_OUTCOME_PREFIX`, else `immortal-lambda/outcomes/`). */
  prefix?: string;
  /** Read a result that was written beside its record into `result` (default false). */
  loadResult?: boolean;
  s3Client?: S3Client;
  env?: Readonly<Record<string, string | undefined>>;
  /** Hears of each object of the invocation's folder that was skipped, and why (default: a warning on stderr). */
  onSkipped?: (key: string, why: string) => void;
}

let defaultClient: S3Client | undefined;

/**
 * What became of an invocation that was handed off: `handed-off`, `running`, `relaunching`,
 * `succeeded` (with its result) or `failed` (with its error), from the outcome records the
 * wrapper, the runner and the watchdog write to the payload bucket. `undefined` for a request id
 * with no record. Needs `s3:ListBucket` on the bucket and `s3:GetObject` on the records.
 *
 * @example
 * ```ts
 * import { getInvocationStatus } from '@immortal-lambda/middleware/status';
 * const status = await getInvocationStatus({ functionName: 'report', requestId: receipt.requestId });
 * if (status?.status === 'succeeded') return status.result;
 * ```
 */
export async function getInvocationStatus(
  invocation: { functionName: string; requestId: string },
  options: InvocationStatusOptions = {},
): Promise<InvocationStatusResult | undefined> {
  const env = options.env ?? process.env;
  const bucket = options.bucket ?? env[ENV.payloadBucket]?.trim();
  if (!bucket) {
    throw new ConfigurationError([
      `getInvocationStatus needs the payload bucket the outcome records are in: pass { bucket } or set ${ENV.payloadBucket}`,
    ]);
  }
  for (const key of ['functionName', 'requestId'] as const) {
    const value: unknown = invocation?.[key];
    if (typeof value !== 'string' || value.trim() === '') {
      throw new ConfigurationError([
        `getInvocationStatus: ${key} must be a non-empty string, not ${JSON.stringify(value)}`,
      ]);
    }
  }
  // A function ARN (qualified or not) names the function by its name.
  const functionName = /:function:([^:]+)/.exec(invocation.functionName)?.[1] ?? invocation.functionName;
  if (!options.s3Client && !defaultClient) {
    const { S3Client } = await loadS3();
    defaultClient = new S3Client(BOUNDED_CLIENT);
  }
  const s3 = options.s3Client ?? (defaultClient as S3Client);
  const records = await readOutcomes(
    s3,
    {
      bucket,
      prefix: options.prefix ?? (env[ENV.outcomePrefix]?.trim() || DEFAULT_OUTCOME_PREFIX),
      functionName,
      requestId: invocation.requestId,
    },
    options.onSkipped ?? ((key, why) => console.warn(`getInvocationStatus skipped ${key}: ${why}`)),
  );
  const view = summarizeOutcomes(records);
  if (!view) return undefined;
  if (options.loadResult && view.resultLocation && view.status === 'succeeded') {
    const { GetObjectCommand } = await loadS3();
    const location = parseS3Uri(view.resultLocation);
    const object = await s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }));
    view.result = JSON.parse((await object.Body?.transformToString()) ?? 'null');
  }
  return view;
}
