import { join } from 'node:path';
import { ECSClient, ListTasksCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { NoLauncher } from '../../src/launcher.js';
import { AWS_LIMITS, RateLimiter } from '../../src/plane/limits.js';
import { LocalControlPlane } from '../../src/plane.js';

const echo = join(import.meta.dirname, '..', 'fixtures', 'echo');
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

describe('RateLimiter', () => {
  it('gives a burst, then refills at the sustained rate from the clock it is given', () => {
    // Prepare
    let now = 0;
    const limiter = new RateLimiter({ runTask: { burst: 3, perSecond: 2, source: 'test' } }, () => now);

    // Act
    const burst = [1, 2, 3, 4].map(() => limiter.take('runTask'));
    now = 499;
    const tooSoon = limiter.take('runTask');
    now = 500;
    const refilled = [limiter.take('runTask'), limiter.take('runTask')];
    now = 60_000;
    const afterAWhile = [1, 2, 3, 4].map(() => limiter.take('runTask'));

    // Assess
    expect(burst).toEqual([true, true, true, false]);
    expect(tooSoon).toBe(false);
    expect(refilled).toEqual([true, false]);
    expect(afterAWhile).toEqual([true, true, true, false]);
    expect(limiter.refused.get('runTask')).toBe(4);
    expect(limiter.take('getFunction')).toBe(true);
  });

  it("holds AWS's documented rates, each with its source", () => {
    // Assess
    expect(AWS_LIMITS.fargateLaunches).toMatchObject({ burst: 100, perSecond: 20 });
    expect(AWS_LIMITS.runTask).toMatchObject({ burst: 20, perSecond: 20 });
    expect(AWS_LIMITS.lambdaControl).toMatchObject({ burst: 15, perSecond: 15 });
    for (const limit of Object.values(AWS_LIMITS))
      expect(limit.source).toMatch(/^https:\/\/docs\.aws\.amazon\.com\//);
  });
});

describe("LocalControlPlane with limits: 'aws'", () => {
  let plane: LocalControlPlane | undefined;

  afterEach(async () => {
    await plane?.stop();
    plane = undefined;
  });

  const start = async (now: () => number) => {
    plane = new LocalControlPlane({ launcher: new NoLauncher(), limits: 'aws', now });
    plane.registerFunction({ name: 'echo', folder: echo, handler: 'index.handler' });
    const url = await plane.start();
    return {
      ecs: new ECSClient({ endpoint: url, region: 'eu-west-1', credentials, maxAttempts: 1 }),
      lambda: new LambdaClient({ endpoint: url, region: 'eu-west-1', credentials, maxAttempts: 1 }),
    };
  };

  const runTask = (ecs: ECSClient, n: number) =>
    ecs.send(
      new RunTaskCommand({
        cluster: 'local',
        taskDefinition: 'immortal-runner',
        launchType: 'FARGATE',
        clientToken: `burst-${n}`,
        networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-0000000000000000a'] } },
      }),
    );

  it('answers RunTask ThrottlingException beyond 20 calls a second, and again once the second has passed', async () => {
    // Prepare
    let now = 1_000_000;
    const { ecs } = await start(() => now);

    // Act
    const first = await Promise.allSettled(Array.from({ length: 25 }, (_, n) => runTask(ecs, n)));
    now += 1_000;
    const next = await Promise.allSettled(Array.from({ length: 25 }, (_, n) => runTask(ecs, 100 + n)));

    // Assess
    for (const round of [first, next]) {
      expect(round.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
      const refused = round
        .filter((r) => r.status === 'rejected')
        .map((r) => (r as PromiseRejectedResult).reason);
      expect(refused).toHaveLength(5);
      for (const error of refused)
        expect(error).toMatchObject({ name: 'ThrottlingException', message: 'Rate exceeded' });
    }
    expect(plane?.tasks()).toHaveLength(40);
  });

  it('throttles ListTasks past its burst, and Lambda control-plane reads past 15 a second with 429', async () => {
    // Prepare
    const now = 5_000_000;
    const { ecs, lambda } = await start(() => now);

    // Act
    const lists = await Promise.allSettled(
      Array.from({ length: 101 }, () => ecs.send(new ListTasksCommand({ cluster: 'local' }))),
    );
    const reads = await Promise.allSettled(
      Array.from({ length: 16 }, () =>
        lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'echo' })),
      ),
    );

    // Assess
    expect(lists.filter((r) => r.status === 'rejected')).toHaveLength(1);
    const refused = reads.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({
      name: 'TooManyRequestsException',
      $metadata: { httpStatusCode: 429 },
    });
    expect(plane?.limiter.refused.get('lambdaControl')).toBe(1);
  });
});
