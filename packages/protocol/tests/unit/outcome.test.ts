import { describe, expect, it } from 'vitest';
import {
  DestinationError,
  destinationKind,
  destinationRecord,
  EXIT_CODES,
  isRelaunchable,
  OUTCOME_KIND,
  OUTCOME_VERSION,
  type OutcomeRecord,
  outcomeFolder,
  outcomeKey,
  parseOutcome,
  summarizeOutcomes,
} from '../../src/index.js';

const record = (
  fields: Partial<OutcomeRecord> & Pick<OutcomeRecord, 'status' | 'writer' | 'attempt'>,
): OutcomeRecord => ({
  kind: OUTCOME_KIND,
  version: OUTCOME_VERSION,
  functionName: 'report',
  requestId: 'r-1',
  updatedAt: '2026-11-27T01:00:00.000Z',
  ...fields,
});

describe('outcome keys', () => {
  it('keeps safe names and digests unsafe ones, so every key stays inside its folder', () => {
    // Act
    const plain = outcomeKey('p/', 'report', 'c0ffee-1', 'attempt-2');
    const odd = outcomeFolder('p/', 'report', '../../etc/passwd');
    const dots = outcomeFolder('p/', '..', 'x');

    // Assess
    expect(plain).toBe('p/report/c0ffee-1/attempt-2.json');
    expect(odd).toMatch(/^p\/report\/[0-9a-f]{32}\/$/);
    expect(dots).toMatch(/^p\/[0-9a-f]{32}\/x\/$/);
  });
});

describe('summarizeOutcomes', () => {
  it('is undefined without records', () => {
    expect(summarizeOutcomes([])).toBeUndefined();
  });

  it('orders by attempt, then by how late in the attempt a record is, whatever the clocks say', () => {
    // Prepare: the runner's clock is behind the wrapper's.
    const records = [
      record({
        status: 'running',
        writer: 'runner',
        attempt: 1,
        taskArn: 't1',
        updatedAt: '2026-11-27T00:59:00.000Z',
      }),
      record({ status: 'handed-off', writer: 'wrapper', attempt: 1, taskArn: 't1' }),
    ];

    // Act
    const view = summarizeOutcomes(records);

    // Assess
    expect(view).toMatchObject({ status: 'running', taskArn: 't1', attempts: 1 });
  });

  it('follows a relaunch: the failed attempt, then relaunching, then the next attempt, with the latest task', () => {
    // Prepare
    const failed = record({
      status: 'failed',
      writer: 'runner',
      attempt: 1,
      taskArn: 't1',
      error: { name: 'Error', message: 'stopped', exitCode: 143, retryable: true },
    });
    const relaunching = record({ status: 'relaunching', writer: 'watchdog', attempt: 2, taskArn: 't2' });
    const succeeded = record({
      status: 'succeeded',
      writer: 'runner',
      attempt: 2,
      taskArn: 't2',
      result: 42,
    });

    // Act
    const during = summarizeOutcomes([relaunching, failed]);
    const after = summarizeOutcomes([succeeded, relaunching, failed]);

    // Assess
    expect(during).toMatchObject({ status: 'relaunching', taskArn: 't2', attempts: 2 });
    expect(during?.error).toBeUndefined();
    expect(after).toMatchObject({ status: 'succeeded', taskArn: 't2', attempts: 2, result: 42 });
  });

  it("lets the watchdog's last word stand over the runner's record of the same attempt", () => {
    const view = summarizeOutcomes([
      record({
        status: 'failed',
        writer: 'watchdog',
        attempt: 3,
        error: { name: 'TaskStopped', message: 'm', retryable: false },
      }),
      record({
        status: 'failed',
        writer: 'runner',
        attempt: 3,
        error: { name: 'Error', message: 'r', retryable: true },
      }),
    ]);
    expect(view?.error).toMatchObject({ name: 'TaskStopped', retryable: false });
  });

  it("ends with the wrapper's not-needed whatever the stopped task recorded: the invocation finished in Lambda", () => {
    // Act
    const view = summarizeOutcomes([
      record({ status: 'not-needed', writer: 'wrapper', attempt: 1 }),
      record({
        status: 'failed',
        writer: 'runner',
        attempt: 1,
        error: { name: 'Stopped', message: 'SIGTERM', retryable: true },
      }),
    ]);

    // Assess
    expect(view?.status).toBe('not-needed');
  });

  it('reads only outcome records', () => {
    expect(parseOutcome('{"kind":"immortal-lambda.envelope"}')).toBeUndefined();
    expect(parseOutcome('not json')).toBeUndefined();
    const unknown = (fields: Record<string, unknown>) =>
      JSON.stringify({ ...record({ status: 'running', writer: 'runner', attempt: 1 }), ...fields });
    expect(parseOutcome(unknown({ writer: 'robot' }))).toBeUndefined();
    expect(parseOutcome(unknown({ status: 'paused' }))).toBeUndefined();
    expect(parseOutcome(unknown({ writer: '__proto__' }))).toBeUndefined();
    expect(
      parseOutcome(JSON.stringify(record({ status: 'running', writer: 'runner', attempt: 1 })))?.status,
    ).toBe('running');
  });
});

describe('isRelaunchable', () => {
  it.each([
    [undefined, true],
    [EXIT_CODES.codeFetch, true],
    [EXIT_CODES.stopped, true],
    [137, true],
    [EXIT_CODES.success, false],
    [EXIT_CODES.handlerError, false],
    [EXIT_CODES.badInput, false],
    [EXIT_CODES.handlerLoad, false],
    [EXIT_CODES.timedOut, false],
  ])('exit code %s: %s', (code, expected) => {
    expect(isRelaunchable(code)).toBe(expected);
  });
});

describe('destinations', () => {
  it.each([
    ['arn:aws:sqs:eu-west-1:123456789012:q', 'sqs'],
    ['arn:aws:sns:eu-west-1:123456789012:t', 'sns'],
    ['arn:aws:events:eu-west-1:123456789012:event-bus/default', 'eventbridge'],
    ['arn:aws:lambda:eu-west-1:123456789012:function:f', 'lambda'],
    ['arn:aws:s3:::bucket', 's3'],
  ])('knows %s as %s', (arn, kind) => {
    expect(destinationKind(arn)).toBe(kind);
  });

  it('refuses what Lambda cannot send to, naming what it can', () => {
    expect(() => destinationKind('arn:aws:dynamodb:eu-west-1:123456789012:table/t')).toThrow(
      DestinationError,
    );
    expect(() => destinationKind('nonsense')).toThrow(
      /SQS queue, SNS topic, EventBridge bus, Lambda function or S3 bucket/,
    );
  });

  it("builds Lambda's record shape for a success and a failure", () => {
    // Prepare
    const base = {
      requestId: 'r-1',
      functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report:live',
      version: '7',
      event: { id: 1 },
      attempt: 2,
      taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/c/1',
      writer: 'runner' as const,
      now: Date.parse('2026-11-27T00:00:00Z'),
    };

    // Act
    const ok = destinationRecord({ ...base, outcome: { ok: true, result: { rows: 3 } } });
    const failed = destinationRecord({
      ...base,
      outcome: { ok: false, error: { name: 'TypeError', message: 'bad', stack: 'TypeError: bad\n    at x' } },
    });

    // Assess
    expect(ok).toEqual({
      version: '1.0',
      timestamp: '2026-11-27T00:00:00.000Z',
      requestContext: {
        requestId: 'r-1',
        functionArn: base.functionArn,
        condition: 'Success',
        approximateInvokeCount: 2,
      },
      requestPayload: { id: 1 },
      responseContext: { statusCode: 200, executedVersion: '7' },
      responsePayload: { rows: 3 },
      immortalLambda: { runtime: 'fargate', attempt: 2, taskArn: base.taskArn, writer: 'runner' },
    });
    expect(failed).toMatchObject({
      requestContext: { condition: 'RetriesExhausted' },
      responseContext: { functionError: 'Unhandled' },
      responsePayload: { errorType: 'TypeError', errorMessage: 'bad', trace: ['TypeError: bad', '    at x'] },
    });
  });
});
