import { ECSClient, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import middy from '@middy/core';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/errors.js';
import { fargateFallback } from '../../src/middy.js';
import type { FargateFallbackOptions } from '../../src/types.js';
import { lambdaContext, lambdaEnv, memoryLogger, sleep } from '../helpers/lambda.js';

const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef';
const MARGIN = 1_000;

describe('fargateFallback under middy', () => {
  const ecs = mockClient(ECSClient);
  let logger: ReturnType<typeof memoryLogger>;
  let options: FargateFallbackOptions;

  beforeEach(() => {
    ecs.reset();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    ecs.on(StopTaskCommand).resolves({});
    logger = memoryLogger();
    options = {
      env: lambdaEnv(),
      marginMs: MARGIN,
      logger,
      ecsClient: new ECSClient({ region: 'eu-west-1' }),
    };
  });

  it('is a clear error at the first invocation without a Lambda context', async () => {
    // Prepare
    const handler = middy(async () => 'x').use(fargateFallback(options));

    // Act
    const outcome = handler({}, {} as never);

    // Assess
    await expect(outcome).rejects.toBeInstanceOf(ConfigurationError);
    await expect(outcome).rejects.toThrow(/getRemainingTimeInMillis/);
  });

  it('reports a middy without an early timeout, hands off anyway, and stops the task if the handler then finishes', async () => {
    // Prepare
    const handler = middy(
      async () => {
        await sleep(500);
        return 'finished';
      },
      { timeoutEarlyInMillis: 0 },
    ).use(fargateFallback(options));

    // Act
    const result = await handler({}, lambdaContext(MARGIN + 60));

    // Assess
    expect(result).toBe('finished');
    const misconfigured = logger.records.find(
      (r) => r.message === 'middy is not configured for the Fargate fallback',
    );
    expect(JSON.stringify(misconfigured?.attributes)).toMatch(/timeoutEarlyInMillis: 1000/);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
    expect(ecs.commandCalls(StopTaskCommand)).toHaveLength(1);
  });

  it('hands off once when middy times out later than the margin', async () => {
    // Prepare
    const handler = middy(() => new Promise(() => {}), { timeoutEarlyInMillis: 100 }).use(
      fargateFallback(options),
    );

    // Act
    const receipt = await handler({}, lambdaContext(MARGIN + 60));

    // Assess
    expect(receipt).toMatchObject({ status: 'handed-off', taskArn: TASK_ARN });
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
    expect(logger.records.some((r) => r.message === 'middy is not configured for the Fargate fallback')).toBe(
      true,
    );
  });

  it("does not take the handler's own TimeoutError before the margin for middy's", async () => {
    // Prepare
    const own = new DOMException('upstream took too long', 'TimeoutError');
    const handler = middy(
      async () => {
        throw own;
      },
      { timeoutEarlyInMillis: MARGIN },
    ).use(fargateFallback(options));

    // Act
    const outcome = handler({}, lambdaContext(60_000));

    // Assess
    await expect(outcome).rejects.toBe(own);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('lets other errors through untouched and starts no task', async () => {
    // Prepare
    const failure = new Error('bad input');
    const handler = middy(
      async () => {
        throw failure;
      },
      { timeoutEarlyInMillis: MARGIN },
    ).use(fargateFallback(options));

    // Act
    const outcome = handler({}, lambdaContext(60_000));

    // Assess
    await expect(outcome).rejects.toBe(failure);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('turns an undefined handoffResponse into null so that middy does not rethrow its timeout', async () => {
    // Prepare
    const handler = middy(() => new Promise(() => {}), { timeoutEarlyInMillis: MARGIN }).use(
      fargateFallback({ ...options, handoffResponse: () => undefined }),
    );

    // Act
    const response = await handler({}, lambdaContext(MARGIN + 60));

    // Assess
    expect(response).toBeNull();
  });
});
