import type { Envelope, OutcomeError } from '@immortal-lambda/protocol';
import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
import { describeError } from '../logger.js';
import { BOUNDED_CLIENT } from '../sdk.js';
import type { FallbackLogger } from '../types.js';

let sdkClients: DestinationClients | undefined;

/** The destination module, loaded when a record is sent, and the clients given or made once. */
export async function destinationsWith(given: DestinationClients | undefined) {
  const module = await import('@immortal-lambda/protocol/destinations');
  if (!given) sdkClients ??= module.destinationClients(BOUNDED_CLIENT);
  return { module, clients: given ?? (sdkClients as DestinationClients) };
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
  clients: DestinationClients | undefined;
  now: number;
  logger: FallbackLogger;
  /** Where final failures go instead of the function's on-failure destination. */
  onFailure?: string | undefined;
  /** `FARGATE_FALLBACK_DESTINATIONS`: the function's destinations as deployed, by qualifier. */
  known?: string | undefined;
  /** Keeps a record too large for its destination whole, and resolves to where. */
  store?: ((body: string) => Promise<string>) | undefined;
}): Promise<void> {
  const requestId = input.envelope.invocation.awsRequestId;
  try {
    const { module, clients } = await destinationsWith(input.clients);
    const destination = await module.deliverOutcome({
      envelope: input.envelope,
      outcome: { ok: false, error: input.error },
      attempt: input.attempt,
      taskArn: input.taskArn,
      writer: 'watchdog',
      clients,
      now: input.now,
      onFailure: input.onFailure,
      known: module.parseKnownDestinations(input.known),
      ...(input.store ? { store: input.store } : {}),
    });
    if (destination)
      input.logger.info('The failure was sent to the function destination', { requestId, destination });
  } catch (error) {
    input.logger.error('The failure could not be sent to the function destination', {
      requestId,
      error: describeError(error),
    });
  }
}

/**
 * Sends a failure record `relaunchFailures` does not start (the handler's own error, a record
 * that does not say why) on to where final failures go, in Lambda's record shape. Throws when it
 * cannot be sent, so that the record is kept (a batch item failure, or Lambda's retry).
 */
export async function forwardFailure(input: {
  arn: string;
  requestId: string;
  functionArn: string;
  version: string;
  event: unknown;
  error: { name: string; message: string };
  clients: DestinationClients | undefined;
  now: number;
}): Promise<void> {
  const { module, clients } = await destinationsWith(input.clients);
  const record = module.destinationRecord({
    requestId: input.requestId,
    functionArn: input.functionArn,
    version: input.version,
    event: input.event,
    attempt: 1,
    writer: 'safety-net',
    outcome: { ok: false, error: input.error },
    now: input.now,
  });
  await module.sendToDestination(input.arn, record, clients);
}
