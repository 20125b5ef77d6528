import { describe, expect, it } from 'vitest';
import { deliverOutcome, knownFor, parseKnownDestinations } from '../../src/destinations.js';
import { createEnvelope } from '../../src/envelope.js';

const ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:report';
const KNOWN = JSON.stringify({
  $LATEST: { onSuccess: 'arn:aws:sqs:eu-west-1:123456789012:results' },
  live: { onFailure: 'arn:aws:sns:eu-west-1:123456789012:failures' },
});

/** Clients that record what is asked of Lambda and what is sent to SQS and SNS. */
function recording() {
  const asked: unknown[] = [];
  const sent: string[] = [];
  const sender = (name: string) => ({
    send: async (command: { input: unknown }) => {
      sent.push(`${name} ${JSON.stringify(command.input).slice(0, 80)}`);
      return { MessageId: 'm' };
    },
  });
  const clients = {
    lambda: () => ({
      send: async (command: { input: unknown }) => {
        asked.push(command.input);
        return {
          DestinationConfig: { OnSuccess: { Destination: 'arn:aws:sqs:eu-west-1:123456789012:asked' } },
        };
      },
    }),
    sqs: () => sender('sqs'),
    sns: () => sender('sns'),
  };
  return { clients, asked, sent };
}

const envelopeOf = (invokedFunctionArn: string) =>
  createEnvelope({
    event: { id: 1 },
    context: {
      awsRequestId: '0a0b0c0d-1111-4222-8333-000000000001',
      functionName: 'report',
      invokedFunctionArn,
      memoryLimitInMB: '1024',
    },
    env: { _HANDLER: 'index.handler', AWS_LAMBDA_FUNCTION_VERSION: '3' },
    startedAt: 1_000,
    deadlineAt: 2_000,
    handedOffAt: 1_500,
  });

/** Delivers an outcome of an invocation made through `invokedFunctionArn`, with the KNOWN setting. */
const deliver = (
  clients: ReturnType<typeof recording>['clients'],
  invokedFunctionArn: string,
  outcome: { ok: true; result: unknown } | { ok: false; error: { name: string; message: string } },
) =>
  deliverOutcome({
    envelope: envelopeOf(invokedFunctionArn),
    outcome,
    attempt: 1,
    writer: 'runner',
    clients,
    now: 0,
    known: parseKnownDestinations(KNOWN),
  });

describe('destinations taken from the deployment', () => {
  it('sends to the destination the deployment names for the qualifier invoked, asking Lambda nothing', async () => {
    // Prepare
    const { clients, asked, sent } = recording();

    // Act
    const unqualified = await deliver(clients, ARN, { ok: true, result: 1 });
    const live = await deliver(clients, `${ARN}:live`, {
      ok: false,
      error: { name: 'Error', message: 'no' },
    });

    // Assess
    expect(unqualified).toBe('arn:aws:sqs:eu-west-1:123456789012:results');
    expect(live).toBe('arn:aws:sns:eu-west-1:123456789012:failures');
    expect(asked).toEqual([]);
    expect(sent.map((line) => line.split(' ')[0])).toEqual(['sqs', 'sns']);
  });

  it('asks Lambda for a qualifier the deployment does not name (a version invoked by number)', async () => {
    // Prepare
    const { clients, asked } = recording();

    // Act
    const destination = await deliver(clients, `${ARN}:7`, { ok: true, result: 1 });

    // Assess
    expect(destination).toBe('arn:aws:sqs:eu-west-1:123456789012:asked');
    expect(asked).toEqual([{ FunctionName: ARN, Qualifier: '7' }]);
  });

  it('reads a qualifier with no destinations as none, and no setting as unknown', () => {
    expect(knownFor({ live: {} }, `${ARN}:live`)).toEqual({});
    expect(knownFor({ live: {} }, ARN)).toBeUndefined();
    expect(knownFor(parseKnownDestinations(''), ARN)).toBeUndefined();
    expect(knownFor({}, `${ARN}:constructor`)).toBeUndefined();
  });

  it.each([
    ['not JSON', '{"$LATEST":', /not JSON/],
    ['an array', '[]', /not an object/],
    ['another key', '{"$LATEST":{"onTimeout":"arn:aws:sqs:eu-west-1:1:q"}}', /\$LATEST\.onTimeout/],
    ['not an ARN', '{"live":{"onFailure":"my-queue"}}', /live\.onFailure is "my-queue"/],
  ])('refuses a setting that is %s, saying what to write', (_, text, why) => {
    expect(() => parseKnownDestinations(text)).toThrow(why);
    expect(() => parseKnownDestinations(text)).toThrow(/use \{"\$LATEST"/);
  });
});
