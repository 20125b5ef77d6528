import { describe, expect, it } from 'vitest';
import {
  failedInvocations,
  failureCause,
  RELAUNCHED_CAUSES,
  relaunchFailures,
} from '../../src/safety-net/index.js';

/** A destination record of an invocation of `{ id: 1 }`, as Lambda writes it. */
const record = (
  requestContext: { requestId: string; functionArn: string; condition: string },
  responseContext: Record<string, unknown>,
  responsePayload: unknown,
) => ({ requestContext, requestPayload: { id: 1 }, responseContext, responsePayload });

describe('what a failure record says the invocation died of', () => {
  it.each([
    [
      'a timeout (Sandbox.Timedout)',
      {
        errorType: 'Sandbox.Timedout',
        errorMessage: 'RequestId: r Error: Task timed out after 900.00 seconds',
      },
      'timeout',
    ],
    [
      'a timeout (the older message alone)',
      { errorMessage: '2026-12-02T00:00:00Z r Task timed out after 3.00 seconds' },
      'timeout',
    ],
    [
      'out of memory',
      { errorType: 'Runtime.OutOfMemory', errorMessage: 'Runtime exited with error: signal: killed' },
      'out-of-memory',
    ],
    [
      'a runtime killed by a signal',
      { errorMessage: 'Runtime exited with error: signal: killed' },
      'out-of-memory',
    ],
    [
      'a runtime that exited',
      { errorType: 'Runtime.ExitError', errorMessage: 'Runtime exited with error: exit status 1' },
      'crash',
    ],
    ['a failed handoff', { errorType: 'HandoffError', errorMessage: 'RunTask failed: capacity' }, 'handoff'],
    [
      "the handler's own error",
      { errorType: 'Error', errorMessage: 'the report cannot be built' },
      'handler-error',
    ],
    [
      'a handler error of a custom class',
      { errorType: 'ValidationError', errorMessage: 'bad id' },
      'handler-error',
    ],
    [
      'an event that aged out before it ran',
      { condition: 'EventAgeExceeded', responded: false },
      'never-ran',
    ],
    ['a record that says nothing', { condition: 'RetriesExhausted' }, 'unknown'],
    ['a success record', { condition: 'Success' }, 'succeeded'],
  ] as const)('%s', (_what, failure, cause) => {
    // Act
    const found = failureCause(failure);

    // Assess
    expect(found).toBe(cause);
  });

  it('starts the deaths a rerun can outlive, never a handler error or an event that never ran', () => {
    expect([...RELAUNCHED_CAUSES].sort()).toEqual([
      'crash',
      'handoff',
      'out-of-memory',
      'timeout',
      'unknown',
    ]);
  });

  it('never starts a success record: an on-success destination record, or an EventBridge Success event', async () => {
    // Prepare
    const success = record(
      {
        requestId: 'ok-1',
        functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:job',
        condition: 'Success',
      },
      { statusCode: 200, executedVersion: '$LATEST' },
      { rows: 3 },
    );
    const handler = relaunchFailures({
      env: {
        AWS_REGION: 'eu-west-1',
        FARGATE_FALLBACK_CLUSTER: 'jobs',
        FARGATE_FALLBACK_TASK_DEFINITION: 'runner',
        FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1',
      },
    });
    const remaining = { getRemainingTimeInMillis: () => 60_000 };

    // Act
    const direct = await handler(success, remaining);
    const bridged = await handler(
      { source: 'lambda', 'detail-type': 'Lambda Function Invocation Result - Success', detail: success },
      remaining,
    );

    // Assess
    for (const result of [direct, bridged]) {
      expect(result.relaunched).toEqual([
        { requestId: 'ok-1', skipped: 'the record is of a success, not a failure' },
      ]);
    }
  });

  it('reads the cause and the executed version from a destination record', () => {
    // Prepare
    const timedOut = record(
      {
        requestId: 'r-1',
        functionArn: 'arn:aws:lambda:eu-west-1:1:function:job:prod',
        condition: 'RetriesExhausted',
      },
      { statusCode: 200, executedVersion: '7', functionError: 'Unhandled' },
      { errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 900.00 seconds' },
    );

    // Act
    const [item] = failedInvocations(timedOut);

    // Assess
    expect(item).toMatchObject({ requestId: 'r-1', cause: 'timeout', executedVersion: '7' });
  });
});
