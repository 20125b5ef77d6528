import { describe, expect, it } from 'vitest';
import { EnvelopeError } from '../../src/errors.js';
import { outcomeRecord, summarizeOutcomes } from '../../src/outcome.js';
import { parseQueuedLaunch, QUEUED_LAUNCH_KIND, type QueuedLaunch } from '../../src/queued-launch.js';

const launch: QueuedLaunch = {
  kind: QUEUED_LAUNCH_KIND,
  version: 1,
  requestId: 'r-1',
  functionName: 'report',
  functionVersion: '7',
  placement: {
    cluster: 'jobs',
    taskDefinition: 'immortal-runner:3',
    containerName: 'runner',
    subnets: ['subnet-1'],
    securityGroups: [],
    assignPublicIp: false,
    capacity: 'FARGATE',
  },
  overrides: { containerOverrides: [] },
  records: { bucket: 'b', prefix: 'immortal-lambda/outcomes/' },
  envelopeLocation: 'inline',
  envelopeBytes: 10,
  queuedAt: '2026-12-02T00:00:00.000Z',
  handoffAt: 1,
};

describe('parseQueuedLaunch', () => {
  it('reads a launch the wrapper wrote', () => {
    expect(parseQueuedLaunch(JSON.stringify(launch))).toEqual(launch);
  });

  it('names every field a damaged launch lacks, and refuses what is not a launch', () => {
    // Prepare
    const { placement: _placement, requestId: _id, ...damaged } = launch;

    // Act
    const read = () => parseQueuedLaunch(JSON.stringify({ ...damaged, version: 2 }));

    // Assess
    expect(read).toThrow(EnvelopeError);
    expect(read).toThrow(/version 2 is not 1: deploy the launcher of the wrapper's version/);
    expect(read).toThrow(/requestId is missing/);
    expect(read).toThrow(/placement needs cluster, taskDefinition and containerName/);
    expect(() => parseQueuedLaunch('{"kind":"other"}')).toThrow(/not a queued launch \(kind other\)/);
    expect(() => parseQueuedLaunch('not json')).toThrow(/not JSON/);
  });
});

describe('a queued invocation’s status', () => {
  const at = (
    writer: 'wrapper' | 'launcher' | 'runner',
    status: 'queued' | 'handed-off' | 'running',
    taskArn?: string,
  ) =>
    outcomeRecord({
      functionName: 'report',
      requestId: 'r-1',
      status,
      attempt: 1,
      writer,
      ...(taskArn ? { taskArn } : {}),
      updatedAt: '2026-12-02T00:00:00.000Z',
    });

  it('is queued, then handed off with the task the launcher started, then the runner’s', () => {
    expect(summarizeOutcomes([at('wrapper', 'queued')])).toMatchObject({
      status: 'queued',
      taskArn: undefined,
    });
    expect(summarizeOutcomes([at('launcher', 'handed-off', 'arn:t'), at('wrapper', 'queued')])).toMatchObject(
      {
        status: 'handed-off',
        taskArn: 'arn:t',
      },
    );
    expect(
      summarizeOutcomes([
        at('runner', 'running', 'arn:t'),
        at('launcher', 'handed-off', 'arn:t'),
        at('wrapper', 'queued'),
      ]),
    ).toMatchObject({ status: 'running' });
  });
});
