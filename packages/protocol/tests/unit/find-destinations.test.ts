import { describe, expect, it } from 'vitest';
import {
  DESTINATION_LIMITS,
  DESTINATIONS_CACHE_MS,
  destinationRecord,
  findDestinations,
  fitRecord,
  functionVariables,
} from '../../src/destinations.js';

const ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:report';
const configured = {
  DestinationConfig: { OnFailure: { Destination: 'arn:aws:sqs:eu-west-1:123456789012:failures' } },
};
const throttled = () =>
  Object.assign(new Error('Rate exceeded'), {
    name: 'TooManyRequestsException',
    $metadata: { httpStatusCode: 429 },
  });

/** A Lambda client answering GetFunctionEventInvokeConfig from a script: an answer or an error per call. */
function scripted(answers: (unknown | Error)[]) {
  const calls: unknown[] = [];
  const lambda = {
    send: async (command: { input: unknown }) => {
      calls.push(command.input);
      const answer = answers[Math.min(calls.length - 1, answers.length - 1)];
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  return { lambda, calls };
}

describe("reading a served function's variables (GetFunctionConfiguration)", () => {
  it('asks for the version that ran, retries a throttled read and keeps the answer', async () => {
    // Prepare
    const variables = { FARGATE_FALLBACK_CLUSTER: 'jobs' };
    const { lambda, calls } = scripted([throttled(), { Environment: { Variables: variables } }]);

    // Act
    const first = await functionVariables(lambda, 'report', '7', { sleep: async () => {} });
    const again = await functionVariables(lambda, 'report', '7', { sleep: async () => {} });

    // Assess
    expect(first).toEqual(variables);
    expect(again).toEqual(variables);
    expect(calls).toEqual([
      { FunctionName: 'report', Qualifier: '7' },
      { FunctionName: 'report', Qualifier: '7' },
    ]);
  });

  it('says what to grant when Lambda cannot decrypt the variables, and does not keep the failure', async () => {
    // Prepare
    const { lambda, calls } = scripted([
      { Environment: { Error: { ErrorCode: 'AccessDeniedException', Message: 'KMS access denied' } } },
      { Environment: { Variables: { A: 'b' } } },
    ]);

    // Act
    const reading = functionVariables(lambda, 'report', undefined);

    // Assess
    await expect(reading).rejects.toThrow(
      /environment of report cannot be read \(KMS access denied\): let the reader's role decrypt/,
    );
    expect(await functionVariables(lambda, 'report', undefined)).toEqual({ A: 'b' });
    expect(calls).toEqual([{ FunctionName: 'report' }, { FunctionName: 'report' }]);
  });
});

describe('finding a function destinations within the Lambda control-plane quota', () => {
  it('tries a throttled look-up again with backoff', async () => {
    // Prepare
    const { lambda, calls } = scripted([throttled(), throttled(), configured]);
    const waits: number[] = [];

    // Act
    const found = await findDestinations(lambda, ARN, { sleep: async (ms) => void waits.push(ms) });

    // Assess
    expect(found).toEqual({ onFailure: 'arn:aws:sqs:eu-west-1:123456789012:failures' });
    expect(calls).toHaveLength(3);
    expect(waits).toHaveLength(2);
    expect(waits[1]).toBeGreaterThan(waits[0] as number);
  });

  it('gives up after five throttled calls, with the throttling error', async () => {
    // Prepare
    const { lambda, calls } = scripted([throttled()]);

    // Act
    const finding = findDestinations(lambda, `${ARN}:gives-up`, { sleep: async () => {} });

    // Assess
    await expect(finding).rejects.toMatchObject({ name: 'TooManyRequestsException' });
    expect(calls).toHaveLength(5);
  });

  it('keeps an answer for a while per invoked ARN, then asks again', async () => {
    // Prepare
    const { lambda, calls } = scripted([configured]);
    let now = 1_000;

    // Act
    await findDestinations(lambda, `${ARN}:live`, { now: () => now });
    await findDestinations(lambda, `${ARN}:live`, { now: () => now });
    await findDestinations(lambda, `${ARN}:other`, { now: () => now });
    now += DESTINATIONS_CACHE_MS + 1;
    await findDestinations(lambda, `${ARN}:live`, { now: () => now });

    // Assess
    expect(calls).toEqual([
      { FunctionName: ARN, Qualifier: 'live' },
      { FunctionName: ARN, Qualifier: 'other' },
      { FunctionName: ARN, Qualifier: 'live' },
    ]);
  });

  it('does not keep a failed look-up', async () => {
    // Prepare
    const denied = Object.assign(new Error('denied'), { name: 'AccessDeniedException' });
    const { lambda, calls } = scripted([denied, configured]);

    // Act
    const first = findDestinations(lambda, `${ARN}:retry`);
    await expect(first).rejects.toThrow('denied');
    const second = await findDestinations(lambda, `${ARN}:retry`);

    // Assess
    expect(second).toEqual({ onFailure: 'arn:aws:sqs:eu-west-1:123456789012:failures' });
    expect(calls).toHaveLength(2);
  });
});

describe('destination records within what each destination takes', () => {
  const big = destinationRecord({
    requestId: 'r-1',
    functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report',
    version: '1',
    event: { id: 1 },
    attempt: 1,
    writer: 'watchdog',
    outcome: { ok: false, error: { name: 'TaskStopped', message: 'm'.repeat(300 * 1024) } },
    now: 0,
  });

  it.each([
    ['sqs', true],
    ['sns', true],
    ['eventbridge', true],
    ['lambda', true],
    ['s3', false],
  ] as const)('a 300 KiB record to %s is cut: %s', (kind, cut) => {
    // Act
    const fitted = fitRecord(big, JSON.stringify(big), kind, undefined);

    // Assess
    expect(Buffer.byteLength(JSON.stringify(fitted)) <= DESTINATION_LIMITS[kind]).toBe(true);
    expect(fitted === big).toBe(!cut);
  });

  it('keeps the error type and the start of its message in a cut failure record', () => {
    // Act
    const fitted = fitRecord(big, JSON.stringify(big), 'sqs', 's3://b/k');

    // Assess
    expect(fitted.responsePayload).toMatchObject({ errorType: 'TaskStopped', location: 's3://b/k' });
    expect(String((fitted.responsePayload as { errorMessage: string }).errorMessage)).toHaveLength(4096);
  });
});
