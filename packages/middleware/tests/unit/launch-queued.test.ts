import { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  outcomeRecord,
  parseOutcome,
  QUEUED_LAUNCH_KIND,
  type QueuedLaunch,
} from '../../src/protocol/index.js';
import { launchQueued } from '../../src/safety-net/index.js';
import { awsError, memoryLogger } from '../helpers/lambda.js';

const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef';

const launch = (requestId: string): QueuedLaunch => ({
  kind: QUEUED_LAUNCH_KIND,
  version: 1,
  requestId,
  functionName: 'report-job',
  functionVersion: '7',
  placement: {
    cluster: 'jobs',
    taskDefinition: 'immortal-runner:3',
    containerName: 'runner',
    subnets: ['subnet-0aaaaaaaaaaaaaaa1'],
    securityGroups: [],
    assignPublicIp: false,
    capacity: 'FARGATE',
  },
  overrides: {
    containerOverrides: [
      {
        name: 'runner',
        environment: [{ name: 'FARGATE_FALLBACK_ENVELOPE', value: `{"id":"${requestId}"}` }],
      },
    ],
  },
  records: { bucket: 'envelopes-bucket', prefix: 'immortal-lambda/outcomes/' },
  envelopeLocation: 'inline',
  envelopeBytes: 20,
  queuedAt: new Date().toISOString(),
  handoffAt: Date.now(),
});

const sqsEvent = (...bodies: string[]): SQSEvent => ({
  Records: bodies.map((body, n) => ({
    messageId: `m-${n}`,
    receiptHandle: `h-${n}`,
    body,
    attributes: { ApproximateReceiveCount: '1' } as SQSEvent['Records'][number]['attributes'],
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:launches',
    awsRegion: 'eu-west-1',
  })),
});

const body = (text: string) => ({ transformToString: async () => text });
const remaining = (ms: number) => ({ getRemainingTimeInMillis: () => ms });

describe('launchQueued', () => {
  const ecs = mockClient(ECSClient);
  const s3 = mockClient(S3Client);
  let logger: ReturnType<typeof memoryLogger>;

  beforeEach(() => {
    ecs.reset();
    s3.reset();
    s3.on(PutObjectCommand).resolves({});
    // No record yet: the wrapper's record is missing, and the folder lists empty.
    s3.on(GetObjectCommand).rejects(awsError('NoSuchKey', 'The specified key does not exist.', 404));
    s3.on(ListObjectsV2Command).resolves({ Contents: [] });
    logger = memoryLogger();
  });

  afterEach(() => {
    ecs.reset();
    s3.reset();
  });

  const launcher = () =>
    launchQueued({ ecsClient: new ECSClient({}), s3Client: new S3Client({}), logger, random: () => 0.5 });

  it('makes the RunTask call the wrapper made, with its token, through throttling, and records the task', async () => {
    // Prepare
    ecs
      .on(RunTaskCommand)
      .rejectsOnce(awsError('ThrottlingException', 'Rate exceeded'))
      .resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const queued = launch('r-1');

    // Act
    const response = await launcher()(sqsEvent(JSON.stringify(queued)), remaining(60_000));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const calls = ecs.commandCalls(RunTaskCommand).map((call) => call.args[0].input);
    expect(calls).toHaveLength(2);
    expect(calls.map((input) => input.clientToken)).toEqual(['r-1', 'r-1']);
    expect(calls[0]).toMatchObject({
      cluster: 'jobs',
      taskDefinition: 'immortal-runner:3',
      overrides: queued.overrides,
      startedBy: 'immortal-lambda/r-1',
    });
    const [put] = s3.commandCalls(PutObjectCommand);
    expect(put?.args[0].input.Key).toBe('immortal-lambda/outcomes/report-job/r-1/launched.json');
    expect(parseOutcome(String(put?.args[0].input.Body))).toMatchObject({
      status: 'handed-off',
      writer: 'launcher',
      taskArn: TASK_ARN,
    });
  });

  it('drops a launch whose handler finished in Lambda meanwhile, starting nothing', async () => {
    // Prepare
    s3.on(ListObjectsV2Command).resolves({
      Contents: [{ Key: 'immortal-lambda/outcomes/report-job/r-2/handed-off.json' }],
    });
    s3.on(GetObjectCommand).resolves({
      Body: body(
        JSON.stringify(
          outcomeRecord({
            functionName: 'report-job',
            requestId: 'r-2',
            status: 'not-needed',
            attempt: 1,
            writer: 'wrapper',
            updatedAt: new Date().toISOString(),
          }),
        ),
      ),
    } as never);

    // Act
    const response = await launcher()(sqsEvent(JSON.stringify(launch('r-2'))), remaining(60_000));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
    expect(logger.records.find((r) => r.message === 'A queued launch was dropped')).toBeDefined();
  });

  const wrapperRecord = (requestId: string, status: 'queued' | 'not-needed') =>
    ({
      Body: body(
        JSON.stringify(
          outcomeRecord({
            functionName: 'report-job',
            requestId,
            status,
            attempt: 1,
            writer: 'wrapper',
            updatedAt: new Date().toISOString(),
          }),
        ),
      ),
    }) as never;

  it("reads the wrapper's own record with one GetObject and lists nothing when it is there", async () => {
    // Prepare
    s3.on(GetObjectCommand).resolves(wrapperRecord('r-4', 'queued'));
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });

    // Act
    const response = await launcher()(sqsEvent(JSON.stringify(launch('r-4'))), remaining(60_000));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(s3.commandCalls(GetObjectCommand).map((call) => call.args[0].input.Key)).toEqual([
      'immortal-lambda/outcomes/report-job/r-4/handed-off.json',
    ]);
    expect(s3.commandCalls(ListObjectsV2Command)).toHaveLength(0);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(1);
  });

  it('lists the folder when the read is answered 403 (a missing key, to a role that lists by prefix), and drops a not-needed launch found there', async () => {
    // Prepare
    s3.on(GetObjectCommand)
      .rejectsOnce(awsError('AccessDenied', 'Access Denied', 403))
      .resolves(wrapperRecord('r-5', 'not-needed'));
    s3.on(ListObjectsV2Command).resolves({
      Contents: [{ Key: 'immortal-lambda/outcomes/report-job/r-5/handed-off.json' }],
    });

    // Act
    const response = await launcher()(sqsEvent(JSON.stringify(launch('r-5'))), remaining(60_000));

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(s3.commandCalls(ListObjectsV2Command)).toHaveLength(1);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('reports what it could not start yet, and what is no queued launch, for SQS to deliver again', async () => {
    // Prepare: RunTask stays throttled through the launcher's time
    ecs.on(RunTaskCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));

    // Act: 1.5 s of the launcher's time, 0.5 s of it kept back
    const response = await launchQueued({
      ecsClient: new ECSClient({}),
      s3Client: new S3Client({}),
      logger,
      reserveMs: 500,
    })(sqsEvent(JSON.stringify(launch('r-3')), '{"not":"ours"}'), remaining(1_500));

    // Assess
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm-0' }, { itemIdentifier: 'm-1' }]);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    const errors = logger.records.filter((r) => r.level === 'ERROR').map((r) => String(r.attributes.error));
    expect(errors).toEqual([
      expect.stringMatching(/Rate exceeded/),
      expect.stringMatching(/not a queued launch/),
    ]);
  });
});
