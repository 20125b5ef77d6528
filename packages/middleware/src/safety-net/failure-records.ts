import { type FailureCause, failureCause } from './failure-cause.js';

/**
 * One invocation that failed in Lambda, as a failure record carries it: the request id, the
 * original event, and the function it was for when the record says (a dead-letter message does
 * not).
 *
 * @example
 * ```ts
 * import type { FailedInvocation } from '@immortal-lambda/middleware/safety-net';
 * const describe = (failed: FailedInvocation) => `${failed.requestId} ${failed.error ?? ''}`;
 * ```
 */
export interface FailedInvocation {
  /** The SQS message id, for `batchItemFailures`. */
  itemIdentifier?: string;
  requestId: string;
  event: unknown;
  /** The function ARN the record names (an on-failure destination record does; with its qualifier). */
  functionArn?: string;
  /** Why it failed in Lambda, as the record says. */
  error?: string;
  /** What it died of, read from the record: only some causes are started again. */
  cause: FailureCause;
  /** The version Lambda ran it on (a destination record's `executedVersion`). */
  executedVersion?: string;
}

/** An item that is not a failure record of an invocation, with why. */
export interface UnreadableItem {
  itemIdentifier?: string;
  problem: string;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null;

/** An on-failure destination record (`requestContext`, `requestPayload`, …), read from its object. */
function fromDestinationRecord(record: Json, itemIdentifier?: string): FailedInvocation | UnreadableItem {
  const context = record.requestContext as Json | undefined;
  const requestId = context?.requestId;
  if (typeof requestId !== 'string' || !requestId) {
    return {
      ...(itemIdentifier ? { itemIdentifier } : {}),
      problem: 'the destination record has no requestContext.requestId',
    };
  }
  const response = record.responsePayload as Json | undefined;
  const errorType = isObject(response) ? stringOf(response.errorType) : undefined;
  const errorMessage = isObject(response) ? stringOf(response.errorMessage) : undefined;
  const condition = stringOf(context?.condition);
  const error = errorMessage ? `${errorType ?? 'Error'}: ${errorMessage}` : condition;
  const executedVersion = stringOf((record.responseContext as Json | undefined)?.executedVersion);
  return {
    ...(itemIdentifier ? { itemIdentifier } : {}),
    requestId,
    event: record.requestPayload,
    ...(typeof context?.functionArn === 'string' ? { functionArn: context.functionArn } : {}),
    ...(error ? { error } : {}),
    cause: failureCause({ errorType, errorMessage, condition, responded: response !== undefined }),
    ...(executedVersion ? { executedVersion } : {}),
  };
}

const stringOf = (value: unknown): string | undefined =>
  typeof value === 'string' && value ? value : undefined;

/** A message body or SNS message: a destination record, or the original event of a dead-letter message. */
function fromMessage(
  text: unknown,
  attributes: Record<string, string | undefined>,
  itemIdentifier?: string,
): FailedInvocation | UnreadableItem {
  const id = itemIdentifier ? { itemIdentifier } : {};
  let body: unknown;
  try {
    body = JSON.parse(String(text));
  } catch {
    body = text;
  }
  if (isObject(body) && isObject(body.requestContext) && 'requestPayload' in body) {
    return fromDestinationRecord(body, itemIdentifier);
  }
  const requestId = attributes.RequestID;
  if (!requestId) {
    return {
      ...id,
      problem:
        'the message is neither a destination record nor a dead-letter message (no RequestID attribute)',
    };
  }
  const error = [attributes.ErrorCode, attributes.ErrorMessage].filter(Boolean).join(': ');
  return {
    ...id,
    requestId,
    event: body,
    ...(error ? { error } : {}),
    cause: failureCause({ errorMessage: attributes.ErrorMessage }),
  };
}

/**
 * The failed invocations a safety-net event carries: an SQS batch or SNS notification (on-failure
 * destination records or legacy dead-letter messages), an EventBridge "Lambda Function Invocation
 * Result - Failure" event, or a destination record delivered directly to a function.
 *
 * @example
 * ```ts
 * import { failedInvocations } from '@immortal-lambda/middleware/safety-net';
 * const items = failedInvocations(sqsEvent); // one per record
 * ```
 */
export function failedInvocations(event: unknown): (FailedInvocation | UnreadableItem)[] {
  if (!isObject(event)) return [{ problem: 'the event is not an object' }];
  if (Array.isArray(event.Records)) {
    return event.Records.map((record: unknown) => {
      if (!isObject(record)) return { problem: 'a record is not an object' };
      if (record.eventSource === 'aws:sqs') {
        const attributes: Record<string, string | undefined> = {};
        for (const [name, value] of Object.entries((record.messageAttributes as Json | undefined) ?? {})) {
          attributes[name] = isObject(value) ? (value.stringValue as string | undefined) : undefined;
        }
        return fromMessage(record.body, attributes, String(record.messageId ?? ''));
      }
      if (record.EventSource === 'aws:sns' && isObject(record.Sns)) {
        const attributes: Record<string, string | undefined> = {};
        for (const [name, value] of Object.entries(
          (record.Sns.MessageAttributes as Json | undefined) ?? {},
        )) {
          attributes[name] = isObject(value) ? (value.Value as string | undefined) : undefined;
        }
        return fromMessage(record.Sns.Message, attributes);
      }
      return {
        problem: `records from ${String(record.eventSource ?? record.EventSource)} are not failure records`,
      };
    });
  }
  if (event.source === 'lambda' && isObject(event.detail)) return [fromDestinationRecord(event.detail)];
  if (isObject(event.requestContext) && 'requestPayload' in event) return [fromDestinationRecord(event)];
  return [
    {
      problem:
        'the event is not an SQS batch, an SNS notification, an EventBridge event or a destination record',
    },
  ];
}

export function isFailedInvocation(item: FailedInvocation | UnreadableItem): item is FailedInvocation {
  return 'requestId' in item;
}
