import { ECSClient, ListTasksCommand, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HandedOffError, HandoffError } from '../../src/errors.js';
import { DEADLINE_GUARD_MS } from '../../src/target.js';
import type { FallbackHandlerExtras, FargateFallbackOptions, HandoffReceipt } from '../../src/types.js';
import { withFargateFallback } from '../../src/wrapper.js';
import { awsError, lambdaContext, lambdaEnv, memoryLogger } from '../helpers/lambda.js';

const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/feedfacefeedfacefeedfacefeedface';
const never = () => new Promise<never>(() => {});

describe('withFargateFallback timing', () => {
  const ecs = mockClient(ECSClient);
  let logger: ReturnType<typeof memoryLogger>;
  let options: FargateFallbackOptions;

  beforeEach(() => {
    vi.useFakeTimers();
    ecs.reset();
    // ECS's answer when no task of the invocation exists (an unmocked call answers nothing at all).
    ecs.on(ListTasksCommand).resolves({ taskArns: [] });
    logger = memoryLogger();
    options = {
      env: lambdaEnv(),
      logger,
      ecsClient: new ECSClient({ region: 'eu-west-1' }),
      random: () => 0,
    };
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  /** RunTask answers with the task 300 ms after it is called; StopTask answers at once. */
  const taskAfter300MsThenStopped = () => {
    ecs
      .on(RunTaskCommand)
      .callsFake(
        () => new Promise((resolve) => setTimeout(() => resolve({ tasks: [{ taskArn: TASK_ARN }] }), 300)),
      );
    ecs.on(StopTaskCommand).resolves({});
  };

  it('starts the handoff exactly at the deadline minus the margin, not before', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = withFargateFallback(never, { ...options, marginMs: 10_000 });

    // Act
    const outcome = handler({}, lambdaContext(60_000));
    await vi.advanceTimersByTimeAsync(49_999);
    const callsBefore = ecs.commandCalls(RunTaskCommand).length;
    await vi.advanceTimersByTimeAsync(1);

    // Assess
    await expect(outcome).resolves.toMatchObject({ taskArn: TASK_ARN });
    expect(callsBefore).toBe(0);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
  });

  it('answers a task that exists by the deadline guard, its record abandoned and logged when the write is slower', async () => {
    // Prepare: the handoff at 19 s, RunTask's answer at 19.2 s, the guard at 19.5 s, the write done at 19.6 s.
    const s3 = mockClient(S3Client);
    ecs.on(RunTaskCommand).callsFake(async () => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return { tasks: [{ taskArn: TASK_ARN }], failures: [] };
    });
    s3.on(PutObjectCommand).callsFake(async () => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      return {};
    });
    const handler = withFargateFallback(never, {
      ...options,
      marginMs: 1_000,
      payloadBucket: 'envelopes-bucket',
      s3Client: new S3Client({ region: 'eu-west-1' }),
    });
    let answeredAt: number | undefined;

    // Act
    const outcome = handler({}, lambdaContext(20_000)).finally(() => {
      answeredAt = Date.now();
    });
    const began = Date.now();
    // Module loads are real I/O: each step lets them settle before the clock moves on.
    for (const step of [19_000, 200, 300, 400]) {
      await vi.advanceTimersByTimeAsync(step);
      await vi.dynamicImportSettled();
    }

    // Assess: the receipt by the guard (an answer after the deadline is a timeout to Lambda,
    // which would run the invocation again), the record tried and its abandonment logged
    await expect(outcome).resolves.toMatchObject({ status: 'handed-off', taskArn: TASK_ARN });
    expect((answeredAt ?? Number.POSITIVE_INFINITY) - began).toBeLessThanOrEqual(19_500);
    const [put] = s3.commandCalls(PutObjectCommand);
    expect(JSON.parse(String(put?.args[0].input.Body))).toMatchObject({
      status: 'handed-off',
      taskArn: TASK_ARN,
    });
    expect(logger.records.filter((r) => r.level === 'ERROR')).toEqual([
      expect.objectContaining({
        message: 'The handed-off record could not be written; the invocation is handed off',
      }),
    ]);
    s3.restore();
  });

  it('aborts the signal only once the task is confirmed, with the task named in the reason', async () => {
    // Prepare
    let extras: FallbackHandlerExtras | undefined;
    let abortedDuringRunTask: boolean | undefined;
    ecs.on(RunTaskCommand).callsFake(async () => {
      abortedDuringRunTask = extras?.signal.aborted;
      return { tasks: [{ taskArn: TASK_ARN }] };
    });
    const handler = withFargateFallback((_event, _context, given) => {
      extras = given;
      return never();
    }, options);

    // Act
    const outcome = handler({}, lambdaContext(20_000));
    await vi.advanceTimersByTimeAsync(10_000);
    await outcome;

    // Assess
    expect(abortedDuringRunTask).toBe(false);
    expect(extras?.signal.aborted).toBe(true);
    expect(extras?.signal.reason).toBeInstanceOf(HandedOffError);
    expect(extras?.signal.reason).toMatchObject({ taskArn: TASK_ARN });
    expect(extras?.runtime).toBe('lambda');
  });

  it('gives a handler that reads its signal late one that is already aborted', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    let extras: FallbackHandlerExtras | undefined;
    const handler = withFargateFallback((_event, _context, given) => {
      extras = given;
      return never();
    }, options);

    // Act
    const outcome = handler({}, lambdaContext(20_000));
    await vi.advanceTimersByTimeAsync(10_000);
    await outcome;

    // Assess
    expect(extras?.signal.aborted).toBe(true);
  });

  it('hands off at once, and says so, when the remaining time is already below the margin', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = withFargateFallback(never, { ...options, marginMs: 10_000 });

    // Act
    const outcome = handler({}, lambdaContext(3_000));
    await vi.advanceTimersByTimeAsync(0);

    // Assess
    await expect(outcome).resolves.toMatchObject({ taskArn: TASK_ARN });
    // The first line of the sandbox warns of the timeout; the next is the handoff's.
    expect(logger.records[0]?.message).toMatch(/timeout is at or below the handoff margin/);
    expect(logger.records[1]?.attributes).toMatchObject({ immediate: true });
    expect(String(logger.records[1]?.attributes.note)).toMatch(
      /margin \(10000 ms\) left no time to run.*3000 ms remaining/,
    );
  });

  it('returns the handler result and stops the task when the handler finishes while RunTask is in flight', async () => {
    // Prepare
    taskAfter300MsThenStopped();
    const handler = withFargateFallback(
      () => new Promise((resolve) => setTimeout(() => resolve('finished in lambda'), 10_100)),
      options,
    );

    // Act
    const outcome = handler({}, lambdaContext(20_000));
    await vi.advanceTimersByTimeAsync(10_400);

    // Assess
    await expect(outcome).resolves.toBe('finished in lambda');
    const [stop] = ecs.commandCalls(StopTaskCommand);
    expect(stop?.args[0].input).toMatchObject({ cluster: 'jobs', task: TASK_ARN });
    expect(logger.records.map((r) => r.message)).toContain(
      'Invocation finished in Lambda during its handoff; the runner task was stopped',
    );
  });

  it("ends the invocation's records as not-needed when it finished in Lambda during its handoff and the task was stopped", async () => {
    // Prepare: the handoff at 10 s, RunTask's answer at 10.3 s, the handler's result at 10.1 s.
    const s3 = mockClient(S3Client);
    s3.on(PutObjectCommand).resolves({});
    taskAfter300MsThenStopped();
    const handler = withFargateFallback(
      () => new Promise((resolve) => setTimeout(() => resolve('finished in lambda'), 10_100)),
      { ...options, payloadBucket: 'envelopes-bucket', s3Client: new S3Client({ region: 'eu-west-1' }) },
    );
    const context = lambdaContext(20_000);

    // Act
    const outcome = handler({}, context);
    for (const step of [10_000, 100, 200, 100]) {
      await vi.advanceTimersByTimeAsync(step);
      await vi.dynamicImportSettled();
    }

    // Assess
    await expect(outcome).resolves.toBe('finished in lambda');
    const statuses = s3
      .commandCalls(PutObjectCommand)
      .filter((call) => String(call.args[0].input.Key).endsWith(`${context.awsRequestId}/handed-off.json`))
      .map((call) => JSON.parse(String(call.args[0].input.Body)).status);
    expect(statuses).toEqual(['handed-off', 'not-needed']);
    s3.restore();
  });

  it('returns the handler error when the handler fails while RunTask is in flight, after stopping the task', async () => {
    // Prepare
    taskAfter300MsThenStopped();
    const failure = new Error('report failed');
    const handler = withFargateFallback(
      () => new Promise((_resolve, reject) => setTimeout(() => reject(failure), 10_100)),
      options,
    );

    // Act
    const outcome = handler({}, lambdaContext(20_000));
    const settled = outcome.catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(10_400);

    // Assess
    expect(await settled).toBe(failure);
    expect(ecs.commandCalls(StopTaskCommand)).toHaveLength(1);
  });

  it('throws the HandoffError exactly at the deadline guard when the handler never finishes', async () => {
    // Prepare
    ecs.on(RunTaskCommand).rejects(awsError('AccessDeniedException', 'denied'));
    const handler = withFargateFallback(never, options);
    let settled = false;

    // Act
    const outcome = handler({}, lambdaContext(20_000));
    outcome
      .catch(() => undefined)
      .finally(() => {
        settled = true;
      });
    await vi.advanceTimersByTimeAsync(20_000 - DEADLINE_GUARD_MS - 1);
    const settledBeforeGuard = settled;
    await vi.advanceTimersByTimeAsync(1);

    // Assess
    expect(settledBeforeGuard).toBe(false);
    await expect(outcome).rejects.toBeInstanceOf(HandoffError);
    expect(settled).toBe(true);
  });

  it('gives up retrying throttled calls at the deadline guard and reports the attempts', async () => {
    // Prepare
    ecs.on(RunTaskCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));
    const handler = withFargateFallback(never, { ...options, random: () => 0.99 });

    // Act
    const outcome = handler({}, lambdaContext(20_000));
    const settled = outcome.catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(20_000);

    // Assess
    const error = (await settled) as HandoffError;
    expect(error).toBeInstanceOf(HandoffError);
    expect(error.reason).toBe('deadline');
    expect(error.attempts).toBeGreaterThan(3);
    expect(error.message).toMatch(/Rate exceeded/);
    expect(ecs.commandCalls(RunTaskCommand).length).toBe(error.attempts);
  });
});

describe('withFargateFallback inputs', () => {
  const options: FargateFallbackOptions = { env: lambdaEnv(), logger: memoryLogger() };

  it('returns the value of a handler that is not async', async () => {
    const handler = withFargateFallback(() => 'sync value', options);
    await expect(handler({}, lambdaContext(60_000))).resolves.toBe('sync value');
  });

  it('rejects with the error of a handler that throws synchronously', async () => {
    const failure = new TypeError('sync failure');
    const handler = withFargateFallback(() => {
      throw failure;
    }, options);
    await expect(handler({}, lambdaContext(60_000))).rejects.toBe(failure);
  });

  it('explains a call without a Lambda context', async () => {
    const handler = withFargateFallback(async () => 'x', options);
    await expect(handler({}, {} as never)).rejects.toThrow(
      /without a Lambda context.*FARGATE_FALLBACK_DISABLED/,
    );
  });

  it('refuses something that is not a function', () => {
    expect(() => withFargateFallback('index.handler' as never, options)).toThrow(
      /expects the handler function/,
    );
  });

  it('passes the runner signal through and says it runs on Fargate', async () => {
    // Prepare
    const controller = new AbortController();
    const handler = withFargateFallback(async (_event, _context, extras) => extras, {
      env: { FARGATE_FALLBACK_RUNNER: '1' },
    });

    // Act
    const extras = (await handler({}, lambdaContext(1), {
      signal: controller.signal,
    })) as FallbackHandlerExtras;

    // Assess
    expect(extras.runtime).toBe('fargate');
    expect(extras.signal).toBe(controller.signal);
  });

  it('returns the receipt type by default', async () => {
    // A compile-time check that the default response type is the receipt.
    const handler = withFargateFallback(async () => 1, { env: lambdaEnv() });
    const value: number | HandoffReceipt = await handler({}, lambdaContext(60_000));
    expect(value).toBe(1);
  });
});
