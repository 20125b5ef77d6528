import type { S3Client } from '@aws-sdk/client-s3';
import { cancelMarker, createEnvelope, encodeEnvelope } from '@immortal-lambda/protocol';
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../src/errors.js';
import { waitForGo } from '../../src/standby.js';

const URI = 's3://payloads/immortal-lambda/outcomes/report/req-1/resume.json';

const envelopeFor = (requestId: string) =>
  encodeEnvelope(
    createEnvelope({
      event: { page: 3 },
      context: {
        awsRequestId: requestId,
        functionName: 'report',
        functionVersion: '1',
        invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report',
        memoryLimitInMB: '512',
        logGroupName: '/aws/lambda/report',
        logStreamName: 's',
      } as never,
      env: { AWS_REGION: 'eu-west-1', _HANDLER: 'index.handler' },
      journal: { steps: { load: { result: 42 } } },
      startedAt: 0,
      deadlineAt: 60_000,
      handedOffAt: 50_000,
    }),
  );

/** An S3 client that answers GetObject from a script: a string body, or an error to throw. */
function scripted(answers: (string | { name: string; status?: number })[]) {
  let calls = 0;
  const client = {
    send: async () => {
      const answer = answers[Math.min(calls, answers.length - 1)];
      calls++;
      if (typeof answer === 'string') return { Body: { transformToString: async () => answer } };
      throw Object.assign(new Error(answer?.name), {
        name: answer?.name,
        $metadata: { httpStatusCode: answer?.status },
      });
    },
  } as unknown as S3Client;
  return { client, calls: () => calls };
}

/**
 * An S3 client whose first `refusals` reads are refused with 403 (a missing key, to a role that
 * may not list the whole bucket), whose listings find `listed`, and whose next read is the envelope.
 */
function refusedThenEnvelope(refusals: number, listed: string[]) {
  let gets = 0;
  const client = {
    send: async (command: { constructor: { name: string } }) => {
      if (command.constructor.name === 'ListObjectsV2Command')
        return { Contents: listed.map((Key) => ({ Key })) };
      gets++;
      if (gets <= refusals)
        throw Object.assign(new Error('Access Denied'), {
          name: 'AccessDenied',
          $metadata: { httpStatusCode: 403 },
        });
      return { Body: { transformToString: async () => envelopeFor('req-1') } };
    },
  } as unknown as S3Client;
  return { client, gets: () => gets };
}

/** A clock that only sleeps move. */
const fakeClock = () => {
  let now = 0;
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
  };
};

const wait = (
  client: S3Client,
  overrides: Partial<Parameters<typeof waitForGo>[0]> = {},
  clock = fakeClock(),
) =>
  waitForGo({
    uri: URI,
    requestId: 'req-1',
    s3: () => client,
    ...clock,
    until: 10_000,
    stopped: () => false,
    ...overrides,
  });

describe('waitForGo', () => {
  it('polls until the envelope arrives and returns it, journal included', async () => {
    // Prepare
    const missing = { name: 'NoSuchKey', status: 404 };
    const s3 = scripted([missing, missing, { name: 'SlowDown', status: 503 }, envelopeFor('req-1')]);

    // Act
    const answer = await wait(s3.client);

    // Assess
    expect(s3.calls()).toBe(4);
    expect('go' in answer && answer.go.journal).toEqual({ steps: { load: { result: 42 } } });
    expect('go' in answer && answer.go.event).toEqual({ page: 3 });
  });

  it('looks slowly while the planned handoff is far, then every 200 ms, and sees the go within 200 ms', async () => {
    // Prepare: a standby started 60 s before the planned handoff; the envelope is written at it
    const goAt = 60_000;
    const clock = fakeClock();
    const looks: number[] = [];
    const client = {
      send: async () => {
        looks.push(clock.now());
        if (clock.now() < goAt)
          throw Object.assign(new Error('NoSuchKey'), {
            name: 'NoSuchKey',
            $metadata: { httpStatusCode: 404 },
          });
        return { Body: { transformToString: async () => envelopeFor('req-1') } };
      },
    } as unknown as S3Client;

    // Act
    const answer = await wait(client, { until: 120_000, goAt }, clock);

    // Assess: about 30 looks in the first 59 s instead of 295, none more than 2 s apart, 200 ms near the handoff
    expect('go' in answer).toBe(true);
    const before = looks.filter((at) => at < goAt - 1_000);
    expect(before.length).toBeLessThan(40);
    const gaps = looks.slice(1).map((at, index) => at - (looks[index] as number));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2_000);
    expect(looks.filter((at) => at >= goAt - 1_000 && at < goAt).length).toBeGreaterThanOrEqual(4);
    expect((looks.at(-1) as number) - goAt).toBeLessThan(200);
  });

  it('is not needed when it reads the cancel marker', async () => {
    // Act
    const answer = await wait(scripted([JSON.stringify(cancelMarker('req-1', 5))]).client);

    // Assess
    expect(answer).toEqual({ notNeeded: 'the invocation finished in Lambda' });
  });

  it('gives up, not needed, once the deadline and its grace have passed', async () => {
    // Prepare
    const s3 = scripted([{ name: 'NoSuchKey', status: 404 }]);

    // Act
    const answer = await wait(s3.client, { until: 1_000, pollMs: 200 });

    // Assess
    expect(answer).toEqual({ notNeeded: 'no envelope arrived by the Lambda deadline and its grace' });
    expect(s3.calls()).toBe(6);
  });

  it('is not needed when the task is stopped while it waits', async () => {
    // Act
    const answer = await wait(scripted([{ name: 'NoSuchKey', status: 404 }]).client, { stopped: () => true });

    // Assess
    expect(answer).toEqual({ notNeeded: 'the task was stopped before it was told to go' });
  });

  it('fails loudly when the task may not read its resume location', async () => {
    // Act
    const waiting = wait(scripted([{ name: 'AccessDenied', status: 403 }]).client);

    // Assess
    await expect(waiting).rejects.toBeInstanceOf(BadInputError);
    await expect(waiting).rejects.toThrow(/may not read the resume location .* s3:ListBucket/);
  });

  it('goes when the resume object is written between its 403 read and the listing that finds it', async () => {
    // Prepare: the first read is refused (not there yet); by the listing, the wrapper has written it.
    const { client, gets } = refusedThenEnvelope(1, ['immortal-lambda/outcomes/report/req-1/resume.json']);

    // Act
    const answer = await wait(client);

    // Assess
    expect(answer).toMatchObject({ go: { invocation: { awsRequestId: 'req-1' } } });
    expect(gets()).toBe(2);
  });

  it('keeps waiting while S3 answers 403 for a resume object that a listing shows is not there yet', async () => {
    // Prepare: S3's answer for a missing key to a role that may not list the whole bucket.
    const { client, gets } = refusedThenEnvelope(2, []);

    // Act
    const answer = await wait(client);

    // Assess
    expect(answer).toMatchObject({ go: { invocation: { awsRequestId: 'req-1' } } });
    expect(gets()).toBe(3);
  });

  it('refuses an envelope of another request', async () => {
    // Act
    const waiting = wait(scripted([envelopeFor('req-2')]).client);

    // Assess
    await expect(waiting).rejects.toThrow(/is for request req-2, not req-1/);
  });
});
