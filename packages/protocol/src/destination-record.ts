import { ERROR_KIND, ImmortalLambdaError } from './errors.js';

/**
 * The services a Lambda async-invocation destination can be.
 *
 * @example
 * ```ts
 * import { destinationKind } from '@immortal-lambda/protocol';
 * destinationKind('arn:aws:sqs:eu-west-1:123456789012:results'); // 'sqs'
 * ```
 */
export type DestinationKind = 'sqs' | 'sns' | 'eventbridge' | 'lambda' | 's3';

/**
 * Thrown for a destination ARN of a service Lambda cannot send to.
 *
 * @example
 * ```ts
 * import { DestinationError } from '@immortal-lambda/protocol';
 * try { destinationKind('arn:aws:dynamodb:…'); } catch (error) { if (error instanceof DestinationError) console.error(error.message); }
 * ```
 */
export class DestinationError extends ImmortalLambdaError {
  static override readonly [ERROR_KIND] = 'DestinationError';
}

/** The service of a destination ARN. */
export function destinationKind(arn: string): DestinationKind {
  const service = /^arn:aws[a-z-]*:([a-z0-9-]+):/.exec(arn)?.[1];
  switch (service) {
    case 'sqs':
    case 'sns':
    case 'lambda':
    case 's3':
      return service;
    case 'events':
      return 'eventbridge';
    default:
      throw new DestinationError(
        `${arn} is not a destination Lambda can send to: use an SQS queue, SNS topic, EventBridge bus, Lambda function or S3 bucket ARN`,
      );
  }
}

/**
 * The record Lambda sends to an async invocation's destination, plus `immortalLambda`, which says
 * that the record comes from the run on Fargate (Lambda's own record of a handed-off invocation
 * has none, and its `responsePayload` is the handoff receipt).
 *
 * @example
 * ```ts
 * import type { DestinationRecord } from '@immortal-lambda/protocol';
 * const failed = (record: DestinationRecord) => record.requestContext.condition !== 'Success';
 * ```
 */
export interface DestinationRecord {
  version: '1.0';
  timestamp: string;
  requestContext: {
    requestId: string;
    functionArn: string;
    condition: 'Success' | 'RetriesExhausted';
    approximateInvokeCount: number;
  };
  requestPayload: unknown;
  responseContext: { statusCode: 200; executedVersion: string; functionError?: 'Unhandled' };
  responsePayload: unknown;
  immortalLambda: {
    runtime: 'fargate';
    attempt: number;
    taskArn?: string;
    writer: 'runner' | 'watchdog' | 'safety-net';
    /** Where the whole record is kept, when it was over the destination's size limit. */
    recordLocation?: string;
    /** The whole record's size, when it was over the destination's size limit. */
    recordBytes?: number;
  };
}

/**
 * What {@link destinationRecord} builds a record from.
 *
 * @example
 * ```ts
 * import type { DestinationOutcome } from '@immortal-lambda/protocol';
 * const ok: DestinationOutcome = { ok: true, result: { rows: 3 } };
 * ```
 */
export type DestinationOutcome =
  | { ok: true; result: unknown }
  | { ok: false; error: { name?: string; message: string; stack?: string } };

/**
 * Builds the destination record of an invocation's final outcome, in Lambda's shape.
 *
 * @example
 * ```ts
 * import { destinationRecord } from '@immortal-lambda/protocol';
 * const record = destinationRecord({
 *   requestId: 'c0ffee', functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report',
 *   version: '3', event: {}, attempt: 1, writer: 'runner', outcome: { ok: true, result: 42 }, now: Date.now(),
 * });
 * ```
 */
export function destinationRecord(input: {
  requestId: string;
  functionArn: string;
  version: string;
  event: unknown;
  attempt: number;
  taskArn?: string;
  writer: 'runner' | 'watchdog' | 'safety-net';
  outcome: DestinationOutcome;
  now: number;
}): DestinationRecord {
  const { outcome } = input;
  return {
    version: '1.0',
    timestamp: new Date(input.now).toISOString(),
    requestContext: {
      requestId: input.requestId,
      functionArn: input.functionArn,
      condition: outcome.ok ? 'Success' : 'RetriesExhausted',
      approximateInvokeCount: input.attempt,
    },
    requestPayload: input.event,
    responseContext: {
      statusCode: 200,
      executedVersion: input.version,
      ...(outcome.ok ? {} : { functionError: 'Unhandled' as const }),
    },
    responsePayload: outcome.ok
      ? outcome.result
      : {
          errorType: outcome.error.name ?? 'Error',
          errorMessage: outcome.error.message,
          trace: outcome.error.stack ? outcome.error.stack.split('\n') : [],
        },
    immortalLambda: {
      runtime: 'fargate',
      attempt: input.attempt,
      ...(input.taskArn ? { taskArn: input.taskArn } : {}),
      writer: input.writer,
    },
  };
}
