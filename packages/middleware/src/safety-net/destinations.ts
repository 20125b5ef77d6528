import type { DestinationRecord, Envelope, OutcomeError } from '@immortal-lambda/protocol';
import { destinationRecord } from '@immortal-lambda/protocol';
import { describeError } from '../logger.js';
import type { FallbackLogger } from '../types.js';

/**
 * How the safety net reaches a function's destinations: finds the on-failure destination of the
 * ARN the function was invoked by, and sends a record there. The default uses the AWS SDK
 * (`@immortal-lambda/protocol/destinations`).
 *
 * @example
 * ```ts
 * import type { DestinationSender } from '@immortal-lambda/middleware/safety-net';
 * const sent: unknown[] = [];
 * const destinations: DestinationSender = { onFailure: async () => 'arn:aws:sqs:eu-west-1:123456789012:q', send: async (_arn, record) => { sent.push(record); } };
 * ```
 */
export interface DestinationSender {
  onFailure(invokedFunctionArn: string): Promise<string | undefined>;
  send(arn: string, record: DestinationRecord): Promise<void>;
}

let sdkSender: DestinationSender | undefined;

async function defaultSender(): Promise<DestinationSender> {
  if (sdkSender) return sdkSender;
  const { destinationClients, findDestinations, sendToDestination } = await import(
    '@immortal-lambda/protocol/destinations'
  );
  const clients = destinationClients({ maxAttempts: 3 });
  sdkSender = {
    onFailure: async (arn) => (await findDestinations(clients.lambda(), arn)).onFailure,
    send: (arn, record) => sendToDestination(arn, record, clients),
  };
  return sdkSender;
}

/**
 * Sends an invocation's final failure to its on-failure destination, in Lambda's record shape.
 * A destination that cannot be reached is logged as an error: the failure is already recorded.
 */
export async function sendFailure(input: {
  envelope: Envelope;
  error: OutcomeError;
  attempt: number;
  taskArn: string | undefined;
  destinations: DestinationSender | undefined;
  now: number;
  logger: FallbackLogger;
}): Promise<void> {
  const { envelope } = input;
  const requestId = envelope.invocation.awsRequestId;
  try {
    const sender = input.destinations ?? (await defaultSender());
    const arn = await sender.onFailure(envelope.invocation.invokedFunctionArn);
    if (!arn) return;
    await sender.send(
      arn,
      destinationRecord({
        requestId,
        functionArn: envelope.invocation.invokedFunctionArn,
        version: envelope.function.version,
        event: envelope.event,
        attempt: input.attempt,
        ...(input.taskArn ? { taskArn: input.taskArn } : {}),
        writer: 'watchdog',
        outcome: { ok: false, error: input.error },
        now: input.now,
      }),
    );
    input.logger.info('The failure was sent to the function destination', { requestId, destination: arn });
  } catch (error) {
    input.logger.error('The failure could not be sent to the function destination', {
      requestId,
      error: describeError(error),
    });
  }
}
