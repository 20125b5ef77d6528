import { handedOffEnvelope } from '@immortal-lambda/local';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/errors.js';
import {
  classifyStop,
  failedInvocations,
  RelaunchError,
  relaunchFailures,
  type TaskStateChangeDetail,
  taskWatchdog,
} from '../../src/safety-net/index.js';
import { getInvocationStatus } from '../../src/status.js';

const env = {
  AWS_REGION: 'eu-west-1',
  FARGATE_FALLBACK_CLUSTER: 'jobs',
  FARGATE_FALLBACK_TASK_DEFINITION: 'runner',
  FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1',
};

const runnerOverride = {
  containerOverrides: [{ name: 'runner', environment: [{ name: 'FARGATE_FALLBACK_ENVELOPE', value: '{}' }] }],
};

const stopped = (fields: Partial<TaskStateChangeDetail>): TaskStateChangeDetail => ({
  lastStatus: 'STOPPED',
  // A runner task of the cluster and family the watchdog serves (env).
  clusterArn: 'arn:aws:ecs:eu-west-1:123456789012:cluster/jobs',
  taskDefinitionArn: 'arn:aws:ecs:eu-west-1:123456789012:task-definition/runner:3',
  capacityProviderName: 'FARGATE',
  overrides: runnerOverride,
  ...fields,
});

/** A stopped runner task of one invocation of `functionName`, its envelope inline in the override. */
const stoppedRun = (
  invocation: { functionName: string; requestId: string },
  fields: Partial<TaskStateChangeDetail>,
  more: { name: string; value: string }[] = [],
): TaskStateChangeDetail =>
  stopped({
    taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/1',
    ...fields,
    overrides: {
      containerOverrides: [
        {
          name: 'runner',
          environment: [
            { name: 'FARGATE_FALLBACK_ENVELOPE', value: JSON.stringify(handedOffEnvelope(invocation)) },
            ...more,
          ],
        },
      ],
    },
  });

/** The EventBridge event of a task state change. */
const stateChange = (detail: TaskStateChangeDetail) => ({
  source: 'aws.ecs',
  'detail-type': 'ECS Task State Change',
  detail,
});

/** Destination clients that record what each sends and answer `answers[name]` (default `{}`). */
const recordingClients = (answers: Record<string, unknown> = {}) => {
  const sent: { client: string; input: Record<string, unknown> }[] = [];
  const client = (name: string) => () => ({
    send: async (command: { input: Record<string, unknown> }) => {
      sent.push({ client: name, input: command.input });
      return answers[name] ?? {};
    },
  });
  return { sent, clients: { lambda: client('lambda'), sqs: client('sqs') } as never };
};

describe('classifyStop', () => {
  it.each([
    [
      'a Spot interruption',
      { stopCode: 'SpotInterruption', containers: [{ name: 'runner', exitCode: 143 }] },
      'relaunch',
      true,
    ],
    [
      'SIGTERM on Spot',
      {
        capacityProviderName: 'FARGATE_SPOT',
        stopCode: 'EssentialContainerExited',
        containers: [{ name: 'runner', exitCode: 143 }],
      },
      'relaunch',
      true,
    ],
    [
      'a failed start',
      {
        stopCode: 'TaskFailedToStart',
        stoppedReason: 'ResourceInitializationError: x',
        containers: [{ name: 'runner' }],
      },
      'relaunch',
      false,
    ],
    [
      'an image pull failure',
      {
        stopCode: 'EssentialContainerExited',
        stoppedReason: 'CannotPullContainerError: pull access denied',
        containers: [{ name: 'runner' }],
      },
      'relaunch',
      false,
    ],
    [
      'out of memory',
      {
        stopCode: 'EssentialContainerExited',
        containers: [
          { name: 'runner', exitCode: 137, reason: 'OutOfMemoryError: Container killed due to memory usage' },
        ],
      },
      'relaunch',
      false,
    ],
    ['code that could not be fetched', { containers: [{ name: 'runner', exitCode: 3 }] }, 'relaunch', false],
    ['success', { containers: [{ name: 'runner', exitCode: 0 }] }, 'success', undefined],
    ['a handler error', { containers: [{ name: 'runner', exitCode: 1 }] }, 'result', undefined],
    ['bad input', { containers: [{ name: 'runner', exitCode: 2 }] }, 'result', undefined],
    ['a run past its maximum', { containers: [{ name: 'runner', exitCode: 124 }] }, 'result', undefined],
    [
      'a run that finished before its Spot interruption',
      {
        stopCode: 'SpotInterruption',
        capacityProviderName: 'FARGATE_SPOT',
        containers: [{ name: 'runner', exitCode: 0 }],
      },
      'success',
      undefined,
    ],
    [
      'a sidecar that exited 0 beside a runner killed for its memory',
      {
        containers: [
          { name: 'xray-daemon', exitCode: 0 },
          { name: 'runner', exitCode: 137, reason: 'OutOfMemoryError: Container killed due to memory usage' },
        ],
      },
      'relaunch',
      false,
    ],
    [
      'an override without a container name: the runner by its default name, not the first container',
      {
        containers: [
          { name: 'xray-daemon', exitCode: 0 },
          { name: 'runner', exitCode: 1 },
        ],
        overrides: {
          containerOverrides: [{ environment: [{ name: 'FARGATE_FALLBACK_ENVELOPE', value: '{}' }] }],
        },
      },
      'result',
      undefined,
    ],
    [
      "the wrapper's StopTask",
      {
        stopCode: 'UserInitiated',
        stoppedReason: 'immortal-lambda: the invocation finished in Lambda while its handoff was in flight',
        containers: [{ name: 'runner', exitCode: 143 }],
      },
      'ignore',
      undefined,
    ],
    [
      "an operator's StopTask",
      {
        stopCode: 'UserInitiated',
        stoppedReason: 'deploying',
        containers: [{ name: 'runner', exitCode: 143 }],
      },
      'cancelled',
      undefined,
    ],
    [
      'a StopTask without a reason',
      { stopCode: 'UserInitiated', containers: [{ name: 'runner', exitCode: 143 }] },
      'cancelled',
      undefined,
    ],
  ] as const)('%s: %s', (_what, detail, kind, onDemand) => {
    // Act
    const verdict = classifyStop(stopped(detail as unknown as Partial<TaskStateChangeDetail>));

    // Assess
    expect(verdict.kind).toBe(kind);
    if (onDemand !== undefined) expect(verdict).toMatchObject({ onDemand });
  });

  it.each([
    ['no node on its PATH', 'exec: "node": executable file not found in $PATH: unknown'],
    ['a node for another CPU', 'exec /usr/local/bin/node: exec format error'],
  ])(
    'an image that cannot run the runner (%s) is a result with the bad-configuration code, not relaunched',
    (_what, error) => {
      // Prepare
      const detail = stopped({
        stopCode: 'TaskFailedToStart',
        stoppedReason: `CannotStartContainerError: Error response from daemon: ${error}`,
        containers: [{ name: 'runner', reason: `CannotStartContainerError: ${error}` }],
      });

      // Act
      const verdict = classifyStop(detail);

      // Assess
      expect(verdict).toMatchObject({ kind: 'result', exitCode: 2 });
      expect(verdict.reason).toMatch(/no usable node on its PATH, or is built for another CPU/);
      expect(verdict.reason).toContain(error);
    },
  );

  it('ignores a task that has not stopped', () => {
    expect(classifyStop(stopped({ lastStatus: 'RUNNING' })).kind).toBe('ignore');
  });
});

describe('taskWatchdog', () => {
  const watchdog = taskWatchdog({ env });

  it.each([
    [
      'another event',
      { source: 'aws.s3', 'detail-type': 'Object Created', detail: {} },
      /not an ECS Task State Change/,
    ],
    [
      'a task that is not a runner',
      {
        source: 'aws.ecs',
        'detail-type': 'ECS Task State Change',
        detail: stopped({ overrides: { containerOverrides: [{ name: 'web' }] } }),
      },
      /carries no FARGATE_FALLBACK_ENVELOPE/,
    ],
    [
      'a task the wrapper stopped on purpose',
      {
        source: 'aws.ecs',
        'detail-type': 'ECS Task State Change',
        detail: stopped({ stopCode: 'UserInitiated', stoppedReason: 'immortal-lambda: duplicate of t-1' }),
      },
      /the wrapper stopped the task on purpose/,
    ],
  ])('ignores %s without calling AWS', async (_what, event, reason) => {
    // Act
    const outcome = await watchdog(event);

    // Assess
    expect(outcome.action).toBe('ignored');
    expect(outcome.reason).toMatch(reason);
  });

  it('fails loudly, for Lambda to retry, when the envelope of a stopped task cannot be read', async () => {
    // Prepare
    const event = {
      source: 'aws.ecs',
      'detail-type': 'ECS Task State Change',
      detail: stopped({
        taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/1',
        containers: [{ name: 'runner', exitCode: 137 }],
        overrides: {
          containerOverrides: [
            { name: 'runner', environment: [{ name: 'FARGATE_FALLBACK_ENVELOPE', value: '{"kind":"x"}' }] },
          ],
        },
      }),
    };

    // Act
    const watching = watchdog(event);

    // Assess
    await expect(watching).rejects.toBeInstanceOf(RelaunchError);
    await expect(watchdog(event)).rejects.toThrow(/envelope of stopped task .*task\/jobs\/1 cannot be read/);
  });

  it('sends a final failure where FARGATE_FALLBACK_FINAL_FAILURES says, not to the function destination', async () => {
    // Prepare: the function's on-failure destination is the relaunch function, which skips final failures
    const { sent, clients } = recordingClients();
    const finalWatchdog = taskWatchdog({
      env: { ...env, FARGATE_FALLBACK_FINAL_FAILURES: 'arn:aws:sqs:eu-west-1:123456789012:undone' },
      maxAttempts: 1,
      destinations: clients,
    });
    const detail = stoppedRun(
      { functionName: 'report', requestId: 'final-1' },
      { stopCode: 'SpotInterruption', containers: [{ name: 'runner', exitCode: 143 }] },
    );

    // Act
    const outcome = await finalWatchdog(stateChange(detail));

    // Assess
    expect(outcome).toMatchObject({ action: 'gave-up', requestId: 'final-1' });
    expect(sent.map((each) => each.client)).toEqual(['sqs']);
    expect(sent[0]?.input.QueueUrl).toBe('https://sqs.eu-west-1.amazonaws.com/123456789012/undone');
  });

  it("ends an invocation whose task someone else stopped as failed (cancelled), sent to the function's on-failure destination", async () => {
    // Prepare
    const onFailure = 'arn:aws:sqs:eu-west-1:123456789012:report-failures';
    const { sent, clients } = recordingClients({
      lambda: { DestinationConfig: { OnFailure: { Destination: onFailure } } },
    });
    const cancelWatchdog = taskWatchdog({ env, destinations: clients });
    const detail = stoppedRun(
      { functionName: 'report', requestId: 'cancel-1' },
      {
        stopCode: 'UserInitiated',
        stoppedReason: 'an operator stopped it',
        containers: [{ name: 'runner', exitCode: 143 }],
      },
    );

    // Act
    const outcome = await cancelWatchdog(stateChange(detail));

    // Assess
    expect(outcome).toMatchObject({ action: 'result', requestId: 'cancel-1' });
    expect(outcome.reason).toMatch(/cancelled: .*StopTask \(an operator stopped it\), not by the wrapper/);
    const delivered = sent.find((each) => each.client === 'sqs');
    expect(delivered?.input.QueueUrl).toBe(
      'https://sqs.eu-west-1.amazonaws.com/123456789012/report-failures',
    );
    const body = JSON.parse(String(delivered?.input.MessageBody));
    expect(body.requestContext.condition).toBe('RetriesExhausted');
    expect(JSON.stringify(body.responsePayload)).toMatch(/cancelled/);
  });

  it('takes a 403 for a standby\'s missing resume object, which a listing shows is not there, as "not told to go"', async () => {
    // Prepare: S3 answers a missing key with 403 to a role that may list the bucket only by prefix.
    const s3Client = {
      send: async (command: { constructor: { name: string } }) => {
        if (command.constructor.name === 'ListObjectsV2Command') return { Contents: [] };
        throw Object.assign(new Error('Access Denied'), {
          name: 'AccessDenied',
          $metadata: { httpStatusCode: 403 },
        });
      },
    };
    const standbyWatchdog = taskWatchdog({ env, s3Client: s3Client as never });
    const detail = stoppedRun(
      { functionName: 'report', requestId: 'standby-1' },
      { containers: [{ name: 'runner', exitCode: 3 }] },
      [
        {
          name: 'FARGATE_FALLBACK_STANDBY',
          value: 's3://b/immortal-lambda/outcomes/report/standby-1/resume.json',
        },
      ],
    );

    // Act
    const outcome = await standbyWatchdog(stateChange(detail));

    // Assess
    expect(outcome).toMatchObject({ action: 'ignored' });
    expect(outcome.reason).toMatch(/stopped before it was told to go/);
  });

  it.each([
    [
      'another cluster',
      { clusterArn: 'arn:aws:ecs:eu-west-1:123456789012:cluster/other' },
      /its cluster is other, not jobs/,
    ],
    [
      'another family',
      { taskDefinitionArn: 'arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1' },
      /its family is web, not runner/,
    ],
    [
      'another region',
      { clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/jobs' },
      /ran in us-east-1, not eu-west-1/,
    ],
    [
      'another account',
      { clusterArn: 'arn:aws:ecs:eu-west-1:999999999999:cluster/jobs' },
      /ran in account 999999999999, not 123456789012/,
    ],
  ])('leaves alone a stopped task of %s, without calling AWS', async (_what, fields, reason) => {
    // Prepare: a Spot interruption, which would otherwise be relaunched.
    const event = stateChange(
      stopped({ stopCode: 'SpotInterruption', containers: [{ name: 'runner', exitCode: 143 }], ...fields }),
    );
    const context = {
      getRemainingTimeInMillis: () => 60_000,
      invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:watchdog',
    };

    // Act
    const outcome = await watchdog(event, context);

    // Assess
    expect(outcome.action).toBe('ignored');
    expect(outcome.reason).toMatch(reason);
  });

  it('leaves alone a task whose envelope names another function than the one it serves', async () => {
    // Prepare
    const served = taskWatchdog({
      env: { ...env, FARGATE_FALLBACK_FUNCTION_ARN: 'arn:aws:lambda:eu-west-1:123456789012:function:report' },
    });
    const detail = stoppedRun(
      { functionName: 'payroll', requestId: 'other-1' },
      { stopCode: 'SpotInterruption', containers: [{ name: 'runner', exitCode: 143 }] },
    );

    // Act
    const outcome = await served(stateChange(detail));

    // Assess
    expect(outcome).toMatchObject({ action: 'ignored', requestId: 'other-1' });
    expect(outcome.reason).toMatch(/ran payroll, not report/);
  });

  it('refuses a maxAttempts that is not a whole number of at least 1', () => {
    expect(() => taskWatchdog({ env, maxAttempts: 0 })).toThrow(/maxAttempts is 0/);
    expect(() => taskWatchdog({ env: { ...env, FARGATE_FALLBACK_MAX_ATTEMPTS: 'lots' } })).toThrow(/"lots"/);
  });
});

describe('failedInvocations', () => {
  const destinationRecord = {
    version: '1.0',
    requestContext: {
      requestId: 'r-1',
      functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report:$LATEST',
      condition: 'RetriesExhausted',
      approximateInvokeCount: 3,
    },
    requestPayload: { id: 1 },
    responsePayload: { errorType: 'Runtime.ExitError', errorMessage: 'signal: killed' },
  };

  it.each([
    ['a destination record sent to a function', destinationRecord],
    [
      'an EventBridge failure event',
      {
        source: 'lambda',
        'detail-type': 'Lambda Function Invocation Result - Failure',
        detail: destinationRecord,
      },
    ],
    [
      'an SQS message holding a destination record',
      { Records: [{ eventSource: 'aws:sqs', messageId: 'm', body: JSON.stringify(destinationRecord) }] },
    ],
    [
      'an SNS message holding a destination record',
      { Records: [{ EventSource: 'aws:sns', Sns: { Message: JSON.stringify(destinationRecord) } }] },
    ],
  ])('reads %s', (_what, event) => {
    const [item] = failedInvocations(event);
    expect(item).toMatchObject({
      requestId: 'r-1',
      event: { id: 1 },
      functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report:$LATEST',
      error: 'Runtime.ExitError: signal: killed',
    });
  });

  it('reads a dead-letter message: the original event, and its attributes', () => {
    // Act
    const [sqs] = failedInvocations({
      Records: [
        {
          eventSource: 'aws:sqs',
          messageId: 'm-1',
          body: '{"id":2}',
          messageAttributes: {
            RequestID: { stringValue: 'r-2', dataType: 'String' },
            ErrorCode: { stringValue: '200', dataType: 'Number' },
            ErrorMessage: { stringValue: 'Task timed out', dataType: 'String' },
          },
        },
      ],
    });

    // Assess
    expect(sqs).toEqual({
      itemIdentifier: 'm-1',
      requestId: 'r-2',
      event: { id: 2 },
      error: '200: Task timed out',
      cause: 'timeout',
    });
  });

  it('names what it cannot read', () => {
    expect(
      failedInvocations({ Records: [{ eventSource: 'aws:sqs', messageId: 'x', body: '{}' }] })[0],
    ).toEqual({
      itemIdentifier: 'x',
      problem: expect.stringMatching(/neither a destination record nor a dead-letter message/),
    });
    expect(failedInvocations('text')[0]).toEqual({ problem: 'the event is not an object' });
    expect(failedInvocations({ hello: 1 })[0]).toMatchObject({
      problem: expect.stringMatching(/not an SQS batch/),
    });
  });
});

describe('relaunchFailures', () => {
  it('reports a dead-letter message of an unnamed function in batchItemFailures, naming the setting', async () => {
    // Prepare
    const handler = relaunchFailures({ env });
    const event = {
      Records: [
        {
          eventSource: 'aws:sqs',
          messageId: 'm-1',
          body: '{}',
          messageAttributes: { RequestID: { stringValue: 'r-1' } },
        },
      ],
    };

    // Act
    const result = await handler(event, { getRemainingTimeInMillis: () => 30_000 });

    // Assess
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm-1' }]);
  });

  it("refuses, and keeps, a failure record of another function than the one it serves: another account's too", async () => {
    // Prepare
    const handler = relaunchFailures({
      env: { ...env, FARGATE_FALLBACK_FUNCTION_ARN: 'arn:aws:lambda:eu-west-1:123456789012:function:report' },
    });
    const record = (functionArn: string, messageId: string) => ({
      eventSource: 'aws:sqs',
      messageId,
      body: JSON.stringify({
        requestContext: { requestId: `r-${messageId}`, functionArn, condition: 'RetriesExhausted' },
        requestPayload: { id: 1 },
        responsePayload: {
          errorType: 'Sandbox.Timedout',
          errorMessage: 'Task timed out after 900.00 seconds',
        },
      }),
    });

    // Act
    const result = await handler(
      {
        Records: [
          record('arn:aws:lambda:eu-west-1:123456789012:function:payroll:$LATEST', 'other-function'),
          record('arn:aws:lambda:eu-west-1:999999999999:function:report', 'other-account'),
        ],
      },
      { getRemainingTimeInMillis: () => 60_000 },
    );

    // Assess
    expect(result.batchItemFailures).toEqual([
      { itemIdentifier: 'other-function' },
      { itemIdentifier: 'other-account' },
    ]);
    expect(result.relaunched).toEqual([]);
  });

  it('fails the whole SQS batch when a record it cannot start has no message id to report, so that nothing is deleted', async () => {
    // Prepare
    const handler = relaunchFailures({ env });

    // Act
    const outcome = handler(
      { Records: [{ eventSource: 'aws:sqs', body: '{"not":"a record"}', messageAttributes: {} }] },
      { getRemainingTimeInMillis: () => 60_000 },
    );

    // Assess
    await expect(outcome).rejects.toThrow(RelaunchError);
  });

  it('throws for an event that is not a batch, so that Lambda retries it', async () => {
    const handler = relaunchFailures({ env });
    await expect(handler({ nothing: true }, { getRemainingTimeInMillis: () => 30_000 })).rejects.toThrow(
      RelaunchError,
    );
  });
});

describe('getInvocationStatus', () => {
  it('says which setting is missing when there is no bucket', async () => {
    await expect(
      getInvocationStatus({ functionName: 'f', requestId: 'r' }, { env: {} }),
    ).rejects.toBeInstanceOf(ConfigurationError);
    await expect(getInvocationStatus({ functionName: 'f', requestId: 'r' }, { env: {} })).rejects.toThrow(
      /pass \{ bucket \} or set FARGATE_FALLBACK_BUCKET/,
    );
  });

  it('refuses an empty request id', async () => {
    await expect(getInvocationStatus({ functionName: 'f', requestId: ' ' }, { bucket: 'b' })).rejects.toThrow(
      /requestId must be a non-empty string/,
    );
  });
});
