import {
  DescribeTasksCommand,
  ECSClient,
  ListTasksCommand,
  RunTaskCommand,
  StopTaskCommand,
} from '@aws-sdk/client-ecs';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError, HandoffError } from '../../src/errors.js';
import { ENV, parseEnvelope } from '../../src/protocol/index.js';
import type { FargateFallbackOptions, HandoffReceipt } from '../../src/types.js';
import { adapters } from '../helpers/adapters.js';
import {
  awsError,
  envelopeOf,
  lambdaContext,
  memoryLogger,
  mockedOptions,
  sleep,
  untilAborted,
} from '../helpers/lambda.js';

const MARGIN = 1_000;
// The handoff starts 60 ms into the invocation; the deadline guard is 500 ms before the deadline.
const REMAINING = MARGIN + 60;
const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef';
const CAPACITY =
  'Capacity is unavailable at this time. Please try again later or in a different availability zone';

describe.each(adapters)('$name', (adapter) => {
  const ecs = mockClient(ECSClient);
  const s3 = mockClient(S3Client);
  let logger: ReturnType<typeof memoryLogger>;
  let options: FargateFallbackOptions;

  beforeEach(() => {
    ecs.reset();
    s3.reset();
    // ECS's answer when no task of the invocation exists (an unmocked call answers nothing at all).
    ecs.on(ListTasksCommand).resolves({ taskArns: [] });
    logger = memoryLogger();
    options = mockedOptions(logger, MARGIN);
  });

  afterEach(() => {
    ecs.reset();
    s3.reset();
  });

  it('returns the result of a handler that finishes in time, and starts no task', async () => {
    // Prepare
    const handler = adapter.wrap(async (event) => ({ echoed: event }), options);

    // Act
    const result = await handler({ id: 1 }, lambdaContext(60_000));

    // Assess
    expect(result).toEqual({ echoed: { id: 1 } });
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
    expect(logger.records).toEqual([]);
  });

  it("says once, at the sandbox's first invocation, that a timeout within the margin hands everything off at once", async () => {
    // Prepare: 800 ms for the whole invocation, a 1,000 ms margin.
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
    const handler = adapter.wrap(async () => 'never in Lambda', options);

    // Act
    await handler({ id: 1 }, lambdaContext(800));
    await handler({ id: 2 }, lambdaContext(800));

    // Assess
    const warnings = logger.records.filter((record) => record.message.startsWith("The function's timeout"));
    expect(warnings).toHaveLength(1);
    // The context's deadline runs on the real clock: a busy machine takes a few ms off it.
    expect(warnings[0]?.attributes?.remainingMsAtStart).toBeGreaterThan(700);
    expect(warnings[0]?.attributes?.remainingMsAtStart).toBeLessThanOrEqual(800);
    expect(warnings[0]?.attributes).toMatchObject({
      marginMs: MARGIN,
      fix: "raise the function's timeout above the margin, or lower FARGATE_FALLBACK_MARGIN_MS",
    });
  });

  it('says nothing of the timeout when it leaves time to run in Lambda', async () => {
    // Prepare
    const handler = adapter.wrap(async () => 'done', options);

    // Act
    await handler({}, lambdaContext(60_000));

    // Assess
    expect(logger.records.filter((record) => record.message.startsWith("The function's timeout"))).toEqual(
      [],
    );
  });

  it('rethrows the error of a handler that fails in time, untouched', async () => {
    // Prepare
    const failure = new RangeError('bad report id');
    const handler = adapter.wrap(async () => {
      throw failure;
    }, options);

    // Act
    const outcome = handler({}, lambdaContext(60_000));

    // Assess
    await expect(outcome).rejects.toBe(failure);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('hands the original invocation to a Fargate task at the deadline minus the margin', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
    const handler = adapter.wrap(untilAborted, options);
    const context = lambdaContext(REMAINING);
    const event = { reportId: 'r-42', pages: [1, 2, 3] };

    // Act
    const receipt = (await handler(event, context)) as HandoffReceipt;

    // Assess
    expect(receipt).toMatchObject({
      status: 'handed-off',
      taskArn: TASK_ARN,
      requestId: context.awsRequestId,
      cluster: 'jobs',
      capacityProvider: 'FARGATE',
      envelopeLocation: 'inline',
    });
    const calls = ecs.commandCalls(RunTaskCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]?.args[0].input;
    expect(input).toMatchObject({
      cluster: 'jobs',
      taskDefinition: 'immortal-runner:3',
      launchType: 'FARGATE',
      count: 1,
      clientToken: context.awsRequestId,
      startedBy: `immortal-lambda/${context.awsRequestId}`,
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
          securityGroups: ['sg-0ccccccccccccccc3'],
          assignPublicIp: 'DISABLED',
        },
      },
    });
    expect(input?.tags).toEqual(
      expect.arrayContaining([
        { key: 'immortal-lambda:function', value: 'report-job' },
        { key: 'immortal-lambda:request-id', value: context.awsRequestId },
      ]),
    );
    const envelope = parseEnvelope(envelopeOf(input));
    expect(envelope.event).toEqual(event);
    expect(envelope.invocation.awsRequestId).toBe(context.awsRequestId);
    expect(envelope.function).toMatchObject({
      name: 'report-job',
      version: '7',
      handler: 'src/jobs/report.handler',
    });
    expect(envelope.invocation.traceHeader).toContain('Root=1-67891233');
    const [record] = logger.records;
    expect(logger.records).toHaveLength(1);
    expect(record?.level).toBe('INFO');
    expect(record?.attributes).toMatchObject({
      requestId: context.awsRequestId,
      taskArn: TASK_ARN,
      envelopeLocation: 'inline',
      attempts: 1,
      retries: 0,
    });
    expect(record?.attributes.envelopeBytes).toBe(Buffer.byteLength(envelopeOf(input)));
  });

  it('hands off an invocation at its own time after earlier ones finished in time', async () => {
    // Prepare: the first two finish at once; the third is due later than the first's handoff time
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
    const handler = adapter.wrap(async (event, context, extras) => {
      if ((event as { quick?: boolean }).quick) return 'quick';
      return untilAborted(event, context, extras);
    }, options);
    await handler({ quick: true }, lambdaContext(REMAINING));
    await handler({ quick: true }, lambdaContext(60_000));
    const context = lambdaContext(REMAINING + 100);
    const started = Date.now();

    // Act
    const receipt = (await handler({}, context)) as HandoffReceipt;

    // Assess
    expect(receipt).toMatchObject({ status: 'handed-off', requestId: context.awsRequestId });
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    const calls = ecs.commandCalls(RunTaskCommand);
    expect(calls.map((call) => call.args[0].input.clientToken)).toEqual([context.awsRequestId]);
  });

  it('hands off at once, without running the handler, when routeToFargate says so', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
    let ran = 0;
    const handler = adapter.wrap(
      async () => {
        ran++;
        return 'in Lambda';
      },
      { ...options, routeToFargate: async (event) => (event as { size: number }).size > 1_000 },
    );
    const context = lambdaContext(60_000);
    const started = Date.now();

    // Act
    const receipt = (await handler({ size: 5_000 }, context)) as HandoffReceipt;

    // Assess
    expect(receipt).toMatchObject({
      status: 'handed-off',
      taskArn: TASK_ARN,
      requestId: context.awsRequestId,
    });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(ran).toBe(0);
    const input = ecs.commandCalls(RunTaskCommand)[0]?.args[0].input;
    expect(parseEnvelope(envelopeOf(input)).event).toEqual({ size: 5_000 });
    expect(logger.records[0]?.attributes).toMatchObject({ routed: true, taskArn: TASK_ARN });
  });

  it('runs the handler in Lambda when routeToFargate says no', async () => {
    // Prepare
    const handler = adapter.wrap(async () => 'in Lambda', {
      ...options,
      routeToFargate: (event) => (event as { size: number }).size > 1_000,
    });

    // Act
    const result = await handler({ size: 10 }, lambdaContext(60_000));

    // Assess
    expect(result).toBe('in Lambda');
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('fails the invocation with the error of a routeToFargate that throws, and hands nothing off later', async () => {
    // Prepare
    const broken = new TypeError('size is not readable');
    let ran = 0;
    const handler = adapter.wrap(
      async () => {
        ran++;
      },
      {
        ...options,
        routeToFargate: () => {
          throw broken;
        },
      },
    );

    // Act
    const outcome = handler({}, lambdaContext(REMAINING));
    await expect(outcome).rejects.toBe(broken);
    await sleep(REMAINING - MARGIN + 400);

    // Assess
    expect(ran).toBe(0);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('starts its task with one RunTask and no look-up when the first attempt answers', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
    const handler = adapter.wrap(untilAborted, options);
    const context = lambdaContext(REMAINING);

    // Act
    const receipt = (await handler({}, context)) as HandoffReceipt;

    // Assess
    expect(receipt.taskArn).toBe(TASK_ARN);
    expect(ecs.calls().map((call) => call.args[0].constructor.name)).toEqual(['RunTaskCommand']);
    expect(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input.clientToken).toBe(context.awsRequestId);
  });

  it('stops its own task when a concurrent attempt of the same id started an earlier one, through a throttled look-up', async () => {
    // Prepare: the invocation's own token is remembered without a task; under a token of its own
    // this attempt starts task B, and another attempt's task A is older.
    const A = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const B = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
    ecs
      .on(RunTaskCommand)
      .rejectsOnce(awsError('ConflictException', 'The clientToken was used with different parameters.'))
      .resolves({ tasks: [{ taskArn: B }], failures: [] });
    ecs
      .on(ListTasksCommand)
      .resolvesOnce({ taskArns: [] })
      .resolvesOnce({ taskArns: [] })
      .rejectsOnce(awsError('ThrottlingException', 'Rate exceeded'))
      .resolves({ taskArns: [A, B] });
    ecs.on(DescribeTasksCommand).resolves({
      tasks: [
        { taskArn: B, createdAt: new Date(2_000) },
        { taskArn: A, createdAt: new Date(1_000) },
      ],
    });
    ecs.on(StopTaskCommand).resolves({});
    const handler = adapter.wrap(untilAborted, options);
    const context = lambdaContext(REMAINING);

    // Act
    const receipt = (await handler({}, context)) as HandoffReceipt;

    // Assess
    expect(receipt.taskArn).toBe(A);
    expect(ecs.commandCalls(StopTaskCommand).map((call) => call.args[0].input.task)).toEqual([B]);
    const tokens = ecs.commandCalls(RunTaskCommand).map((call) => call.args[0].input.clientToken);
    expect(tokens).toEqual([context.awsRequestId, `${context.awsRequestId}-p1`]);
  });

  it('looks for tasks of the invocation by startedBy alone, as ECS requires, and logs a failed look-up as an error', async () => {
    // Prepare: under a token of its own (the first was remembered without a task), the look-up
    // after RunTask fails
    ecs
      .on(RunTaskCommand)
      .rejectsOnce(awsError('ConflictException', 'The clientToken was used with different parameters.'))
      .resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
    ecs
      .on(ListTasksCommand)
      .resolvesOnce({ taskArns: [] })
      .resolvesOnce({ taskArns: [] })
      .rejects(awsError('AccessDeniedException', 'not allowed to list tasks'));
    const handler = adapter.wrap(untilAborted, options);
    const context = lambdaContext(REMAINING);

    // Act
    const receipt = (await handler({}, context)) as HandoffReceipt;

    // Assess
    expect(receipt.taskArn).toBe(TASK_ARN);
    expect(ecs.commandCalls(ListTasksCommand)).toHaveLength(3);
    for (const call of ecs.commandCalls(ListTasksCommand)) {
      expect(call.args[0].input).toEqual({
        cluster: 'jobs',
        startedBy: `immortal-lambda/${context.awsRequestId}`,
      });
    }
    expect(logger.records.find((r) => r.level === 'ERROR')).toMatchObject({
      message: 'The look-up for another task of this invocation failed; the task was started without it',
      attributes: { taskArn: TASK_ARN, lookupError: 'AccessDeniedException: not allowed to list tasks' },
    });
  });

  describe('metrics', () => {
    const emf = () => {
      const lines: string[] = [];
      return { lines, write: (line: string) => lines.push(line) };
    };

    it('writes one EMF line per handoff: Handoffs, HandoffLatency, TimeInLambda, EnvelopeBytes, by function name', async () => {
      // Prepare
      ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
      const out = emf();
      const handler = adapter.wrap(untilAborted, { ...options, metricsWriter: out.write });
      const context = lambdaContext(REMAINING);

      // Act
      await handler({}, context);

      // Assess
      expect(out.lines).toHaveLength(1);
      const line = JSON.parse(out.lines[0] as string);
      expect(line).toMatchObject({
        FunctionName: 'report-job',
        Handoffs: 1,
        requestId: context.awsRequestId,
        taskArn: TASK_ARN,
        _aws: {
          Timestamp: expect.any(Number),
          CloudWatchMetrics: [
            {
              Namespace: 'ImmortalLambda',
              Dimensions: [['FunctionName']],
              Metrics: [
                { Name: 'Handoffs', Unit: 'Count' },
                { Name: 'HandoffLatency', Unit: 'Milliseconds' },
                { Name: 'TimeInLambda', Unit: 'Milliseconds' },
                { Name: 'EnvelopeBytes', Unit: 'Bytes' },
              ],
            },
          ],
        },
      });
      expect(line.TimeInLambda).toBeGreaterThanOrEqual(50);
      expect(line.EnvelopeBytes).toBeGreaterThan(100);
    });

    it('writes no metric for an invocation that finishes in time, and none at all when metrics are off', async () => {
      // Prepare
      ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
      const on = emf();
      const off = emf();
      const quick = adapter.wrap(async () => 'done', { ...options, metricsWriter: on.write });
      const silent = adapter.wrap(untilAborted, { ...options, metrics: false, metricsWriter: off.write });

      // Act
      await quick({}, lambdaContext(60_000));
      await silent({}, lambdaContext(REMAINING));

      // Assess
      expect(on.lines).toEqual([]);
      expect(off.lines).toEqual([]);
      expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
    });

    it('counts a failed handoff as HandoffFailures, in the namespace and dimensions the environment sets', async () => {
      // Prepare
      ecs.on(RunTaskCommand).rejects(awsError('AccessDeniedException', 'not allowed'));
      const out = emf();
      const handler = adapter.wrap(untilAborted, {
        ...options,
        env: {
          ...options.env,
          FARGATE_FALLBACK_METRICS_NAMESPACE: 'Jobs',
          FARGATE_FALLBACK_METRICS_DIMENSIONS: 'Stage=prod',
        },
        metricsWriter: out.write,
      });

      // Act
      await handler({}, lambdaContext(REMAINING)).catch(() => undefined);

      // Assess
      const line = JSON.parse(out.lines[0] as string);
      expect(line).toMatchObject({ HandoffFailures: 1, Stage: 'prod', FunctionName: 'report-job' });
      expect(line._aws.CloudWatchMetrics[0]).toMatchObject({
        Namespace: 'Jobs',
        Dimensions: [['FunctionName', 'Stage']],
      });
    });
  });

  it('returns what handoffResponse builds from the receipt', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = adapter.wrap(untilAborted, {
      ...options,
      handoffResponse: (receipt) => ({
        statusCode: 202,
        body: JSON.stringify({ task: receipt.status === 'handed-off' ? receipt.taskArn : 'queued' }),
      }),
    });

    // Act
    const response = await handler({}, lambdaContext(REMAINING));

    // Assess
    expect(response).toEqual({ statusCode: 202, body: JSON.stringify({ task: TASK_ARN }) });
  });

  it('retries throttled RunTask calls with the same client token until a task starts', async () => {
    // Prepare
    ecs
      .on(RunTaskCommand)
      .rejectsOnce(awsError('ThrottlingException', 'Rate exceeded'))
      .rejectsOnce(awsError('ServerException', 'Service unavailable', 500))
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = adapter.wrap(untilAborted, options);
    const context = lambdaContext(REMAINING);

    // Act
    const receipt = (await handler({}, context)) as HandoffReceipt;

    // Assess
    expect(receipt.taskArn).toBe(TASK_ARN);
    const tokens = ecs.commandCalls(RunTaskCommand).map((call) => call.args[0].input.clientToken);
    expect(tokens).toEqual([context.awsRequestId, context.awsRequestId, context.awsRequestId]);
    expect(logger.records[0]?.attributes).toMatchObject({ attempts: 3, retries: 2 });
  });

  it('takes the task that ConflictException names when a retried invocation sends another envelope', async () => {
    // Prepare: the token was used by an earlier attempt whose envelope differed (a later handoff time).
    const conflict = Object.assign(
      awsError('ConflictException', 'The clientToken was used with different parameters.'),
      {
        resourceIds: [TASK_ARN],
      },
    );
    ecs.on(ListTasksCommand).resolves({ taskArns: [] });
    ecs.on(RunTaskCommand).rejects(conflict);
    const handler = adapter.wrap(untilAborted, options);

    // Act
    const receipt = (await handler({}, lambdaContext(REMAINING))) as HandoffReceipt;

    // Assess
    expect(receipt.taskArn).toBe(TASK_ARN);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
    expect(logger.records[0]?.attributes).toMatchObject({ reusedTask: true });
  });

  it('falls back from Spot to on-demand when Spot has no capacity', async () => {
    // Prepare
    ecs
      .on(RunTaskCommand)
      .resolvesOnce({
        tasks: [],
        failures: [
          {
            reason:
              'Capacity is unavailable at this time. Please try again later or in a different availability zone',
          },
        ],
      })
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = adapter.wrap(untilAborted, { ...options, capacity: 'FARGATE_SPOT,FARGATE' });
    const context = lambdaContext(REMAINING);

    // Act
    const receipt = (await handler({}, context)) as HandoffReceipt;

    // Assess
    expect(receipt.capacityProvider).toBe('FARGATE');
    const [spot, onDemand] = ecs.commandCalls(RunTaskCommand).map((call) => call.args[0].input);
    expect(spot?.capacityProviderStrategy).toEqual([{ capacityProvider: 'FARGATE_SPOT', weight: 1 }]);
    expect(spot?.launchType).toBeUndefined();
    expect(onDemand?.launchType).toBe('FARGATE');
    expect(onDemand?.capacityProviderStrategy).toBeUndefined();
    // One token across both placements: ECS itself keeps a retried invocation to one task.
    expect([spot?.clientToken, onDemand?.clientToken]).toEqual([context.awsRequestId, context.awsRequestId]);
    expect(ecs.commandCalls(ListTasksCommand)).toHaveLength(0);
  });

  it('retries under its own token, tagged as a retry, after every placement found no capacity: no look-up', async () => {
    // Prepare
    ecs
      .on(RunTaskCommand)
      .resolvesOnce({ tasks: [], failures: [{ reason: CAPACITY }] })
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = adapter.wrap(untilAborted, options);
    const context = lambdaContext(REMAINING);

    // Act
    const receipt = (await handler({}, context)) as HandoffReceipt;

    // Assess
    expect(receipt.taskArn).toBe(TASK_ARN);
    const [first, retry] = ecs.commandCalls(RunTaskCommand).map((call) => call.args[0].input);
    expect([first?.clientToken, retry?.clientToken]).toEqual([context.awsRequestId, context.awsRequestId]);
    expect(first?.tags?.find((tag) => tag.key === 'immortal-lambda:retry')).toBeUndefined();
    expect(retry?.tags).toContainEqual({ key: 'immortal-lambda:retry', value: '1' });
    expect(ecs.commandCalls(ListTasksCommand)).toHaveLength(0);
  });

  it('moves to a token of its own, guarded by look-ups, when on-demand meets a conflict that names no task', async () => {
    // Prepare: Spot finds no capacity, and ECS remembers the token without a task
    ecs
      .on(RunTaskCommand)
      .resolvesOnce({ tasks: [], failures: [{ reason: CAPACITY }] })
      .rejectsOnce(awsError('ConflictException', 'The clientToken was used with different parameters.'))
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = adapter.wrap(untilAborted, { ...options, capacity: 'FARGATE_SPOT,FARGATE' });
    const context = lambdaContext(REMAINING);

    // Act
    const receipt = (await handler({}, context)) as HandoffReceipt;

    // Assess
    expect(receipt).toMatchObject({ taskArn: TASK_ARN, capacityProvider: 'FARGATE' });
    const tokens = ecs.commandCalls(RunTaskCommand).map((call) => call.args[0].input.clientToken);
    const id = context.awsRequestId;
    expect(tokens).toEqual([id, id, `${id}-p1`]);
    // The conflict's own look-up, one before the new token and one after its task started.
    expect(ecs.commandCalls(ListTasksCommand)).toHaveLength(3);
  });

  it('treats a 200 answer with failures[] and no task as a failed handoff', async () => {
    // Prepare
    ecs
      .on(RunTaskCommand)
      .resolves({ tasks: [], failures: [{ arn: 'arn:aws:ecs:::container-instance/x', reason: 'MISSING' }] });
    const handler = adapter.wrap(untilAborted, options);
    const context = lambdaContext(REMAINING);
    const started = Date.now();

    // Act
    const outcome = handler({}, context);

    // Assess
    await expect(outcome).rejects.toMatchObject({
      name: 'HandoffError',
      reason: 'run-task-rejected',
      requestId: context.awsRequestId,
    });
    await expect(outcome).rejects.toThrow(/MISSING/);
    expect(Date.now() - started).toBeLessThan(REMAINING);
    const failure = logger.records.find((r) => r.level === 'ERROR');
    expect(failure?.attributes).toMatchObject({
      requestId: context.awsRequestId,
      reason: 'run-task-rejected',
    });
  });

  it('fails with a HandoffError before the deadline when RunTask never answers', async () => {
    // Prepare
    ecs.on(RunTaskCommand).callsFake(() => new Promise(() => {}));
    const handler = adapter.wrap(untilAborted, options);
    const started = Date.now();

    // Act
    const outcome = handler({}, lambdaContext(REMAINING));

    // Assess
    await expect(outcome).rejects.toBeInstanceOf(HandoffError);
    await expect(outcome).rejects.toMatchObject({ reason: 'deadline' });
    expect(Date.now() - started).toBeLessThan(REMAINING);
  });

  it('says so when an unanswered RunTask is checked and no task was started', async () => {
    // Prepare
    ecs.on(ListTasksCommand).resolves({ taskArns: [] });
    ecs.on(RunTaskCommand).callsFake(() => new Promise(() => {}));
    const handler = adapter.wrap(untilAborted, options);

    // Act
    const outcome = handler({}, lambdaContext(REMAINING));

    // Assess
    await expect(outcome).rejects.toMatchObject({ reason: 'deadline' });
    await expect(outcome).rejects.toThrow(/had not answered; a look-up found no task of this invocation/);
  });

  it('succeeds when the RunTask call that never answered did start the task: no orphan', async () => {
    // Prepare: after the unanswered call, the look-up finds the task it started.
    ecs.on(ListTasksCommand).resolves({ taskArns: [TASK_ARN] });
    ecs.on(RunTaskCommand).callsFake(() => new Promise(() => {}));
    const handler = adapter.wrap(untilAborted, options);
    const context = lambdaContext(REMAINING);

    // Act
    const receipt = (await handler({}, context)) as HandoffReceipt;

    // Assess
    expect(receipt).toMatchObject({
      status: 'handed-off',
      taskArn: TASK_ARN,
      requestId: context.awsRequestId,
    });
    expect(logger.records.find((r) => r.level === 'INFO')?.attributes).toMatchObject({ reconciled: true });
  });

  it('writes an envelope too large for the override to S3 and passes its s3:// URI', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    s3.on(PutObjectCommand).resolves({});
    const handler = adapter.wrap(untilAborted, { ...options, payloadBucket: 'envelopes-bucket' });
    const context = lambdaContext(REMAINING);
    const event = { rows: 'x'.repeat(20_000) };

    // Act
    const receipt = (await handler(event, context)) as HandoffReceipt;

    // Assess
    const key = `immortal-lambda/envelopes/report-job/${context.awsRequestId}.json`;
    expect(receipt.envelopeLocation).toBe(`s3://envelopes-bucket/${key}`);
    const [put] = s3.commandCalls(PutObjectCommand);
    expect(put?.args[0].input).toMatchObject({
      Bucket: 'envelopes-bucket',
      Key: key,
      ContentType: 'application/json',
    });
    expect(parseEnvelope(String(put?.args[0].input.Body)).event).toEqual(event);
    expect(envelopeOf(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input)).toBe(
      `s3://envelopes-bucket/${key}`,
    );
  });

  it('records handed-off in the payload bucket once the task exists, and tells the runner the bucket', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    s3.on(PutObjectCommand).resolves({});
    const handler = adapter.wrap(untilAborted, { ...options, payloadBucket: 'envelopes-bucket' });
    const context = lambdaContext(REMAINING);

    // Act
    const receipt = (await handler({ small: true }, context)) as HandoffReceipt;

    // Assess
    const [put, ...more] = s3.commandCalls(PutObjectCommand);
    expect(more).toHaveLength(0);
    expect(put?.args[0].input).toMatchObject({
      Bucket: 'envelopes-bucket',
      Key: `immortal-lambda/outcomes/report-job/${context.awsRequestId}/handed-off.json`,
    });
    expect(JSON.parse(String(put?.args[0].input.Body))).toMatchObject({
      kind: 'immortal-lambda.outcome',
      status: 'handed-off',
      writer: 'wrapper',
      attempt: 1,
      requestId: context.awsRequestId,
      taskArn: receipt.taskArn,
    });
    const environment =
      ecs.commandCalls(RunTaskCommand)[0]?.args[0].input.overrides?.containerOverrides?.[0]?.environment;
    expect(environment).toContainEqual({ name: ENV.payloadBucket, value: 'envelopes-bucket' });
  });

  describe('with prewarmMs', () => {
    const STANDBY_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a';
    const prewarmed = () => ({ ...options, payloadBucket: 'envelopes-bucket', prewarmMs: 40 });
    const putsTo = (suffix: string) =>
      s3.commandCalls(PutObjectCommand).filter((call) => String(call.args[0].input.Key).endsWith(suffix));
    const running = { tasks: [{ taskArn: STANDBY_ARN, lastStatus: 'RUNNING', desiredStatus: 'RUNNING' }] };

    it('starts a standby task prewarmMs before the handoff, and at the handoff writes its envelope where it waits', async () => {
      // Prepare
      ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: STANDBY_ARN }], failures: [] });
      ecs.on(DescribeTasksCommand).resolves(running);
      s3.on(PutObjectCommand).resolves({});
      const handler = adapter.wrap(untilAborted, prewarmed());
      const context = lambdaContext(REMAINING);
      const id = context.awsRequestId;
      const folder = `immortal-lambda/outcomes/report-job/${id}/`;

      // Act
      const receipt = (await handler({ report: 9 }, context)) as HandoffReceipt;

      // Assess: one task, the standby one, told to go through the bucket
      const [standby, ...more] = ecs.commandCalls(RunTaskCommand);
      expect(more).toHaveLength(0);
      expect(standby?.args[0].input).toMatchObject({
        clientToken: `${id}-s`,
        startedBy: `immortal-lambda/${id}/standby`,
      });
      expect(standby?.args[0].input.overrides?.containerOverrides?.[0]?.environment).toContainEqual({
        name: ENV.standby,
        value: `s3://envelopes-bucket/${folder}resume.json`,
      });
      expect(receipt).toMatchObject({
        status: 'handed-off',
        taskArn: STANDBY_ARN,
        envelopeLocation: `s3://envelopes-bucket/${folder}resume.json`,
      });
      // It is told when the handoff is planned, so that it need not look every 200 ms until then.
      const goAt = standby?.args[0].input.overrides?.containerOverrides?.[0]?.environment?.find(
        (variable) => variable.name === ENV.standbyGoAt,
      )?.value;
      expect(Math.abs(Number(goAt) - Date.parse(receipt.handedOffAt))).toBeLessThan(1_000);
      const [resume] = putsTo('resume.json');
      expect(parseEnvelope(String(resume?.args[0].input.Body)).event).toEqual({ report: 9 });
      expect(JSON.parse(String(putsTo('standby.json')[0]?.args[0].input.Body))).toMatchObject({
        status: 'standby',
        taskArn: STANDBY_ARN,
      });
      expect(JSON.parse(String(putsTo('handed-off.json')[0]?.args[0].input.Body))).toMatchObject({
        status: 'handed-off',
        taskArn: STANDBY_ARN,
      });
      expect(ecs.commandCalls(StopTaskCommand)).toHaveLength(0);
    });

    it('tells a standby task that DescribeTasks does not show yet to go, and starts no second task', async () => {
      // Prepare: ECS reads are eventually consistent; RunTask named the task, so it exists.
      ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: STANDBY_ARN }], failures: [] });
      ecs
        .on(DescribeTasksCommand)
        .resolves({ tasks: [], failures: [{ arn: STANDBY_ARN, reason: 'MISSING' }] });
      s3.on(PutObjectCommand).resolves({});
      const handler = adapter.wrap(untilAborted, prewarmed());

      // Act
      const receipt = (await handler({ report: 11 }, lambdaContext(REMAINING))) as HandoffReceipt;

      // Assess
      expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
      expect(receipt).toMatchObject({ taskArn: STANDBY_ARN });
      expect(parseEnvelope(String(putsTo('resume.json')[0]?.args[0].input.Body)).event).toEqual({
        report: 11,
      });
    });

    it('cancels the standby task when the handler finishes in Lambda after it started: marker, StopTask, not needed', async () => {
      // Prepare
      ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: STANDBY_ARN }], failures: [] });
      ecs.on(StopTaskCommand).resolves({});
      s3.on(PutObjectCommand).resolves({});
      // The standby task starts 110 ms in, the handler ends at 180 ms, the handoff would be at 260 ms.
      const handler = adapter.wrap(
        async () => {
          await sleep(180);
          return 'done in Lambda';
        },
        { ...prewarmed(), prewarmMs: 150 },
      );
      const context = lambdaContext(REMAINING + 200);

      // Act
      const result = await handler({}, context);

      // Assess
      expect(result).toBe('done in Lambda');
      expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
      expect(JSON.parse(String(putsTo('resume.json')[0]?.args[0].input.Body))).toMatchObject({
        kind: 'immortal-lambda.cancel',
        requestId: context.awsRequestId,
      });
      expect(ecs.commandCalls(StopTaskCommand)[0]?.args[0].input).toMatchObject({ task: STANDBY_ARN });
      const records = putsTo('standby.json').map(
        (call) => JSON.parse(String(call.args[0].input.Body)).status,
      );
      expect(records).toEqual(['standby', 'not-needed']);
      expect(putsTo('handed-off.json')).toHaveLength(0);
    });

    /** A handler that finishes in Lambda 40 ms into a handoff whose envelope write takes 150 ms. */
    const finishingDuringTheGo = (claim: () => Promise<unknown>) => {
      ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: STANDBY_ARN }], failures: [] });
      ecs.on(DescribeTasksCommand).resolves(running);
      ecs.on(StopTaskCommand).resolves({});
      s3.on(PutObjectCommand).callsFake(async (input: { Key?: string }) => {
        if (String(input.Key).endsWith('resume.json')) await sleep(150);
        if (String(input.Key).endsWith('claim.json')) return claim();
        return {};
      });
      return adapter.wrap(async () => {
        await sleep(100);
        return 'done in Lambda';
      }, prewarmed());
    };

    it('completes one leg when the handler ends while its pre-warmed task is told to go: Lambda, when it claims first', async () => {
      // Prepare
      const handler = finishingDuringTheGo(async () => ({}));
      const context = lambdaContext(REMAINING);

      // Act
      const result = await handler({ report: 12 }, context);

      // Assess
      if (adapter.name.startsWith('middy')) {
        // middy's early timeout decided at the handoff: it drops the handler's late result itself,
        // and the task runs the invocation; nothing is claimed, nothing stopped.
        expect(result).toMatchObject({ status: 'handed-off', taskArn: STANDBY_ARN });
        expect(putsTo('claim.json')).toHaveLength(0);
        expect(ecs.commandCalls(StopTaskCommand)).toHaveLength(0);
        return;
      }
      // Lambda's claim won; the task (which would find the claim taken) is stopped.
      expect(result).toBe('done in Lambda');
      expect(JSON.parse(String(putsTo('claim.json')[0]?.args[0].input.Body))).toMatchObject({
        kind: 'immortal-lambda.claim',
        leg: 'lambda',
        requestId: context.awsRequestId,
      });
      expect(putsTo('claim.json')[0]?.args[0].input.IfNoneMatch).toBe('*');
      expect(ecs.commandCalls(StopTaskCommand)[0]?.args[0].input).toMatchObject({ task: STANDBY_ARN });
    });

    it('returns the receipt, not its own result, when the pre-warmed task claimed the invocation first', async () => {
      // Prepare: the claim exists (412), and it is the runner's.
      const handler = finishingDuringTheGo(async () => {
        throw awsError(
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
          412,
        );
      });
      const context = lambdaContext(REMAINING);
      s3.on(GetObjectCommand).resolves({
        Body: {
          transformToString: async () =>
            JSON.stringify({ kind: 'immortal-lambda.claim', leg: 'runner', requestId: context.awsRequestId }),
        },
      } as never);

      // Act
      const result = (await handler({ report: 13 }, context)) as HandoffReceipt;

      // Assess: one leg completes, the runner's; its task is not stopped.
      expect(result).toMatchObject({ status: 'handed-off', taskArn: STANDBY_ARN });
      expect(ecs.commandCalls(StopTaskCommand)).toHaveLength(0);
    });

    it('hands off with a task of its own when the standby task stopped before the handoff', async () => {
      // Prepare
      ecs
        .on(RunTaskCommand)
        .resolvesOnce({ tasks: [{ taskArn: STANDBY_ARN }], failures: [] })
        .resolves({ tasks: [{ taskArn: TASK_ARN }], failures: [] });
      ecs.on(DescribeTasksCommand).resolves({
        tasks: [
          {
            taskArn: STANDBY_ARN,
            lastStatus: 'STOPPED',
            desiredStatus: 'STOPPED',
            stopCode: 'TaskFailedToStart',
          },
        ],
      });
      ecs.on(ListTasksCommand).resolves({ taskArns: [] });
      s3.on(PutObjectCommand).resolves({});
      const handler = adapter.wrap(untilAborted, prewarmed());
      const context = lambdaContext(REMAINING);

      // Act
      const receipt = (await handler({ report: 10 }, context)) as HandoffReceipt;

      // Assess
      expect(receipt).toMatchObject({ taskArn: TASK_ARN, envelopeLocation: 'inline' });
      const [, own] = ecs.commandCalls(RunTaskCommand);
      expect(own?.args[0].input).toMatchObject({
        clientToken: context.awsRequestId,
        startedBy: `immortal-lambda/${context.awsRequestId}`,
      });
      expect(putsTo('resume.json')).toHaveLength(0);
    });
  });

  it('returns the receipt when the handed-off record cannot be written, and logs why', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    s3.on(PutObjectCommand).rejects(awsError('AccessDenied', 'not allowed to write records'));
    const handler = adapter.wrap(untilAborted, { ...options, payloadBucket: 'envelopes-bucket' });

    // Act
    const receipt = (await handler({ small: true }, lambdaContext(REMAINING))) as HandoffReceipt;

    // Assess
    expect(receipt).toMatchObject({ status: 'handed-off', taskArn: TASK_ARN });
    expect(
      logger.records.find(
        (r) => r.message === 'The handed-off record could not be written; the invocation is handed off',
      ),
    ).toMatchObject({
      level: 'ERROR',
      attributes: {
        taskArn: TASK_ARN,
        error: expect.objectContaining({ message: 'not allowed to write records' }),
      },
    });
  });

  it('sends even a small envelope through S3 with the s3 transport, never in the override', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    s3.on(PutObjectCommand).resolves({});
    const handler = adapter.wrap(untilAborted, {
      ...options,
      payloadBucket: 'envelopes-bucket',
      envelopeTransport: 's3',
    });
    const context = lambdaContext(REMAINING);

    // Act
    const receipt = (await handler({ card: '4111-1111' }, context)) as HandoffReceipt;

    // Assess
    expect(receipt.envelopeLocation).toMatch(/^s3:\/\/envelopes-bucket\//);
    const override = envelopeOf(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input);
    expect(override).toBe(receipt.envelopeLocation);
    // The event's own text, which a random request id cannot hold by chance.
    const overrides = JSON.stringify(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input.overrides);
    expect(overrides).not.toContain('card');
    expect(overrides).not.toContain('4111-1111');
  });

  it('hands off maxInLambdaMs after the start, long before the deadline less the margin', async () => {
    // Prepare: 60 s remain, but the caller (API Gateway) waits 29 s at most.
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = adapter.wrap(untilAborted, { ...options, maxInLambdaMs: 150 });
    const started = Date.now();

    // Act
    const receipt = (await handler({}, lambdaContext(60_000))) as HandoffReceipt;

    // Assess
    expect(receipt.taskArn).toBe(TASK_ARN);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(logger.records.filter((r) => r.level === 'ERROR')).toEqual([]);
  });

  it('names FARGATE_FALLBACK_BUCKET when a large envelope has nowhere to go', async () => {
    // Prepare
    const handler = adapter.wrap(untilAborted, options);

    // Act
    const outcome = handler({ rows: 'x'.repeat(20_000) }, lambdaContext(REMAINING));

    // Assess
    await expect(outcome).rejects.toMatchObject({ name: 'HandoffError', reason: 'payload-too-large' });
    await expect(outcome).rejects.toThrow(/FARGATE_FALLBACK_BUCKET/);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('says so when the event cannot be serialised', async () => {
    // Prepare
    const handler = adapter.wrap(untilAborted, options);

    // Act
    const outcome = handler({ amount: 10n }, lambdaContext(REMAINING));

    // Assess
    await expect(outcome).rejects.toMatchObject({ name: 'HandoffError', reason: 'unserializable-event' });
    await expect(outcome).rejects.toThrow(/BigInt/);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('never hands off inside the runner', async () => {
    // Prepare: the runner's environment has no fallback settings at all.
    const handler = adapter.wrap(async () => 'done in fargate', {
      ...options,
      env: { [ENV.runner]: '1' },
    });

    // Act
    const result = await handler({}, lambdaContext(REMAINING + 5_000));

    // Assess
    expect(result).toBe('done in fargate');
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('runs the handler unwrapped when the kill switch is on', async () => {
    // Prepare
    const handler = adapter.wrap(async () => 'plain', { ...options, env: { [ENV.disabled]: 'true' } });

    // Act
    const result = await handler({}, lambdaContext(REMAINING + 5_000));

    // Assess
    expect(result).toBe('plain');
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('refuses a configuration with missing settings, listing each of them', () => {
    // Act
    const wrapping = () => adapter.wrap(untilAborted, { env: { FARGATE_FALLBACK_SUBNETS: 'subnet-1' } });

    // Assess
    expect(wrapping).toThrow(ConfigurationError);
    expect(wrapping).toThrow(/FARGATE_FALLBACK_CLUSTER/);
    expect(wrapping).toThrow(/FARGATE_FALLBACK_TASK_DEFINITION/);
    expect(wrapping).toThrow(/"subnet-1" is not a subnet id/);
  });

  it('fails the invocation loudly when the handoff fails and the handler does not finish', async () => {
    // Prepare
    ecs
      .on(RunTaskCommand)
      .rejects(awsError('AccessDeniedException', 'not authorized to perform ecs:RunTask'));
    const handler = adapter.wrap(untilAborted, options);
    const context = lambdaContext(REMAINING);

    // Act
    const outcome = handler({}, context);

    // Assess
    await expect(outcome).rejects.toMatchObject({ name: 'HandoffError', reason: 'run-task-rejected' });
    await expect(outcome).rejects.toThrow(/ecs:RunTask/);
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(0);
  });

  it(
    adapter.handlerSurvivesFailedHandoff
      ? 'lets the handler finish after a failed handoff and returns its result'
      : 'fails at once after a failed handoff, since middy has already aborted the handler',
    async () => {
      // Prepare
      ecs.on(RunTaskCommand).rejects(awsError('AccessDeniedException', 'denied'));
      const handler = adapter.wrap(async (_event, _context, { signal }) => {
        await sleep(250);
        signal.throwIfAborted();
        return 'finished late';
      }, options);

      // Act
      const outcome = handler({}, lambdaContext(REMAINING));

      // Assess
      if (adapter.handlerSurvivesFailedHandoff) await expect(outcome).resolves.toBe('finished late');
      else await expect(outcome).rejects.toBeInstanceOf(HandoffError);
    },
  );

  it('stops no task when the handoff succeeds', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = adapter.wrap(untilAborted, options);

    // Act
    await handler({}, lambdaContext(REMAINING));

    // Assess
    expect(ecs.commandCalls(StopTaskCommand)).toHaveLength(0);
  });
});
