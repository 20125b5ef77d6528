import { ECSClient } from '@aws-sdk/client-ecs';
import { LocalControlPlane, NoLauncher } from '@immortal-lambda/local';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HandoffReceipt } from '../../src/types.js';
import { adapters } from '../helpers/adapters.js';
import { lambdaContext, lambdaEnv, memoryLogger, untilAborted } from '../helpers/lambda.js';

const MARGIN = 2_000;
// The handoff comes 100 ms in, with two seconds before its guard for the calls against the plane.
const REMAINING = MARGIN + 100;
const SUBNETS = ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'];

// ECS's documentation does not say whether a client token whose RunTask answered only failures is
// remembered: the handoff must keep an invocation to one task either way.
describe.each([
  { remembered: false, name: 'failed tokens forgotten' },
  { remembered: true, name: 'failed tokens remembered' },
])('client tokens against the local plane, $name', ({ remembered }) => {
  const plane = new LocalControlPlane({
    launcher: new NoLauncher(),
    clusters: ['jobs'],
    subnets: SUBNETS,
    rememberFailedTokens: remembered,
  });
  let ecsClient: ECSClient;

  beforeAll(async () => {
    const endpoint = await plane.start();
    plane.registerTaskDefinition({ family: 'immortal-runner', containerName: 'runner', environment: {} });
    ecsClient = new ECSClient({
      region: 'eu-west-1',
      endpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  });

  afterAll(async () => {
    await plane.stop();
  });

  beforeEach(() => {
    plane.resetRecords();
  });

  const count = (action: string) => plane.calls.filter((call) => call === `ECS.${action}`).length;

  describe.each(adapters)('$name', (adapter) => {
    const wrap = (capacity: 'FARGATE_SPOT,FARGATE' | 'FARGATE' = 'FARGATE_SPOT,FARGATE') =>
      adapter.wrap(untilAborted, {
        env: lambdaEnv(),
        marginMs: MARGIN,
        logger: memoryLogger(),
        metrics: false,
        ecsClient,
        capacity,
      });

    it('starts the task of a first attempt with one RunTask and no other ECS call', async () => {
      // Act
      const receipt = (await wrap()({ n: 1 }, lambdaContext(REMAINING))) as HandoffReceipt;

      // Assess
      expect(plane.task(receipt.taskArn)).toBeDefined();
      expect(plane.calls).toEqual(['ECS.RunTask']);
    });

    it('keeps a retried invocation to the one task it started after Spot had no capacity', async () => {
      // Prepare: Spot has no capacity for the first call only
      plane.resetRecords({ capacityNext: 1 });
      const context = lambdaContext(REMAINING);
      const handler = wrap();

      // Act: the invocation, then Lambda's retry of the same request id (a later envelope)
      const first = (await handler({ n: 1 }, context)) as HandoffReceipt;
      const firstCalls = [...plane.calls];
      const again = lambdaContext(REMAINING, { awsRequestId: context.awsRequestId });
      const retry = (await handler({ n: 1 }, again)) as HandoffReceipt;

      // Assess
      expect(first.capacityProvider).toBe('FARGATE');
      expect(retry.taskArn).toBe(first.taskArn);
      const ofInvocation = plane.tasks().filter((task) => task.startedBy?.endsWith(context.awsRequestId));
      expect(ofInvocation.map((task) => task.arn)).toEqual([first.taskArn]);
      // Forgotten: Spot's failure, then on-demand under the same token. Remembered: on-demand meets
      // a conflict naming no task, so a token of its own is tried, guarded by look-ups.
      expect(firstCalls).toEqual(
        remembered
          ? ['ECS.RunTask', 'ECS.RunTask', 'ECS.ListTasks', 'ECS.ListTasks', 'ECS.RunTask', 'ECS.ListTasks']
          : ['ECS.RunTask', 'ECS.RunTask'],
      );
      expect(count('RunTask')).toBeGreaterThan(firstCalls.filter((c) => c === 'ECS.RunTask').length);
    });

    it('keeps a retried invocation to one task after on-demand alone had no capacity at first', async () => {
      // Prepare: no capacity for the first call only
      plane.resetRecords({ capacityNext: 1 });
      const context = lambdaContext(REMAINING);
      const handler = wrap('FARGATE');

      // Act: the invocation, then Lambda's retry of the same request id (a later envelope)
      const first = (await handler({ n: 1 }, context)) as HandoffReceipt;
      const again = lambdaContext(REMAINING, { awsRequestId: context.awsRequestId });
      const retry = (await handler({ n: 1 }, again)) as HandoffReceipt;

      // Assess
      expect(retry.taskArn).toBe(first.taskArn);
      const ofInvocation = plane.tasks().filter((task) => task.startedBy?.endsWith(context.awsRequestId));
      expect(ofInvocation.map((task) => task.arn)).toEqual([first.taskArn]);
      const tokens = plane.runTaskRequests().map((request) => request.clientToken);
      // Forgotten: the tagged retry starts the task under the invocation's token. Remembered: it
      // meets a conflict naming no task, and a token of its own starts it.
      expect(tokens.slice(0, remembered ? 3 : 2)).toEqual(
        remembered
          ? [context.awsRequestId, context.awsRequestId, `${context.awsRequestId}-p1`]
          : [context.awsRequestId, context.awsRequestId],
      );
    });
  });
});
