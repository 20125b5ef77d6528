import { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError, HandedOffError } from '../../src/errors.js';
import { parseOutcome, parseQueuedLaunch } from '../../src/protocol/index.js';
import type { FargateFallbackOptions, HandoffAnswer } from '../../src/types.js';
import { adapters } from '../helpers/adapters.js';
import { awsError, lambdaContext, memoryLogger, mockedOptions, sleep } from '../helpers/lambda.js';

const MARGIN = 1_000;
const REMAINING = MARGIN + 60;
const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef';
const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/report-job-launches';
const BUCKET = 'envelopes-bucket';

describe.each(adapters)('$name with a launch queue', (adapter) => {
  const ecs = mockClient(ECSClient);
  const s3 = mockClient(S3Client);
  const sqs = mockClient(SQSClient);
  let logger: ReturnType<typeof memoryLogger>;
  let options: FargateFallbackOptions;

  beforeEach(() => {
    ecs.reset();
    s3.reset();
    sqs.reset();
    s3.on(PutObjectCommand).resolves({});
    logger = memoryLogger();
    options = { ...mockedOptions(logger, MARGIN), payloadBucket: BUCKET, launchQueue: QUEUE };
  });

  afterEach(() => {
    ecs.reset();
    s3.reset();
    sqs.reset();
  });

  /** A handler that works until it is aborted, keeping the abort's reason. */
  const recordingAbort = (reasons: unknown[]) =>
    adapter.wrap(
      (_event, _context, { signal }) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener(
            'abort',
            () => {
              reasons.push(signal.reason);
              reject(signal.reason);
            },
            { once: true },
          );
        }),
      options,
    );

  it('queues the launch at the first throttled RunTask and answers queued, with the very RunTask the launcher must make', async () => {
    // Prepare
    ecs.on(RunTaskCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
    const reasons: unknown[] = [];
    const handler = recordingAbort(reasons);
    const context = lambdaContext(REMAINING);

    // Act
    const answer = (await handler({ rows: 3 }, context)) as HandoffAnswer;

    // Assess
    expect(answer).toMatchObject({
      status: 'queued',
      requestId: context.awsRequestId,
      launchQueue: QUEUE,
      messageId: 'm-1',
    });
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
    const [sent] = sqs.commandCalls(SendMessageCommand);
    expect(sent?.args[0].input.QueueUrl).toBe(QUEUE);
    const launch = parseQueuedLaunch(String(sent?.args[0].input.MessageBody));
    const runTask = ecs.commandCalls(RunTaskCommand)[0]?.args[0].input;
    expect(launch).toMatchObject({
      requestId: context.awsRequestId,
      functionName: 'report-job',
      functionVersion: '7',
      placement: { cluster: 'jobs', taskDefinition: 'immortal-runner:3', capacity: 'FARGATE' },
      records: { bucket: BUCKET },
    });
    expect(launch.overrides).toEqual(runTask?.overrides);
    // The wrapper aborts the handler's signal with the handoff (middy aborts it at its own timeout).
    if (adapter.name === 'withFargateFallback') {
      expect(reasons[0]).toBeInstanceOf(HandedOffError);
      expect((reasons[0] as HandedOffError).taskArn).toBeUndefined();
    }
    const record = s3
      .commandCalls(PutObjectCommand)
      .map((call) => parseOutcome(String(call.args[0].input.Body)))
      .find((r) => r?.status === 'queued');
    expect(record).toMatchObject({ writer: 'wrapper', requestId: context.awsRequestId });
    expect(record?.taskArn).toBeUndefined();
  });

  it('queues the launch when no placement has capacity', async () => {
    // Prepare
    ecs
      .on(RunTaskCommand)
      .resolves({ tasks: [], failures: [{ reason: 'Capacity is unavailable at this time' }] });
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-2' });
    const handler = adapter.wrap(() => new Promise(() => {}), {
      ...options,
      capacity: 'FARGATE_SPOT,FARGATE',
    });

    // Act
    const answer = (await handler({}, lambdaContext(REMAINING))) as HandoffAnswer;

    // Assess: Spot, then on-demand, then queued
    expect(answer.status).toBe('queued');
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(2);
  });

  it('queues the launch when RunTask never answers, so that the launcher settles it under the same token', async () => {
    // Prepare
    ecs.on(RunTaskCommand).callsFake(() => new Promise(() => {}));
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-3' });
    const handler = adapter.wrap(() => new Promise(() => {}), options);
    const context = lambdaContext(REMAINING);

    // Act
    const answer = (await handler({}, context)) as HandoffAnswer;

    // Assess
    expect(answer).toMatchObject({ status: 'queued', requestId: context.awsRequestId });
    const launch = parseQueuedLaunch(
      String(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody),
    );
    expect(launch.overrides).toEqual(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input.overrides);
  });

  it('leaves half the time to queue the launch when RunTask does not answer, so that a slow queue still takes it', async () => {
    // Prepare: 3.5 s until the deadline guard; SendMessage answers 1.3 s after it is called
    ecs.on(RunTaskCommand).callsFake(() => new Promise(() => {}));
    let sentAfterMs = 0;
    const started = Date.now();
    sqs.on(SendMessageCommand).callsFake(async () => {
      sentAfterMs = Date.now() - started;
      await sleep(1_300);
      return { MessageId: 'm-4' };
    });
    const handler = adapter.wrap(() => new Promise(() => {}), { ...options, marginMs: 4_000 });

    // Act
    const answer = (await handler({}, lambdaContext(4_060))) as HandoffAnswer;

    // Assess: queued about 1.75 s into the handoff (half of 3.5 s), in time for the slow answer
    expect(answer).toMatchObject({ status: 'queued', messageId: 'm-4' });
    expect(sentAfterMs).toBeGreaterThanOrEqual(1_700);
    expect(sentAfterMs).toBeLessThan(2_600);
  });

  it('goes back to RunTask when the launch cannot be queued, and says why', async () => {
    // Prepare
    ecs
      .on(RunTaskCommand)
      .rejectsOnce(awsError('ThrottlingException', 'Rate exceeded'))
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    sqs
      .on(SendMessageCommand)
      .rejects(awsError('AccessDenied', 'not authorized to perform: sqs:SendMessage'));
    const handler = adapter.wrap(() => new Promise(() => {}), options);

    // Act
    const answer = (await handler({}, lambdaContext(REMAINING))) as HandoffAnswer;

    // Assess
    expect(answer).toMatchObject({ status: 'handed-off', taskArn: TASK_ARN });
    expect(logger.records.find((r) => r.level === 'ERROR')).toMatchObject({
      message: 'The launch could not be queued; the handoff keeps trying RunTask',
      attributes: {
        launchQueue: QUEUE,
        error: expect.objectContaining({ message: expect.stringMatching(/sqs:SendMessage/) }),
      },
    });
  });

  it('fails loudly with both causes when the start can be neither queued nor started', async () => {
    // Prepare
    ecs.on(RunTaskCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));
    sqs
      .on(SendMessageCommand)
      .rejects(awsError('AccessDenied', 'not authorized to perform: sqs:SendMessage'));
    const handler = adapter.wrap(() => new Promise(() => {}), options);
    const context = lambdaContext(REMAINING);

    // Act
    const outcome = handler({}, context);

    // Assess: the last RunTask's failure, and before it the throttling and the queue's refusal
    await expect(outcome).rejects.toMatchObject({
      name: 'HandoffError',
      reason: 'deadline',
      requestId: context.awsRequestId,
    });
    const error = (await outcome.catch((caught: unknown) => caught)) as Error & { attempts: number };
    expect(error.message).toMatch(
      /^no Fargate task could be started before the deadline .*; before those attempts, the task could not start now \(Rate exceeded\) after 1 RunTask attempt, and the launch could not be queued on .*report-job-launches: not authorized to perform: sqs:SendMessage; check the queue/,
    );
    expect(error.attempts).toBe(ecs.commandCalls(RunTaskCommand).length);
    expect(error.attempts).toBeGreaterThan(1);
  });

  it('says the queue did not answer in time, not that RunTask did, when SendMessage outlives the deadline', async () => {
    // Prepare
    ecs.on(RunTaskCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));
    sqs.on(SendMessageCommand).callsFake(() => new Promise(() => {}));
    const handler = adapter.wrap(() => new Promise(() => {}), options);

    // Act
    const outcome = handler({}, lambdaContext(REMAINING));

    // Assess: one RunTask call, then the queue's silence until the guard; no RunTask after it
    await expect(outcome).rejects.toMatchObject({ name: 'HandoffError', reason: 'deadline', attempts: 1 });
    await expect(outcome).rejects.toThrow(
      /^the task could not start now \(Rate exceeded\) after 1 RunTask attempt, and the launch could not be queued on .*report-job-launches: SendMessage did not answer before the deadline .*; if SQS took the message all the same, the launcher starts its task with this invocation's client token, .*; no time was left to try RunTask again before the deadline$/,
    );
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
  });

  it('says that RunTask went unanswered, once, when neither it nor the queue answers before the deadline', async () => {
    // Prepare
    ecs.on(RunTaskCommand).callsFake(() => new Promise(() => {}));
    sqs.on(SendMessageCommand).callsFake(() => new Promise(() => {}));
    const handler = adapter.wrap(() => new Promise(() => {}), options);

    // Act
    const outcome = handler({}, lambdaContext(REMAINING));

    // Assess
    await expect(outcome).rejects.toMatchObject({ name: 'HandoffError', reason: 'deadline', attempts: 1 });
    await expect(outcome).rejects.toThrow(
      /^the task could not start now \(the last RunTask call had not answered\) after 1 RunTask attempt, and the launch could not be queued on .*: SendMessage did not answer before the deadline/,
    );
  });

  it('refuses a launch queue that is not a queue URL, or has no bucket for the records', () => {
    // Act
    const byName = () => adapter.wrap(() => 1, { ...options, launchQueue: 'report-job-launches' });
    const withoutBucket = () => {
      const { payloadBucket: _bucket, ...rest } = options;
      return adapter.wrap(() => 1, rest);
    };

    // Assess
    expect(byName).toThrow(ConfigurationError);
    expect(byName).toThrow(/is not an SQS queue URL .*give the queue's URL, not its name or ARN/);
    expect(withoutBucket).toThrow(/launchQueue is set but no payload bucket is set/);
  });
});
