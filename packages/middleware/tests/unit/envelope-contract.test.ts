import { ECSClient, ListTasksCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createCore, handoffTarget } from '../../src/core.js';
import { HandoffError } from '../../src/errors.js';
import { ENV, parseEnvelope } from '../../src/protocol/index.js';
import { lambdaContext, lambdaEnv, memoryLogger } from '../helpers/lambda.js';

const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef';
const ecs = mockClient(ECSClient);

afterAll(() => {
  ecs.restore();
});

/** Values a careless caller may put where Lambda puts strings. */
const loose = fc.oneof(
  fc.string(),
  fc.constant(''),
  fc.constant(undefined),
  fc.constant(null),
  fc.integer(),
  fc.array(fc.string(), { maxLength: 2 }),
);
const handlerSetting = fc.oneof(
  fc.constantFrom(
    undefined,
    '',
    'index.handler',
    'src/jobs/report.run',
    '../x/evil.handler',
    '/abs/h.handler',
  ),
  fc.string({ maxLength: 20 }),
);
const context = fc.record(
  {
    awsRequestId: fc.oneof(fc.uuid(), loose),
    functionName: fc.oneof(fc.constant('report-job'), loose),
    invokedFunctionArn: fc.oneof(
      fc.constant('arn:aws:lambda:eu-west-1:123456789012:function:report-job'),
      loose,
    ),
    logGroupName: loose,
    logStreamName: loose,
    memoryLimitInMB: fc.oneof(fc.constant('1024'), loose),
    identity: fc.oneof(
      fc.constant(undefined),
      fc.constant(null),
      fc.record({ cognitoIdentityId: fc.string(), cognitoIdentityPoolId: fc.string() }),
      fc.array(fc.string(), { maxLength: 1 }),
      fc.string(),
    ),
    clientContext: fc.oneof(fc.constant(undefined), fc.jsonValue()),
  },
  { requiredKeys: [] },
);
const event = fc.oneof(fc.jsonValue(), fc.anything(), fc.constant(undefined), fc.func(fc.string()));

describe('the envelope contract: what the handoff writes, the runner reads', () => {
  it('property: every handoff either fails before RunTask or sends an envelope the runner parses', async () => {
    await fc.assert(
      fc.asyncProperty(event, context, handlerSetting, async (generatedEvent, fields, handler) => {
        // Prepare
        ecs.reset();
        ecs.on(ListTasksCommand).resolves({ taskArns: [] });
        ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
        const core = createCore(
          { logger: memoryLogger(), ecsClient: new ECSClient({ region: 'eu-west-1' }), random: () => 0 },
          lambdaEnv({ _HANDLER: handler }),
        );
        const lambda = { ...lambdaContext(30_000), ...fields } as unknown as Context;

        // Act
        let outcome: unknown;
        try {
          outcome = await core.handoff.handOff(handoffTarget(core, generatedEvent, lambda, 30_000));
        } catch (error) {
          outcome = error;
        }

        // Assess
        const calls = ecs.commandCalls(RunTaskCommand);
        if (outcome instanceof HandoffError) {
          expect(['invalid-context', 'unserializable-event']).toContain(outcome.reason);
          expect(calls).toHaveLength(0);
          return;
        }
        expect(calls).toHaveLength(1);
        const value = calls[0]?.args[0].input.overrides?.containerOverrides?.[0]?.environment?.find(
          (e) => e.name === ENV.envelope,
        )?.value;
        const envelope = parseEnvelope(String(value));
        expect(envelope.event).toEqual(JSON.parse(JSON.stringify(generatedEvent ?? null)));
        expect(envelope.invocation.awsRequestId).toBe(lambda.awsRequestId);
      }),
      { numRuns: 300 },
    );
  });
});
