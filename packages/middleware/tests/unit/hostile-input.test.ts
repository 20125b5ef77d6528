import { ECSClient, ListTasksCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError, HandoffError } from '../../src/errors.js';
import { parseEnvelope } from '../../src/protocol/index.js';
import type { FargateFallbackOptions, HandoffReceipt } from '../../src/types.js';
import { adapters } from '../helpers/adapters.js';
import {
  envelopeOf,
  lambdaContext,
  lambdaEnv,
  memoryLogger,
  mockedOptions,
  untilAborted,
} from '../helpers/lambda.js';

const MARGIN = 1_000;
const REMAINING = MARGIN + 60;
const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef';

const cyclic = () => {
  const value: Record<string, unknown> = { name: 'loop' };
  value.self = value;
  return value;
};

describe.each(adapters)('$name with hostile and careless input', (adapter) => {
  const ecs = mockClient(ECSClient);
  let logger: ReturnType<typeof memoryLogger>;
  let options: FargateFallbackOptions;

  beforeEach(() => {
    ecs.reset();
    ecs.on(ListTasksCommand).resolves({ taskArns: [] });
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
    logger = memoryLogger();
    options = mockedOptions(logger, MARGIN);
  });

  afterEach(() => {
    ecs.reset();
  });

  const handOff = (event: unknown, context: Context, extra: Partial<FargateFallbackOptions> = {}) =>
    adapter.wrap(untilAborted, { ...options, ...extra })(event, context);

  it.each([
    ['a function', () => 'event'],
    ['a Symbol', Symbol('event')],
    ['a value whose toJSON() returns undefined', { toJSON: () => undefined }],
  ])('fails loudly before RunTask for a top-level event that is %s', async (_what, event) => {
    // Act
    const outcome = handOff(event, lambdaContext(REMAINING));

    // Assess
    await expect(outcome).rejects.toBeInstanceOf(HandoffError);
    await expect(outcome).rejects.toMatchObject({ reason: 'unserializable-event' });
    await expect(outcome).rejects.toThrow(/the event cannot be carried/);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it.each([
    ['an empty awsRequestId', { awsRequestId: '' }, /context.awsRequestId is empty/],
    ['a missing awsRequestId', { awsRequestId: undefined }, /context.awsRequestId is missing/],
    ['a numeric awsRequestId', { awsRequestId: 42 }, /context.awsRequestId is a number/],
    ['an empty functionName', { functionName: '' }, /context.functionName is empty/],
    ['an identity given as an array', { identity: [] }, /invocation.identity must be an object .*an array/],
  ])('fails loudly before RunTask, reason invalid-context, for %s', async (_what, overrides, message) => {
    // Prepare
    const context = lambdaContext(REMAINING, overrides as unknown as Partial<Context>);

    // Act
    const outcome = handOff({}, context);

    // Assess
    await expect(outcome).rejects.toMatchObject({ name: 'HandoffError', reason: 'invalid-context' });
    await expect(outcome).rejects.toThrow(message);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it.each([
    ['identity', { identity: { cognitoIdentityId: 10n, cognitoIdentityPoolId: 'p' } }, 'context.identity'],
    ['clientContext', { clientContext: cyclic() }, 'context.clientContext'],
  ])('names %s when it cannot be serialised', async (_what, overrides, field) => {
    // Act
    const outcome = handOff({}, lambdaContext(REMAINING, overrides as unknown as Partial<Context>));

    // Assess
    await expect(outcome).rejects.toMatchObject({ reason: 'unserializable-event' });
    await expect(outcome).rejects.toThrow(`${field} cannot be serialised`);
  });

  it('refuses a _HANDLER that would load a module outside the task root, before RunTask', async () => {
    // Act
    const outcome = handOff({}, lambdaContext(REMAINING), {
      env: lambdaEnv({ _HANDLER: '../../x/evil.handler' }),
    });

    // Assess
    await expect(outcome).rejects.toMatchObject({ reason: 'invalid-context' });
    await expect(outcome).rejects.toThrow(
      /function.handler "..\/..\/x\/evil.handler" climbs out of the task root/,
    );
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it.each([
    ['unset', undefined],
    ['empty', ''],
  ])('hands off with _HANDLER %s: the runner uses the configured handler', async (_what, value) => {
    // Act
    const receipt = (await handOff({ a: 1 }, lambdaContext(REMAINING), {
      env: lambdaEnv({ _HANDLER: value }),
    })) as HandoffReceipt;

    // Assess
    expect(receipt.taskArn).toBe(TASK_ARN);
    const envelope = parseEnvelope(envelopeOf(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input));
    expect(envelope.function.handler).toBeUndefined();
    expect(envelope.event).toEqual({ a: 1 });
  });

  it('carries a context without log group or stream, as some harnesses pass it', async () => {
    // Act
    const receipt = (await handOff(
      {},
      lambdaContext(REMAINING, {
        logGroupName: undefined,
        logStreamName: undefined,
      } as unknown as Partial<Context>),
    )) as HandoffReceipt;

    // Assess
    expect(receipt.taskArn).toBe(TASK_ARN);
    const envelope = parseEnvelope(envelopeOf(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input));
    expect(envelope.invocation.logGroupName).toBeUndefined();
  });

  it('keeps a confirmed handoff when the logger throws', async () => {
    // Prepare
    const throwing = {
      info: () => {
        throw new Error('log sink down');
      },
      error: () => {
        throw new Error('log sink down');
      },
    };

    // Act
    const receipt = (await handOff({}, lambdaContext(REMAINING), { logger: throwing })) as HandoffReceipt;

    // Assess
    expect(receipt).toMatchObject({ status: 'handed-off', taskArn: TASK_ARN });
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
  });

  it('returns the receipt when handoffResponse throws, and logs why', async () => {
    // Act
    const response = await handOff({}, lambdaContext(REMAINING), {
      handoffResponse: () => {
        throw new Error('template missing');
      },
    });

    // Assess
    expect(response).toMatchObject({ status: 'handed-off', taskArn: TASK_ARN });
    const record = logger.records.find((r) => r.message.includes('handoffResponse threw'));
    expect(record?.attributes).toMatchObject({ taskArn: TASK_ARN, error: { message: 'template missing' } });
  });

  it.each([
    [
      'handoffResponse that is not a function',
      { handoffResponse: 202 },
      /handoffResponse must be a function/,
    ],
    [
      'routeToFargate that is not a function',
      { routeToFargate: true },
      /routeToFargate must be a function \(event, context\) => boolean, got a boolean/,
    ],
    ['logger without methods', { logger: { log: () => {} } }, /logger must be a logger/],
    ['cluster that is a number', { cluster: 42 }, /cluster must be a string, got a number/],
    ['marginMs that is an array', { marginMs: [] }, /marginMs an array must be a whole number/],
  ])('refuses a %s when wrapping, with a ConfigurationError', (_what, extra, message) => {
    // Act
    const wrapping = () => adapter.wrap(untilAborted, { ...options, ...(extra as object) });

    // Assess
    expect(wrapping).toThrow(ConfigurationError);
    expect(wrapping).toThrow(message);
  });

  it('refuses null options with a ConfigurationError', () => {
    expect(() => adapter.wrap(untilAborted, null as unknown as FargateFallbackOptions)).toThrow(
      /the options must be an object .* got null/,
    );
  });

  it('warns once, when wrapping, about option names that are not options', () => {
    // Act
    adapter.wrap(untilAborted, { ...options, marginMS: 5_000, cluser: 'jobs' } as FargateFallbackOptions);

    // Assess
    expect(logger.records).toHaveLength(1);
    expect(logger.records[0]?.message).toBe(
      'immortal-lambda ignores unknown options: marginMS (did you mean marginMs?), cluser (did you mean cluster?)',
    );
  });
});
