import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { outcomeRecord } from '../../src/protocol/index.js';
import { getInvocationStatus } from '../../src/status.js';

const folder = 'immortal-lambda/outcomes/report/r-1/';
// Only transformToString is read of a body.
const body = (text: string) => ({ transformToString: async () => text });

describe('getInvocationStatus', () => {
  const s3 = mockClient(S3Client);

  afterEach(() => {
    s3.reset();
  });

  it("reads the records only: not the journal, a spilled result, a standby task's resume object or the claim", async () => {
    // Prepare
    s3.on(ListObjectsV2Command).resolves({
      Contents: [
        'handed-off.json',
        'attempt-1.json',
        'attempt-1.result.json',
        'journal.json',
        'resume.json',
        'claim.json',
      ].map((name) => ({ Key: `${folder}${name}` })),
    });
    const record = (status: 'handed-off' | 'running', writer: 'wrapper' | 'runner') =>
      JSON.stringify(
        outcomeRecord({
          functionName: 'report',
          requestId: 'r-1',
          status,
          attempt: 1,
          writer,
          updatedAt: '2026-12-02T00:00:00.000Z',
        }),
      );
    s3.on(GetObjectCommand, { Key: `${folder}handed-off.json` }).resolves({
      Body: body(record('handed-off', 'wrapper')),
    } as never);
    s3.on(GetObjectCommand, { Key: `${folder}attempt-1.json` }).resolves({
      Body: body(record('running', 'runner')),
    } as never);

    // Act
    const status = await getInvocationStatus(
      { functionName: 'report', requestId: 'r-1' },
      { bucket: 'payloads', s3Client: new S3Client({ region: 'eu-west-1' }) },
    );

    // Assess
    expect(status).toMatchObject({ status: 'running', attempts: 1 });
    expect(
      s3
        .commandCalls(GetObjectCommand)
        .map((call) => call.args[0].input.Key)
        .sort(),
    ).toEqual([`${folder}attempt-1.json`, `${folder}handed-off.json`]);
  });

  it('skips, and says so, a record of an unknown writer and a record of another invocation, instead of failing or misreading', async () => {
    // Prepare
    s3.on(ListObjectsV2Command).resolves({
      Contents: ['handed-off.json', 'attempt-1.json', 'attempt-2.json'].map((name) => ({
        Key: `${folder}${name}`,
      })),
    });
    const record = (fields: Record<string, unknown>) =>
      JSON.stringify({
        ...outcomeRecord({
          functionName: 'report',
          requestId: 'r-1',
          status: 'handed-off',
          attempt: 1,
          writer: 'wrapper',
          updatedAt: '2026-12-02T00:00:00.000Z',
        }),
        ...fields,
      });
    s3.on(GetObjectCommand, { Key: `${folder}handed-off.json` }).resolves({
      Body: body(record({})),
    } as never);
    s3.on(GetObjectCommand, { Key: `${folder}attempt-1.json` }).resolves({
      Body: body(record({ writer: 'robot', status: 'succeeded' })),
    } as never);
    s3.on(GetObjectCommand, { Key: `${folder}attempt-2.json` }).resolves({
      Body: body(record({ requestId: 'r-2', writer: 'runner', status: 'succeeded', attempt: 2 })),
    } as never);
    const skipped: string[] = [];

    // Act
    const status = await getInvocationStatus(
      { functionName: 'report', requestId: 'r-1' },
      {
        bucket: 'payloads',
        s3Client: new S3Client({ region: 'eu-west-1' }),
        onSkipped: (key, why) => skipped.push(`${key}: ${why}`),
      },
    );

    // Assess
    expect(status).toMatchObject({ status: 'handed-off', attempts: 1 });
    expect(skipped.sort()).toEqual([
      `${folder}attempt-1.json: it is not an outcome record this version reads (unknown writer or status?)`,
      `${folder}attempt-2.json: it is a record of report r-2, not of this invocation`,
    ]);
  });
});
