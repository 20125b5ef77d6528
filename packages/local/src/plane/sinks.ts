import { createHash, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/**
 * A message the plane took in where a Lambda destination (or anything else) sends one: an SQS
 * message, an SNS publication, an EventBridge event, or an asynchronous Lambda invocation.
 *
 * @example
 * ```ts
 * import type { Delivery } from '@immortal-lambda/local';
 * const bodies = (deliveries: Delivery[]) => deliveries.map((d) => JSON.parse(d.payload));
 * ```
 */
export interface Delivery {
  service: 'sqs' | 'sns' | 'eventbridge' | 'lambda';
  /** The queue URL, topic ARN, event bus, or function name. */
  target: string;
  /** The message body, SNS message, event detail, or invocation payload, as sent. */
  payload: string;
  /** EventBridge only: the event's source and detail-type. */
  source?: string;
  detailType?: string;
  /** SNS and SQS only: the message attributes, by name. */
  attributes?: Record<string, string>;
}

/** The X-Amz-Target prefixes of SQS's JSON 1.0 and EventBridge's JSON 1.1 protocols. */
export const SQS_TARGET = 'AmazonSQS.';
export const EVENTS_TARGET = 'AWSEvents.';

const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

/** Answers SQS SendMessage (JSON 1.0), recording the message. */
export function answerSqs(
  action: string,
  body: Record<string, unknown>,
  deliver: (delivery: Delivery) => void,
  response: ServerResponse,
): void {
  const json = (status: number, payload: unknown, type?: string) => {
    response.writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      ...(type ? { 'x-amzn-query-error': `${type};Sender` } : {}),
    });
    response.end(JSON.stringify(type ? { __type: `com.amazonaws.sqs#${type}`, message: payload } : payload));
  };
  if (action !== 'SendMessage') {
    json(400, `the local control plane does not serve SQS ${action}`, 'UnsupportedOperation');
    return;
  }
  const message = String(body.MessageBody ?? '');
  deliver({ service: 'sqs', target: String(body.QueueUrl ?? ''), payload: message });
  // The SDK checks the body's MD5 against the answer, as SQS computes it.
  json(200, { MessageId: randomUUID(), MD5OfMessageBody: md5(message) });
}

/** Answers EventBridge PutEvents (JSON 1.1), recording each entry. */
export function answerEvents(
  action: string,
  body: Record<string, unknown>,
  deliver: (delivery: Delivery) => void,
  response: ServerResponse,
): void {
  response.setHeader('content-type', 'application/x-amz-json-1.1');
  if (action !== 'PutEvents') {
    response.writeHead(400, { 'x-amzn-errortype': 'UnknownOperationException' });
    response.end(JSON.stringify({ message: `the local control plane does not serve EventBridge ${action}` }));
    return;
  }
  const entries = (body.Entries as Record<string, string>[] | undefined) ?? [];
  for (const entry of entries) {
    deliver({
      service: 'eventbridge',
      target: entry.EventBusName ?? 'default',
      payload: entry.Detail ?? '{}',
      ...(entry.Source ? { source: entry.Source } : {}),
      ...(entry.DetailType ? { detailType: entry.DetailType } : {}),
    });
  }
  response.writeHead(200);
  response.end(
    JSON.stringify({ FailedEntryCount: 0, Entries: entries.map(() => ({ EventId: randomUUID() })) }),
  );
}

/** Answers SNS Publish (the query protocol: a form body, an XML answer), recording the message. */
export function answerSns(
  form: URLSearchParams,
  deliver: (delivery: Delivery) => void,
  response: ServerResponse,
): void {
  response.setHeader('content-type', 'text/xml');
  if (form.get('Action') !== 'Publish') {
    response.writeHead(400);
    response.end(
      `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>the local control plane does not serve SNS ${form.get('Action')}</Message></Error></ErrorResponse>`,
    );
    return;
  }
  const attributes: Record<string, string> = {};
  for (let i = 1; form.has(`MessageAttributes.entry.${i}.Name`); i++) {
    attributes[String(form.get(`MessageAttributes.entry.${i}.Name`))] = String(
      form.get(`MessageAttributes.entry.${i}.Value.StringValue`) ?? '',
    );
  }
  deliver({
    service: 'sns',
    target: String(form.get('TopicArn') ?? ''),
    payload: String(form.get('Message') ?? ''),
    ...(Object.keys(attributes).length > 0 ? { attributes } : {}),
  });
  response.writeHead(200);
  response.end(
    `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>${randomUUID()}</MessageId></PublishResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`,
  );
}
