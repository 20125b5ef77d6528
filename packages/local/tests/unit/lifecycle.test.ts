import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECSClient, RunTaskCommand, type RunTaskCommandInput } from '@aws-sdk/client-ecs';
import {
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  PutEventsCommand,
} from '@aws-sdk/client-eventbridge';
import { GetFunctionEventInvokeConfigCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NoLauncher, ProcessLauncher } from '../../src/launcher.js';
import { LocalControlPlane, type TaskStateChangeEvent } from '../../src/plane.js';

const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const region = 'eu-west-1';
let scratch: string;

const input = (extra: Partial<RunTaskCommandInput> = {}): RunTaskCommandInput => ({
  cluster: 'local',
  taskDefinition: 'immortal-runner',
  launchType: 'FARGATE',
  networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-0000000000000000a'] } },
  overrides: {
    containerOverrides: [
      { name: 'runner', environment: [{ name: 'FARGATE_FALLBACK_ENVELOPE', value: '{}' }] },
    ],
  },
  ...extra,
});

/** A "runner" that prints its task's metadata and then ignores SIGTERM, as a stuck handler would. */
function stubbornRunner(): string {
  const path = join(scratch, 'stubborn.mjs');
  writeFileSync(
    path,
    `process.on('SIGTERM', () => console.log('got SIGTERM'));
const metadata = await (await fetch(process.env.ECS_CONTAINER_METADATA_URI_V4 + '/task')).json();
console.log(JSON.stringify({ metadata }));
setInterval(() => {}, 1000);`,
  );
  return path;
}

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'plane-lifecycle-'));
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describe('task lifecycle faults and events', () => {
  let plane: LocalControlPlane;
  let ecs: ECSClient;
  const events: TaskStateChangeEvent[] = [];

  const start = async (launcher: ConstructorParameters<typeof LocalControlPlane>[0]) => {
    plane = new LocalControlPlane({ ...launcher, provisioningMs: 10 });
    plane.on('task-state-change', (event: TaskStateChangeEvent) => events.push(event));
    const url = await plane.start();
    ecs = new ECSClient({ endpoint: url, region, credentials, maxAttempts: 1 });
  };

  afterEach(async () => {
    events.length = 0;
    await plane.stop();
  });

  it('interrupts a task as Spot does: SIGTERM, SIGKILL after the stop timeout, a SpotInterruption event with the overrides', async () => {
    // Prepare
    await start({ launcher: new ProcessLauncher({ cli: stubbornRunner() }) });
    const lines: string[] = [];
    plane.on('task-log', ({ line }: { line: string }) => lines.push(line));
    const started = await ecs.send(new RunTaskCommand(input({ startedBy: 'immortal-lambda/r-1' })));
    const arn = String(started.tasks?.[0]?.taskArn);
    while (!lines.some((line) => line.includes('metadata'))) await new Promise((r) => setTimeout(r, 20));

    // Act
    plane.interruptTask(arn, { stopTimeoutMs: 300 });
    const stopped = await plane.waitForTask(arn);

    // Assess
    expect(lines).toContain('got SIGTERM');
    expect(JSON.parse(lines.find((line) => line.includes('metadata')) as string).metadata).toMatchObject({
      TaskARN: arn,
      LaunchType: 'FARGATE',
    });
    expect(stopped).toMatchObject({ stopCode: 'SpotInterruption', exitCode: 137 });
    expect(events.map((event) => event.detail.lastStatus)).toEqual(['RUNNING', 'STOPPED']);
    expect(events[1]).toMatchObject({
      source: 'aws.ecs',
      'detail-type': 'ECS Task State Change',
      resources: [arn],
      detail: {
        taskArn: arn,
        lastStatus: 'STOPPED',
        stopCode: 'SpotInterruption',
        stoppedReason: 'Your Spot Task was interrupted.',
        startedBy: 'immortal-lambda/r-1',
        group: 'family:immortal-runner',
        containers: [{ name: 'runner', exitCode: 137 }],
        overrides: {
          containerOverrides: [
            { name: 'runner', environment: [{ name: 'FARGATE_FALLBACK_ENVELOPE', value: '{}' }] },
          ],
        },
      },
    });
  });

  it('kills a task for its memory with exit code 137 and the reason ECS gives', async () => {
    // Prepare
    await start({ launcher: new NoLauncher() });
    const arn = String((await ecs.send(new RunTaskCommand(input()))).tasks?.[0]?.taskArn);
    while (plane.task(arn)?.lastStatus !== 'RUNNING') await new Promise((r) => setTimeout(r, 10));

    // Act
    plane.killTaskForMemory(arn);
    const stopped = await plane.waitForTask(arn);

    // Assess
    expect(stopped).toMatchObject({
      exitCode: 137,
      containerReason: 'OutOfMemoryError: Container killed due to memory usage',
    });
    expect(events.at(-1)?.detail.containers[0]).toMatchObject({
      exitCode: 137,
      reason: expect.stringMatching(/^OutOfMemoryError/),
    });
  });

  it('fails exactly the next N starts', async () => {
    // Prepare
    await start({ launcher: new NoLauncher() });
    plane.faults = { failToStart: 1 };

    // Act
    const first = String((await ecs.send(new RunTaskCommand(input()))).tasks?.[0]?.taskArn);
    const second = String((await ecs.send(new RunTaskCommand(input()))).tasks?.[0]?.taskArn);
    const failed = await plane.waitForTask(first);
    while (plane.task(second)?.lastStatus !== 'RUNNING') await new Promise((r) => setTimeout(r, 10));

    // Assess
    expect(failed).toMatchObject({
      stopCode: 'TaskFailedToStart',
      exitCode: undefined,
      stoppedReason: expect.stringMatching(/^ResourceInitializationError/),
    });
    expect(plane.task(second)?.lastStatus).toBe('RUNNING');
    expect(plane.faults.failToStart).toBe(0);
  });

  it('names a task it does not have', async () => {
    await start({ launcher: new NoLauncher() });
    expect(() => plane.interruptTask('nope')).toThrow(/no task nope/);
  });
});

describe('what destinations are sent to', () => {
  const plane = new LocalControlPlane({ launcher: new NoLauncher() });
  let url: string;

  beforeAll(async () => {
    url = await plane.start();
    plane.registerFunction({
      name: 'echo',
      folder: join(import.meta.dirname, '..', 'fixtures', 'echo'),
      handler: 'index.handler',
      destinations: { onFailure: 'arn:aws:sqs:eu-west-1:123456789012:failures' },
    });
    plane.registerFunction({
      name: 'plain',
      folder: join(import.meta.dirname, '..', 'fixtures', 'echo'),
      handler: 'index.handler',
    });
  });

  afterAll(async () => {
    await plane.stop();
  });

  it("answers EventBridge's ListRules and ListTargetsByRule from the rules registered", async () => {
    // Prepare
    const events = new EventBridgeClient({ endpoint: url, region, credentials });
    const pattern = { source: ['aws.ecs'], detail: { lastStatus: ['STOPPED'] } };
    plane.registerRule({
      name: 'stopped-runners',
      eventPattern: pattern,
      targets: [{ id: 'Target0', arn: 'arn:aws:lambda:eu-west-1:123456789012:function:watchdog' }],
    });

    // Act
    const rules = await events.send(new ListRulesCommand({ NamePrefix: 'stopped' }));
    const targets = await events.send(new ListTargetsByRuleCommand({ Rule: 'stopped-runners' }));
    const missing = events.send(new ListTargetsByRuleCommand({ Rule: 'nope' }));

    // Assess
    expect(rules.Rules).toEqual([
      expect.objectContaining({
        Name: 'stopped-runners',
        State: 'ENABLED',
        EventPattern: JSON.stringify(pattern),
      }),
    ]);
    expect(targets.Targets).toEqual([
      { Id: 'Target0', Arn: 'arn:aws:lambda:eu-west-1:123456789012:function:watchdog' },
    ]);
    await expect(missing).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('records an SQS message, an SNS publication, an EventBridge event and an asynchronous invocation', async () => {
    // Prepare
    const sqs = new SQSClient({ endpoint: url, region, credentials, useQueueUrlAsEndpoint: false });
    const sns = new SNSClient({ endpoint: url, region, credentials });
    const events = new EventBridgeClient({ endpoint: url, region, credentials });
    const lambda = new LambdaClient({ endpoint: url, region, credentials });

    // Act
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/q',
        MessageBody: 'to sqs',
      }),
    );
    await sns.send(
      new PublishCommand({ TopicArn: 'arn:aws:sns:eu-west-1:123456789012:t', Message: 'to sns' }),
    );
    const put = await events.send(
      new PutEventsCommand({
        Entries: [{ EventBusName: 'bus', Source: 'lambda', DetailType: 'x', Detail: '{"to":"events"}' }],
      }),
    );
    const invoked = await lambda.send(
      new InvokeCommand({
        FunctionName: 'relaunch',
        InvocationType: 'Event',
        Payload: new TextEncoder().encode('{"to":"lambda"}'),
      }),
    );

    // Assess
    expect(put.FailedEntryCount).toBe(0);
    expect(invoked.StatusCode).toBe(202);
    expect(plane.deliveries).toEqual([
      { service: 'sqs', target: 'https://sqs.eu-west-1.amazonaws.com/123456789012/q', payload: 'to sqs' },
      { service: 'sns', target: 'arn:aws:sns:eu-west-1:123456789012:t', payload: 'to sns' },
      {
        service: 'eventbridge',
        target: 'bus',
        payload: '{"to":"events"}',
        source: 'lambda',
        detailType: 'x',
      },
      { service: 'lambda', target: 'relaunch', payload: '{"to":"lambda"}' },
    ]);
  });

  it('answers GetFunctionEventInvokeConfig with the destinations, and ResourceNotFoundException without', async () => {
    // Prepare
    const lambda = new LambdaClient({ endpoint: url, region, credentials });

    // Act
    const config = await lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'echo' }));
    const none = lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'plain' }));

    // Assess
    expect(config.DestinationConfig?.OnFailure?.Destination).toBe(
      'arn:aws:sqs:eu-west-1:123456789012:failures',
    );
    await expect(none).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});

describe('destinations under an authorize hook', () => {
  it('decides each delivery on its queue, topic or bus, and answers a refused one as the service does, delivering nothing', async () => {
    // Prepare: only the queue "allowed" may be sent to.
    const plane = new LocalControlPlane({
      launcher: new NoLauncher(),
      authorize: (call) => call.resource === 'arn:aws:sqs:eu-west-1:123456789012:allowed',
    });
    const url = await plane.start();
    const sqs = new SQSClient({ endpoint: url, region, credentials, useQueueUrlAsEndpoint: false });
    const sns = new SNSClient({ endpoint: url, region, credentials });
    const events = new EventBridgeClient({ endpoint: url, region, credentials });
    const queue = (name: string) => `https://sqs.eu-west-1.amazonaws.com/123456789012/${name}`;

    try {
      // Act
      await sqs.send(new SendMessageCommand({ QueueUrl: queue('allowed'), MessageBody: 'in' }));
      const toQueue = sqs.send(new SendMessageCommand({ QueueUrl: queue('other'), MessageBody: 'out' }));
      const toTopic = sns.send(
        new PublishCommand({ TopicArn: 'arn:aws:sns:eu-west-1:123456789012:t', Message: 'out' }),
      );
      const toBus = events.send(
        new PutEventsCommand({
          Entries: [{ EventBusName: 'bus', Source: 's', DetailType: 'd', Detail: '{}' }],
        }),
      );

      // Assess
      await expect(toQueue).rejects.toMatchObject({
        name: 'AccessDenied',
        $metadata: { httpStatusCode: 403 },
      });
      await expect(toTopic).rejects.toMatchObject({ name: 'AuthorizationErrorException' });
      await expect(toBus).rejects.toMatchObject({ name: 'AccessDeniedException' });
      expect(plane.deliveries.map((delivery) => delivery.payload)).toEqual(['in']);
      expect(plane.audit.map((call) => `${call.action} ${call.resource}`)).toEqual([
        'sqs:SendMessage arn:aws:sqs:eu-west-1:123456789012:allowed',
        'sqs:SendMessage arn:aws:sqs:eu-west-1:123456789012:other',
        'sns:Publish arn:aws:sns:eu-west-1:123456789012:t',
        'events:PutEvents arn:aws:events:eu-west-1:123456789012:event-bus/bus',
      ]);
    } finally {
      await plane.stop();
    }
  });
});
