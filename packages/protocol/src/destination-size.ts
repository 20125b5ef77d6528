import type { DestinationKind, DestinationRecord } from './destination-record.js';

/**
 * The largest record each destination takes, in bytes: an SQS message, an SNS message, an
 * EventBridge entry and an asynchronous Lambda payload are each limited to 256 KiB (the entry's
 * other fields and the message's attributes count too, so 4 KiB are left for them); an S3 object
 * has no such limit.
 *
 * @example
 * ```ts
 * import { DESTINATION_LIMITS } from '@immortal-lambda/protocol/destinations';
 * const fits = (body: string) => Buffer.byteLength(body) <= DESTINATION_LIMITS.sqs;
 * ```
 */
export const DESTINATION_LIMITS: Readonly<Record<DestinationKind, number>> = {
  sqs: 256 * 1024 - 4096,
  sns: 256 * 1024 - 4096,
  eventbridge: 256 * 1024 - 4096,
  lambda: 256 * 1024 - 4096,
  s3: Number.POSITIVE_INFINITY,
};

/**
 * The record a destination of `kind` can take: the record itself when it fits, else the same
 * record with its event and response replaced by what they were (their size) and where the whole
 * record is kept (`location`, when it could be stored): never a record the destination refuses.
 *
 * @example
 * ```ts
 * import { fitRecord } from '@immortal-lambda/protocol/destinations';
 * const sent = fitRecord(record, 'sqs', 's3://bucket/immortal-lambda/outcomes/report/r-1/attempt-1.destination.json');
 * ```
 */
export function fitRecord(
  record: DestinationRecord,
  body: string,
  kind: DestinationKind,
  location: string | undefined,
): DestinationRecord {
  if (!overLimit(body, kind)) return record;
  const omitted = (part: unknown) => ({
    omitted: `over the ${kind} destination's size limit`,
    bytes: Buffer.byteLength(JSON.stringify(part) ?? ''),
    ...(location ? { location } : {}),
  });
  const response = record.responsePayload as { errorType?: unknown; errorMessage?: unknown } | undefined;
  const failure =
    record.responseContext.functionError && typeof response?.errorType === 'string'
      ? { errorType: response.errorType, errorMessage: String(response.errorMessage ?? '').slice(0, 4096) }
      : {};
  return {
    ...record,
    requestPayload: omitted(record.requestPayload),
    responsePayload: { ...omitted(record.responsePayload), ...failure },
    immortalLambda: {
      ...record.immortalLambda,
      ...(location ? { recordLocation: location } : {}),
      recordBytes: Buffer.byteLength(body),
    },
  };
}

/** Whether a record is over what a destination of `kind` takes. */
export function overLimit(body: string, kind: DestinationKind): boolean {
  return Buffer.byteLength(body) > DESTINATION_LIMITS[kind];
}
