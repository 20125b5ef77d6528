import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetFunctionEventInvokeConfigCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  DestinationError,
  type DestinationOutcome,
  type DestinationRecord,
  destinationKind,
  destinationRecord,
} from './destination-record.js';
import { fitRecord, overLimit } from './destination-size.js';
import type { Envelope } from './envelope.js';
import { cachedRead, type ReadTiming, type Sender } from './lambda-reads.js';

export {
  DestinationError,
  type DestinationKind,
  type DestinationOutcome,
  type DestinationRecord,
  destinationKind,
  destinationRecord,
} from './destination-record.js';
export { DESTINATION_LIMITS, fitRecord } from './destination-size.js';

/**
 * The clients destinations are reached through, made on first use by the caller's factories.
 *
 * @example
 * ```ts
 * import { LambdaClient } from '@aws-sdk/client-lambda';
 * import { SQSClient } from '@aws-sdk/client-sqs';
 * import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
 * const clients: DestinationClients = { lambda: () => new LambdaClient({}), sqs: () => new SQSClient({}) };
 * ```
 */
export interface DestinationClients {
  lambda: () => Sender;
  sqs?: () => Sender;
  sns?: () => Sender;
  eventBridge?: () => Sender;
  s3?: () => Sender;
}

/** What every client made by {@link destinationClients} is built with. */
export interface ClientSettings {
  maxAttempts?: number;
  requestHandler?: unknown;
  region?: string;
  /** Credentials to sign with instead of the environment's (a caller acting as another role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** One endpoint for every client (a local control plane), instead of the SDK's own or `AWS_ENDPOINT_URL_*`. */
  endpoint?: string;
}

/**
 * Clients for every kind of destination, each made on first use with the same settings. The
 * SQS client sends to the endpoint it is configured with (`AWS_ENDPOINT_URL_SQS` included), not
 * to the host of the queue URL.
 *
 * @example
 * ```ts
 * import { destinationClients } from '@immortal-lambda/protocol/destinations';
 * const clients = destinationClients({ maxAttempts: 3 });
 * ```
 */
export function destinationClients(settings: ClientSettings = {}, lambda?: Sender): DestinationClients {
  const once = <T>(make: () => T) => {
    let made: T | undefined;
    return () => {
      made ??= make();
      return made;
    };
  };
  const config = settings as Record<string, unknown>;
  return {
    lambda: lambda ? () => lambda : once(() => new LambdaClient(config)),
    sqs: once(() => new SQSClient({ ...config, useQueueUrlAsEndpoint: false })),
    sns: once(() => new SNSClient(config)),
    eventBridge: once(() => new EventBridgeClient(config)),
    s3: once(() => new S3Client(config)),
  };
}

/**
 * A function's async-invocation destinations.
 *
 * @example
 * ```ts
 * import type { Destinations } from '@immortal-lambda/protocol/destinations';
 * const any = (d: Destinations) => Boolean(d.onSuccess || d.onFailure);
 * ```
 */
export interface Destinations {
  onSuccess?: string;
  onFailure?: string;
}

export { DESTINATIONS_CACHE_MS, functionVariables, type ReadTiming } from './lambda-reads.js';

/**
 * The destinations of the function as it was invoked (the alias or version of the invoked ARN,
 * else the unqualified function), from GetFunctionEventInvokeConfig. None configured: `{}`.
 * Lambda's control-plane calls share a per-account quota that a burst of runners or a busy
 * watchdog can exhaust, so an answer is kept for {@link DESTINATIONS_CACHE_MS} per invoked ARN,
 * and a throttled call is tried again with backoff (100 ms doubling, 5 calls in all).
 *
 * @example
 * ```ts
 * import { findDestinations } from '@immortal-lambda/protocol/destinations';
 * const { onFailure } = await findDestinations(lambda, 'arn:aws:lambda:eu-west-1:123456789012:function:report:live');
 * ```
 */
export function findDestinations(
  lambda: Sender,
  invokedFunctionArn: string,
  options: ReadTiming = {},
): Promise<Destinations> {
  return cachedRead(lambda, invokedFunctionArn, () => readDestinations(lambda, invokedFunctionArn), options);
}

/** An invoked function ARN as the unqualified function and the qualifier it was invoked by, if any. */
function splitInvokedArn(arn: string): { functionName: string; qualifier: string | undefined } {
  const match = /^(arn:aws[a-z-]*:lambda:[^:]+:\d+:function:[^:]+)(?::(.+))?$/.exec(arn);
  return { functionName: match?.[1] ?? arn, qualifier: match?.[2] };
}

async function readDestinations(lambda: Sender, invokedFunctionArn: string): Promise<Destinations> {
  const { functionName, qualifier } = splitInvokedArn(invokedFunctionArn);
  const command = new GetFunctionEventInvokeConfigCommand({
    FunctionName: functionName,
    ...(qualifier ? { Qualifier: qualifier } : {}),
  });
  try {
    const config = (await lambda.send(command)) as {
      DestinationConfig?: { OnSuccess?: { Destination?: string }; OnFailure?: { Destination?: string } };
    };
    const onSuccess = config.DestinationConfig?.OnSuccess?.Destination;
    const onFailure = config.DestinationConfig?.OnFailure?.Destination;
    return { ...(onSuccess ? { onSuccess } : {}), ...(onFailure ? { onFailure } : {}) };
  } catch (error) {
    if ((error as { name?: string }).name === 'ResourceNotFoundException') return {};
    throw error;
  }
}

/**
 * Sends a record to a destination the way Lambda does: an SQS message body, an SNS message, an
 * EventBridge event (`source: lambda`, detail-type `Lambda Function Invocation Result - Success`
 * or `- Failure`), an asynchronous Lambda invocation, or an S3 object under `aws/lambda/async/`.
 *
 * @example
 * ```ts
 * import { sendToDestination } from '@immortal-lambda/protocol/destinations';
 * await sendToDestination('arn:aws:sqs:eu-west-1:123456789012:results', record, clients);
 * ```
 */
export async function sendToDestination(
  arn: string,
  record: DestinationRecord,
  clients: DestinationClients,
): Promise<void> {
  const kind = destinationKind(arn);
  const body = JSON.stringify(record);
  const client = (factory: (() => Sender) | undefined): Sender => {
    if (!factory) throw new DestinationError(`no ${kind} client was given to send to ${arn}`);
    return factory();
  };
  switch (kind) {
    case 'sqs': {
      const [, , , region, account, queue] = arn.split(':');
      const queueUrl = `https://sqs.${region}.amazonaws.com/${account}/${queue}`;
      await client(clients.sqs).send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
      return;
    }
    case 'sns':
      await client(clients.sns).send(new PublishCommand({ TopicArn: arn, Message: body }));
      return;
    case 'eventbridge': {
      const detailType = `Lambda Function Invocation Result - ${record.requestContext.condition === 'Success' ? 'Success' : 'Failure'}`;
      const answer = (await client(clients.eventBridge).send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: arn,
              Source: 'lambda',
              DetailType: detailType,
              Detail: body,
              Resources: [record.requestContext.functionArn],
            },
          ],
        }),
      )) as { FailedEntryCount?: number; Entries?: { ErrorMessage?: string }[] };
      if (answer.FailedEntryCount) {
        throw new DestinationError(
          `EventBridge refused the record for ${arn}: ${answer.Entries?.[0]?.ErrorMessage}`,
        );
      }
      return;
    }
    case 'lambda':
      await client(clients.lambda).send(
        new InvokeCommand({
          FunctionName: arn,
          InvocationType: 'Event',
          Payload: new TextEncoder().encode(body),
        }),
      );
      return;
    case 's3': {
      const bucket = arn.split(':').at(-1) as string;
      const name = /:function:([^:]+)/.exec(record.requestContext.functionArn)?.[1] ?? 'function';
      const at = record.timestamp.replace(/:/g, '.').slice(0, 19);
      await client(clients.s3).send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `aws/lambda/async/${name}/${at.slice(0, 10).replace(/-/g, '/')}/${at}-${record.requestContext.requestId}`,
          Body: body,
          ContentType: 'application/json',
        }),
      );
      return;
    }
  }
}

/**
 * Sends an invocation's final outcome where the function sends its own: a success to its
 * on-success destination, a failure to its on-failure destination, in Lambda's record shape.
 * Resolves to the destination it sent to, or `undefined` when the function has none for it.
 *
 * @example
 * ```ts
 * import { deliverOutcome, destinationClients } from '@immortal-lambda/protocol/destinations';
 * const sentTo = await deliverOutcome({
 *   envelope, outcome: { ok: true, result }, attempt: 1, writer: 'runner', clients: destinationClients(), now: Date.now(),
 * });
 * ```
 */
export async function deliverOutcome(input: {
  envelope: Envelope;
  outcome: DestinationOutcome;
  attempt: number;
  taskArn?: string | undefined;
  writer: 'runner' | 'watchdog';
  clients: DestinationClients;
  now: number;
  /** A failure's destination when it is not the function's own (the watchdog's final failures). */
  onFailure?: string | undefined;
  /** The destinations the deployment configures, by qualifier: Lambda is asked only for others. */
  known?: KnownDestinations | undefined;
  /**
   * Keeps a record over the destination's size limit whole (in the payload bucket) and resolves
   * to where: the destination then gets the record with a pointer there instead of the event and
   * response ({@link fitRecord}).
   */
  store?: (body: string) => Promise<string>;
}): Promise<string | undefined> {
  const { envelope } = input;
  const arn =
    !input.outcome.ok && input.onFailure
      ? input.onFailure
      : await destinationFor(
          input.outcome.ok,
          input.clients,
          envelope.invocation.invokedFunctionArn,
          input.known,
        );
  if (!arn) return undefined;
  const record = destinationRecord({
    requestId: envelope.invocation.awsRequestId,
    functionArn: envelope.invocation.invokedFunctionArn,
    version: envelope.function.version,
    event: envelope.event,
    attempt: input.attempt,
    ...(input.taskArn ? { taskArn: input.taskArn } : {}),
    writer: input.writer,
    outcome: input.outcome,
    now: input.now,
  });
  const body = JSON.stringify(record);
  const kind = destinationKind(arn);
  const location = overLimit(body, kind) && input.store ? await input.store(body) : undefined;
  await sendToDestination(arn, fitRecord(record, body, kind, location), input.clients);
  return arn;
}

async function destinationFor(
  ok: boolean,
  clients: DestinationClients,
  functionArn: string,
  known: KnownDestinations | undefined,
): Promise<string | undefined> {
  const found = knownFor(known, functionArn) ?? (await findDestinations(clients.lambda(), functionArn));
  return ok ? found.onSuccess : found.onFailure;
}

/**
 * A function's destinations by qualifier, as its deployment configures them (`$LATEST` for the
 * function itself, else an alias name): what `FARGATE_FALLBACK_DESTINATIONS` holds.
 *
 * @example
 * ```ts
 * import type { KnownDestinations } from '@immortal-lambda/protocol/destinations';
 * const known: KnownDestinations = { $LATEST: { onFailure: 'arn:aws:sqs:eu-west-1:123456789012:failures' } };
 * ```
 */
export type KnownDestinations = Readonly<Record<string, Destinations>>;

/**
 * The known destinations of the qualifier an invocation was made through (none: `$LATEST`), or
 * `undefined` when the deployment did not name that qualifier (Lambda is asked then).
 *
 * @example
 * ```ts
 * import { knownFor } from '@immortal-lambda/protocol/destinations';
 * const live = knownFor({ live: {} }, 'arn:aws:lambda:eu-west-1:123456789012:function:report:live'); // {}
 * ```
 */
export function knownFor(
  known: KnownDestinations | undefined,
  functionArn: string,
): Destinations | undefined {
  if (!known) return undefined;
  const qualifier = splitInvokedArn(functionArn).qualifier ?? '$LATEST';
  return Object.hasOwn(known, qualifier) ? known[qualifier] : undefined;
}

export { parseKnownDestinations } from './known-destinations.js';
