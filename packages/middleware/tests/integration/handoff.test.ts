import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LocalControlPlane, type LocalS3, NoLauncher, startS3 } from '@immortal-lambda/local';
import lambdaLocal from 'lambda-local';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ENV, parseEnvelope } from '../../src/protocol/index.js';
import { getInvocationStatus } from '../../src/status.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
// The handoff comes 1.5 s in, as Lambda's 3 s timeout less a 1.5 s margin would make it; the
// longer timeout gives the handoff 2 s before its guard, room for a first SDK load on a busy machine.
const TIMEOUT_MS = 4_000;
const MARGIN_MS = 2_500;
const BUCKET = 'immortal-envelopes';

// The local plane serves ECS; tasks are recorded, not run: these tests are about the Lambda leg.
const plane = new LocalControlPlane({
  launcher: new NoLauncher(),
  clusters: ['jobs'],
  subnets: ['subnet-0aaaaaaaaaaaaaaa1'],
});
let s3: LocalS3;
let environment: Record<string, string>;

beforeAll(async () => {
  const ecsEndpoint = await plane.start();
  s3 = await startS3({ bucket: BUCKET });
  environment = {
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_ECS: ecsEndpoint,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_LAMBDA_FUNCTION_VERSION: '3',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    [ENV.cluster]: 'jobs',
    [ENV.taskDefinition]: 'immortal-runner:1',
    [ENV.subnets]: 'subnet-0aaaaaaaaaaaaaaa1',
    [ENV.marginMs]: String(MARGIN_MS),
    [ENV.payloadBucket]: BUCKET,
  };
});

afterAll(async () => {
  await plane.stop();
  await s3.stop();
});

beforeEach(() => {
  plane.resetRecords();
});

const s3Client = () =>
  new S3Client({
    region: 'eu-west-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });

const invoke = async (lambdaPath: string, event: unknown, esm = false) => {
  const started = Date.now();
  try {
    const result = await lambdaLocal.execute({
      event,
      lambdaPath,
      lambdaHandler: 'handler',
      timeoutMs: TIMEOUT_MS,
      environment,
      envdestroy: true,
      verboseLevel: 0,
      esm,
    });
    return { ok: true as const, result: result as Record<string, unknown>, elapsed: Date.now() - started };
  } catch (error) {
    // The harness reports errors as Lambda does: { errorType, errorMessage, stackTrace }.
    return {
      ok: false as const,
      error: error as { errorType: string; errorMessage: string },
      elapsed: Date.now() - started,
    };
  }
};

const harnesses = [
  { name: 'withFargateFallback (CommonJS)', path: join(fixtures, 'long-job.cjs'), esm: false },
  { name: 'middy + fargateFallback (ESM)', path: join(fixtures, 'long-job-middy.mjs'), esm: true },
];

describe.each(harnesses)(`$name under lambda-local with a ${TIMEOUT_MS} ms timeout`, (harness) => {
  it('returns the result of a short job and starts no task', async () => {
    // Act
    const outcome = await invoke(harness.path, { job: 'short', workMs: 100 }, harness.esm);

    // Assess
    expect(outcome.ok).toBe(true);
    expect(outcome.ok && outcome.result).toMatchObject({ done: 'short' });
    expect(plane.runTaskRequests()).toHaveLength(0);
  });

  it('hands a long job off before the harness times out', async () => {
    // Act
    const outcome = await invoke(harness.path, { job: 'long', workMs: 10_000 }, harness.esm);

    // Assess
    expect(outcome.ok).toBe(true);
    expect(outcome.elapsed).toBeLessThan(TIMEOUT_MS);
    expect(outcome.elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - MARGIN_MS - 50);
    const [call, ...more] = plane.runTaskRequests();
    expect(more).toHaveLength(0);
    const receipt = outcome.ok ? outcome.result : {};
    expect(receipt).toMatchObject({ status: 'handed-off', envelopeLocation: 'inline' });
    const overrides = call?.overrides as {
      containerOverrides: { environment: { name: string; value: string }[] }[];
    };
    const envelope = parseEnvelope(overrides.containerOverrides[0]?.environment[0]?.value ?? '');
    expect(envelope.event).toEqual({ job: 'long', workMs: 10_000 });
    expect(envelope.invocation.awsRequestId).toBe(receipt.requestId);
    expect(envelope.function.version).toBe('3');
    expect(call?.clientToken).toBe(receipt.requestId);
    // The runner is told where to record the outcome, and the wrapper recorded the handoff.
    expect(overrides.containerOverrides[0]?.environment).toContainEqual({
      name: ENV.payloadBucket,
      value: BUCKET,
    });
    const status = await getInvocationStatus(
      { functionName: 'handler', requestId: String(receipt.requestId) },
      { bucket: BUCKET, s3Client: s3Client() },
    );
    expect(status).toMatchObject({ status: 'handed-off', attempts: 1, taskArn: receipt.taskArn });
  });

  it('retries a throttling endpoint and still hands off before the deadline', async () => {
    // Prepare
    plane.resetRecords({ throttleNext: 3 });

    // Act
    const outcome = await invoke(harness.path, { job: 'throttled', workMs: 10_000 }, harness.esm);

    // Assess
    expect(outcome.ok).toBe(true);
    expect(outcome.elapsed).toBeLessThan(TIMEOUT_MS);
    expect(plane.runTaskRequests()).toHaveLength(4);
    expect(new Set(plane.runTaskRequests().map((call) => call.clientToken)).size).toBe(1);
  });

  it('fails with a HandoffError before the deadline when RunTask answers with failures[]', async () => {
    // Prepare
    plane.resetRecords({ failureReason: 'MISSING' });

    // Act
    const outcome = await invoke(harness.path, { job: 'refused', workMs: 10_000 }, harness.esm);

    // Assess
    expect(outcome.ok).toBe(false);
    expect(outcome.ok || outcome.error.errorType).toBe('HandoffError');
    expect(outcome.ok || outcome.error.errorMessage).toMatch(/MISSING/);
    expect(outcome.elapsed).toBeLessThan(TIMEOUT_MS);
  });

  it('fails with a HandoffError before the deadline when RunTask never answers', async () => {
    // Prepare
    plane.resetRecords({ hang: true });

    // Act
    const outcome = await invoke(harness.path, { job: 'hung', workMs: 10_000 }, harness.esm);

    // Assess
    expect(outcome.ok).toBe(false);
    expect(outcome.ok || outcome.error.errorType).toBe('HandoffError');
    expect(outcome.ok || outcome.error.errorMessage).toMatch(
      /before the deadline after 1 RunTask attempt: the last RunTask call had not answered/,
    );
    expect(outcome.elapsed).toBeLessThan(TIMEOUT_MS);
  });

  it('spills a large event to S3 and passes its URI', async () => {
    // Prepare
    const event = { job: 'large', workMs: 10_000, rows: Array.from({ length: 2_000 }, (_, i) => `row-${i}`) };

    // Act
    const outcome = await invoke(harness.path, event, harness.esm);

    // Assess
    expect(outcome.ok).toBe(true);
    const receipt = outcome.ok ? outcome.result : {};
    const uri = String(receipt.envelopeLocation);
    expect(uri).toMatch(new RegExp(`^s3://${BUCKET}/immortal-lambda/envelopes/`));
    const overrides = plane.runTaskRequests()[0]?.overrides as {
      containerOverrides: { environment: { value: string }[] }[];
    };
    expect(overrides.containerOverrides[0]?.environment[0]?.value).toBe(uri);
    const s3 = new S3Client({
      region: 'eu-west-1',
      endpoint: String(environment.AWS_ENDPOINT_URL_S3),
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const object = await s3.send(
      new GetObjectCommand({ Bucket: BUCKET, Key: uri.slice(`s3://${BUCKET}/`.length) }),
    );
    expect(parseEnvelope(await (object.Body?.transformToString() ?? '')).event).toEqual(event);
  });
});

describe('the fast path in a fresh process', () => {
  const run = promisify(execFile);

  it.each(['esm', 'cjs'])('loads no AWS SDK module and holds no process (%s consumer)', async (format) => {
    // Act: the handoff would be due 50 s in; the deadline timer stays armed but holds no process
    const started = Date.now();
    const { stdout } = await run(process.execPath, [join(fixtures, 'fast-path-probe.mjs'), format], {
      env: { ...process.env, ...environment },
    });

    // Assess
    const report = JSON.parse(stdout) as { result: number; modules: string[] };
    expect(report.result).toBe(42);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(
      report.modules.some((url) => url.includes('immortal-lambda') || url.includes('middleware/dist')),
    ).toBe(true);
    expect(report.modules.filter((url) => url.includes('@aws-sdk') || url.includes('@smithy'))).toEqual([]);
  });
});
