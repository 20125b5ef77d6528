import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  handedOffEnvelope,
  LocalControlPlane,
  type LocalS3,
  NoLauncher,
  startS3,
} from '@immortal-lambda/local';
import { ENV, type Envelope, type OutcomeRecord, outcomeKey } from '@immortal-lambda/protocol';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/exit-codes.js';
import { runCli } from '../helpers/run-cli.js';
import { buildZip } from '../helpers/zip-writer.js';

const BUCKET = 'outcomes';
const PREFIX = 'immortal-lambda/outcomes/';
const QUEUE = 'arn:aws:sqs:eu-west-1:123456789012:results';
const BUS = 'arn:aws:events:eu-west-1:123456789012:event-bus/results';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:failures';
const RELAUNCH = 'arn:aws:lambda:eu-west-1:123456789012:function:relaunch';

const plane = new LocalControlPlane({ launcher: new NoLauncher() });
let s3: LocalS3;
let s3Client: S3Client;
let scratch: string;
let baseEnv: Record<string, string>;

const handlers = {
  echo: 'exports.handler = async (event) => ({ echoed: event });',
  big: "exports.handler = async () => ({ blob: 'x'.repeat(40 * 1024) });",
  throws:
    'exports.handler = async (event) => { throw new TypeError("report " + event.id + " has no pages"); };',
};

function register(name: string, code: string, destinations?: { onSuccess?: string; onFailure?: string }) {
  plane.registerFunction({
    name,
    zip: buildZip([{ name: 'index.js', data: code }]),
    handler: 'index.handler',
    ...(destinations ? { destinations } : {}),
  });
}

const envelope = (name: string, event: unknown): Envelope =>
  handedOffEnvelope({ functionName: name, version: '1', handler: 'index.handler', event });

const run = (value: Envelope, extra: Record<string, string> = {}) => {
  const sandbox = mkdtempSync(join(scratch, 'sandbox-'));
  return runCli({
    ...baseEnv,
    [ENV.envelope]: JSON.stringify(value),
    [ENV.taskRoot]: join(sandbox, 'task'),
    [ENV.layersRoot]: join(sandbox, 'opt'),
    ...extra,
  });
};

async function readRecord(value: Envelope, entry: `attempt-${number}`): Promise<OutcomeRecord> {
  const key = outcomeKey(PREFIX, value.function.name, value.invocation.awsRequestId, entry);
  const object = await s3Client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return JSON.parse(await (object.Body?.transformToString() ?? '')) as OutcomeRecord;
}

beforeAll(async () => {
  const url = await plane.start();
  s3 = await startS3({ bucket: BUCKET });
  s3Client = new S3Client({
    region: 'eu-west-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  scratch = mkdtempSync(join(tmpdir(), 'runner-outcomes-'));
  baseEnv = {
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_LAMBDA: url,
    AWS_ENDPOINT_URL_SQS: url,
    AWS_ENDPOINT_URL_SNS: url,
    AWS_ENDPOINT_URL_EVENTBRIDGE: url,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_ECS: 'http://127.0.0.1:9',
    [ENV.payloadBucket]: BUCKET,
  };
});

afterAll(async () => {
  await plane.stop();
  await s3.stop();
  rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => {
  plane.resetRecords();
});

describe('immortal-runner records the outcome of the attempt it runs', () => {
  it('records succeeded with the result under the function and request id', async () => {
    // Prepare
    register('echo', handlers.echo);
    const value = envelope('echo', { id: 1 });

    // Act
    const result = await run(value);

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(await readRecord(value, 'attempt-1')).toMatchObject({
      status: 'succeeded',
      attempt: 1,
      writer: 'runner',
      requestId: value.invocation.awsRequestId,
      functionName: 'echo',
      result: { echoed: { id: 1 } },
    });
  });

  it('spills a large result beside the record and points to it', async () => {
    // Prepare
    register('big', handlers.big);
    const value = envelope('big', {});

    // Act
    const result = await run(value);

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    const record = await readRecord(value, 'attempt-1');
    expect(record.result).toBeUndefined();
    expect(record.resultBytes).toBeGreaterThan(40 * 1024);
    const key = outcomeKey(PREFIX, 'big', value.invocation.awsRequestId, 'attempt-1.result');
    expect(record.resultLocation).toBe(`s3://${BUCKET}/${key}`);
    const spilled = await s3Client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(JSON.parse(await (spilled.Body?.transformToString() ?? ''))).toEqual({
      blob: 'x'.repeat(40 * 1024),
    });
  });

  it('records failed with the error and exit code, as the attempt it was told it is', async () => {
    // Prepare
    register('throws', handlers.throws);
    const value = envelope('throws', { id: 7 });

    // Act
    const result = await run(value, { [ENV.attempt]: '2' });

    // Assess
    expect(result.code).toBe(EXIT_CODES.handlerError);
    expect(await readRecord(value, 'attempt-2')).toMatchObject({
      status: 'failed',
      attempt: 2,
      error: { name: 'TypeError', message: 'report 7 has no pages', exitCode: 1, retryable: false },
    });
  });

  it('says loudly that a record could not be written, and the run ends as it would have', async () => {
    // Prepare
    register('echo', handlers.echo);

    // Act
    const result = await run(envelope('echo', {}), { [ENV.payloadBucket]: 'no-such-bucket' });

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(result.records.find((r) => r.message === 'The outcome record could not be written')).toMatchObject(
      {
        level: 'ERROR',
        bucket: 'no-such-bucket',
      },
    );
  });
});

describe("immortal-runner sends the final outcome to the function's destinations, in Lambda's record shape", () => {
  it('sends a success to the on-success queue with the result and the original request', async () => {
    // Prepare
    register('echo', handlers.echo, { onSuccess: QUEUE, onFailure: TOPIC });
    const value = envelope('echo', { id: 3 });

    // Act
    const result = await run(value);

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(plane.deliveries).toHaveLength(1);
    const [delivery] = plane.deliveries;
    expect(delivery).toMatchObject({
      service: 'sqs',
      target: expect.stringMatching(/\/123456789012\/results$/),
    });
    expect(JSON.parse(String(delivery?.payload))).toMatchObject({
      version: '1.0',
      requestContext: {
        requestId: value.invocation.awsRequestId,
        functionArn: value.invocation.invokedFunctionArn,
        condition: 'Success',
        approximateInvokeCount: 1,
      },
      requestPayload: { id: 3 },
      responseContext: { statusCode: 200, executedVersion: '1' },
      responsePayload: { echoed: { id: 3 } },
      immortalLambda: { runtime: 'fargate', attempt: 1, writer: 'runner' },
    });
  });

  it('sends a record over the queue size limit as a pointer to the whole record, kept beside the attempt', async () => {
    // Prepare: a result of 300 KB, over SQS's 256 KiB message limit.
    register('huge', "exports.handler = async () => ({ rows: 'r'.repeat(300 * 1024) });", {
      onSuccess: QUEUE,
    });
    const value = envelope('huge', { id: 4 });

    // Act
    const result = await run(value);

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    const [delivery] = plane.deliveries;
    const payload = String(delivery?.payload);
    expect(Buffer.byteLength(payload)).toBeLessThan(256 * 1024);
    const sent = JSON.parse(payload);
    const key = outcomeKey(PREFIX, 'huge', value.invocation.awsRequestId, 'attempt-1.destination');
    expect(sent).toMatchObject({
      requestContext: { requestId: value.invocation.awsRequestId, condition: 'Success' },
      requestPayload: { bytes: 8 },
      responsePayload: {
        omitted: "over the sqs destination's size limit",
        location: `s3://${BUCKET}/${key}`,
      },
      immortalLambda: { recordLocation: `s3://${BUCKET}/${key}`, recordBytes: expect.any(Number) },
    });
    const kept = await s3Client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const whole = JSON.parse(await (kept.Body?.transformToString() ?? ''));
    expect(whole.responsePayload.rows).toHaveLength(300 * 1024);
    expect(whole.requestPayload).toEqual({ id: 4 });
  });

  it.each([
    ['an SNS topic', TOPIC, 'sns'],
    ['an event bus', BUS, 'eventbridge'],
    ['a function', RELAUNCH, 'lambda'],
  ])('sends a handler error to the on-failure destination when it is %s', async (_what, arn, service) => {
    // Prepare
    register('throws', handlers.throws, { onFailure: arn });
    const value = envelope('throws', { id: 9 });

    // Act
    const result = await run(value);

    // Assess
    expect(result.code).toBe(EXIT_CODES.handlerError);
    expect(plane.deliveries.map((d) => d.service)).toEqual([service]);
    const record = JSON.parse(String(plane.deliveries[0]?.payload));
    expect(record).toMatchObject({
      requestContext: { requestId: value.invocation.awsRequestId, condition: 'RetriesExhausted' },
      requestPayload: { id: 9 },
      responseContext: { functionError: 'Unhandled' },
      responsePayload: { errorType: 'TypeError', errorMessage: 'report 9 has no pages' },
    });
    if (service === 'eventbridge') {
      expect(plane.deliveries[0]).toMatchObject({
        source: 'lambda',
        detailType: 'Lambda Function Invocation Result - Failure',
      });
    }
  });

  it('sends nothing for a run the watchdog may still relaunch (the code could not be fetched)', async () => {
    // Prepare
    register('echo', handlers.echo, { onFailure: QUEUE });
    plane.faults = { download: 'denied' };
    const value = envelope('echo', {});

    // Act
    const result = await run(value);

    // Assess
    expect(result.code).toBe(EXIT_CODES.codeFetch);
    expect(plane.deliveries).toEqual([]);
    expect(await readRecord(value, 'attempt-1')).toMatchObject({
      status: 'failed',
      error: { exitCode: 3, retryable: true },
    });
  });
});
