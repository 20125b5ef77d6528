import { describe, expect, it } from 'vitest';
import { DESTINATIONS_CACHE_MS, findDestinations } from '../../src/destinations.js';

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
