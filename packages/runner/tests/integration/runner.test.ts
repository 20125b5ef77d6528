/// <reference path="../../../local/src/types/s3rver.d.ts" />
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { type FunctionSpec, handedOffEnvelope, LocalControlPlane, NoLauncher } from '@immortal-lambda/local';
import { ENV, type Envelope } from '@immortal-lambda/middleware/protocol';
import S3rver from 's3rver';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/exit-codes.js';
import { CLI, runCli } from '../helpers/run-cli.js';
import { buildZip, type ZipSource, zipFolder } from '../helpers/zip-writer.js';

const functions = join(import.meta.dirname, '..', 'fixtures', 'functions');
const packagesDir = join(import.meta.dirname, '..', '..', '..');
const BUCKET = 'runner-envelopes';

// The local plane serves the Lambda API the runner calls; these tests run the runner themselves.
const plane = new LocalControlPlane({ launcher: new NoLauncher() });
const errorMessage = (result: { outcome?: Record<string, unknown> | undefined }) =>
  String((result.outcome?.error as { message?: string } | undefined)?.message);
let s3rver: S3rver;
let s3Endpoint: string;
let scratch: string;
let sandbox: string;
let baseEnv: Record<string, string>;

/** A layer as a Lambda layer zip: the middleware and the protocol under nodejs/node_modules. */
function middlewareLayer(): Buffer {
  const staging = mkdtempSync(join(tmpdir(), 'layer-'));
  for (const name of ['middleware', 'protocol']) {
    const target = join(staging, 'nodejs', 'node_modules', '@immortal-lambda', name);
    mkdirSync(target, { recursive: true });
    cpSync(join(packagesDir, name, 'package.json'), join(target, 'package.json'));
    cpSync(join(packagesDir, name, 'dist'), join(target, 'dist'), { recursive: true });
  }
  const zip = zipFolder(staging);
  rmSync(staging, { recursive: true, force: true });
  return zip;
}

function envelopeFor(name: string, version: string, handler: string, event: unknown): Envelope {
  return handedOffEnvelope({
    functionName: name,
    version,
    handler,
    event,
    traceHeader: 'Root=1-5e1b4151-5ac6c58f5b5dbd6a0b0e0d1e',
  });
}

function register(
  name: string,
  zip: Buffer,
  handler: string,
  extra: Omit<Partial<FunctionSpec>, 'folder'> = {},
) {
  plane.registerFunction({ name, version: '1', zip, handler, ...extra });
}

const run = (
  envelope: Envelope | string,
  extra: Record<string, string> = {},
  options: Parameters<typeof runCli>[1] = {},
) =>
  runCli(
    {
      ...baseEnv,
      [ENV.envelope]: typeof envelope === 'string' ? envelope : JSON.stringify(envelope),
      [ENV.taskRoot]: join(sandbox, 'task'),
      [ENV.layersRoot]: join(sandbox, 'opt'),
      ...extra,
    },
    options,
  );

beforeAll(async () => {
  baseEnv = {
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_LAMBDA: await plane.start(),
    // Any handoff attempt would go here and fail: the runner must never make one.
    AWS_ENDPOINT_URL_ECS: 'http://127.0.0.1:9',
  };
  scratch = mkdtempSync(join(tmpdir(), 'immortal-runner-'));
  s3rver = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: join(scratch, 's3'),
    configureBuckets: [{ name: BUCKET, configs: [] }],
  });
  s3Endpoint = `http://127.0.0.1:${(await s3rver.run()).port}`;
  baseEnv.AWS_ENDPOINT_URL_S3 = s3Endpoint;
});

afterAll(async () => {
  await plane.stop();
  await s3rver.close();
  rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => {
  plane.resetRecords();
  sandbox = mkdtempSync(join(scratch, 'sandbox-'));
});

afterEach(() => {
  // Whatever happened, nothing was written beside the task root and the layers root.
  expect(readdirSync(sandbox).filter((name) => name !== 'task' && name !== 'opt')).toEqual([]);
});

describe('immortal-runner runs the handed-off handler as Lambda would', () => {
  it('runs a CommonJS handler with the original request, its environment set before import', async () => {
    // Prepare
    register('report', zipFolder(join(functions, 'cjs')), 'index.handler', {
      memorySize: 512,
      environment: { GREETING: 'hello from config', AWS_LAMBDA_FUNCTION_NAME: 'from-config' },
    });
    const envelope = envelopeFor('report', '1', 'index.handler', { reportId: 'r-1' });

    // Act
    const result = await run(envelope);

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(result.observed).toMatchObject({
      echo: { reportId: 'r-1' },
      greetingAtLoad: 'hello from config',
      requestId: envelope.invocation.awsRequestId,
      functionName: 'report',
      functionVersion: '1',
      memoryLimitInMB: '512',
      runner: '1',
      handlerSetting: 'index.handler',
      taskRoot: join(sandbox, 'task'),
      traceId: 'Root=1-5e1b4151-5ac6c58f5b5dbd6a0b0e0d1e',
      reservedLeaked: false,
    });
    expect(result.observed?.remainingMs).toBeGreaterThan(86_000_000);
    expect(result.outcome).toMatchObject({
      outcome: 'success',
      exitCode: 0,
      requestId: envelope.invocation.awsRequestId,
      functionName: 'report',
      functionVersion: '1',
    });
    expect(result.outcome?.resultBytes).toBeGreaterThan(100);
  });

  it("says how the Lambda client started: the image's entry from the compiled code its build wrote", async () => {
    // Prepare
    register('started', zipFolder(join(functions, 'cjs')), 'index.handler');

    // Act
    const result = await run(envelopeFor('started', '1', 'index.handler', {}));

    // Assess: the image's entry (IMMORTAL_RUNNER_CLI, built by this Node) uses its cache; the package's bin has none.
    expect(result.code).toBe(EXIT_CODES.success);
    const resuming = result.records.find((record) => record.message === 'Resuming a handed-off invocation');
    expect(resuming?.sdkCodeCache).toBe(CLI.endsWith(join('standalone', 'cli.js')) ? 'used' : undefined);
  });

  it('extracts a zip of 8 MiB or more while it downloads, and runs its handler', async () => {
    // Prepare: the handler beside 9 MiB that does not compress
    const handler = readFileSync(join(functions, 'cjs', 'index.js'));
    const zip = buildZip([
      { name: 'index.js', data: handler },
      { name: 'assets/blob.bin', data: randomBytes(9 * 1024 * 1024), store: true },
    ]);
    register('large', zip, 'index.handler');

    // Act
    const result = await run(envelopeFor('large', '1', 'index.handler', { reportId: 'r-9' }));

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(result.observed).toMatchObject({ echo: { reportId: 'r-9' } });
    expect(result.records.map((record) => record.message)).toContain(
      'Extracting the archive while it downloads',
    );
    expect(statSync(join(sandbox, 'task', 'assets', 'blob.bin')).size).toBe(9 * 1024 * 1024);
  });

  it('runs an ESM handler in a nested folder with a nested export path', async () => {
    // Prepare
    register('esm', zipFolder(join(functions, 'esm-nested')), 'src/jobs/report.jobs.report');

    // Act
    const result = await run(envelopeFor('esm', '1', 'src/jobs/report.jobs.report', { pages: 3 }));

    // Assess
    expect(result.code).toBe(0);
    expect(result.observed).toMatchObject({ kind: 'esm', pages: 3 });
  });

  it('keeps the executable bit of a file in the zip (.mjs handler)', async () => {
    // Prepare
    register('tool', zipFolder(join(functions, 'mjs')), 'handler.handler');

    // Act
    const result = await run(envelopeFor('tool', '1', 'handler.handler', {}));

    // Assess
    expect(result.code).toBe(0);
    expect(result.observed).toEqual({ executable: true, mode: '755' });
  });

  it('finds a dependency only a layer provides, and the wrapped handler runs as fargate with no second handoff', async () => {
    // Prepare
    const layer = plane.registerLayer('middleware', middlewareLayer());
    register('wrapped', zipFolder(join(functions, 'wrapped')), 'index.handler', {
      layers: [layer],
      environment: {
        FARGATE_FALLBACK_CLUSTER: 'jobs',
        FARGATE_FALLBACK_TASK_DEFINITION: 'runner',
        FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1',
      },
    });
    const envelope = envelopeFor('wrapped', '1', 'index.handler', { id: 9 });

    // Act
    const result = await run(envelope);

    // Assess
    expect(result.code).toBe(0);
    expect(result.observed).toEqual({
      runtime: 'fargate',
      signalAborted: false,
      requestId: envelope.invocation.awsRequestId,
      event: { id: 9 },
    });
    expect(result.records.some((r) => String(r.message).includes('handed off'))).toBe(false);
    expect(plane.calls).toContain('Lambda.GetLayerVersionByArn');
  });

  it('reads an envelope spilled to S3, with its 64 KB event intact', async () => {
    // Prepare
    register('report', zipFolder(join(functions, 'cjs')), 'index.handler');
    const rows = Array.from({ length: 4_000 }, (_, i) => `row-${i}-${'x'.repeat(8)}`);
    const envelope = envelopeFor('report', '1', 'index.handler', { rows });
    const s3 = new S3Client({
      region: 'eu-west-1',
      endpoint: s3Endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const body = JSON.stringify(envelope);
    expect(body.length).toBeGreaterThan(64 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'envelopes/report/1.json', Body: body }));

    // Act
    const result = await run(`s3://${BUCKET}/envelopes/report/1.json`);

    // Assess
    expect(result.code).toBe(0);
    expect(result.observed?.echo).toEqual({ rows });
  });
});

describe('immortal-runner fault matrix', () => {
  it('exits 1, not silently, when the handler promise can never settle', async () => {
    register(
      'report',
      buildZip([{ name: 'index.js', data: 'exports.handler = () => new Promise(() => {});' }]),
      'index.handler',
    );
    const result = await run(envelopeFor('report', '1', 'index.handler', {}));
    expect(result.code).toBe(EXIT_CODES.handlerError);
    expect(errorMessage(result)).toMatch(/can never settle/);
  });

  const okFunction = () => register('report', zipFolder(join(functions, 'cjs')), 'index.handler');
  const okEnvelope = () => envelopeFor('report', '1', 'index.handler', {});

  it.each([
    ['missing', undefined, /FARGATE_FALLBACK_ENVELOPE is not set/],
    ['not JSON', '{"kind": broken', /not valid JSON/],
    [
      'of an unknown version',
      JSON.stringify({ kind: 'immortal-lambda.envelope', version: 9 }),
      /unknown envelope version 9/,
    ],
    ['in S3 but missing', `s3://${BUCKET}/envelopes/missing.json`, /does not exist/],
  ])('exits 2 for an envelope %s', async (_what, value, message) => {
    // Prepare
    okFunction();

    // Act
    const result = await run(value ?? '', {});

    // Assess
    expect(result.code).toBe(EXIT_CODES.badInput);
    expect(result.outcome).toMatchObject({ outcome: 'bad-input', exitCode: 2 });
    expect(errorMessage(result)).toMatch(message);
  });

  it('exits 2 for an invalid runner setting', async () => {
    okFunction();
    const result = await run(okEnvelope(), { [ENV.maxRuntimeMs]: 'forever' });
    expect(result.code).toBe(2);
    expect(errorMessage(result)).toMatch(/FARGATE_FALLBACK_MAX_RUNTIME_MS is "forever"/);
  });

  it.each([
    ['not found', 'gone', {}, /no longer exists/],
    ['access denied', 'report', { lambdaDenied: true }, /may not call lambda:GetFunction/],
  ])('exits 3 when GetFunction answers %s', async (_what, name, faults, message) => {
    // Prepare
    okFunction();
    plane.faults = faults;

    // Act
    const result = await run(envelopeFor(name, '1', 'index.handler', {}));

    // Assess
    expect(result.code).toBe(EXIT_CODES.codeFetch);
    expect(result.outcome).toMatchObject({ outcome: 'code-fetch-failed' });
    expect(errorMessage(result)).toMatch(message);
  });

  it.each([
    ['an expired URL', 'expired' as const, /has expired/],
    ['a denied URL', 'denied' as const, /was denied \(HTTP 403\)/],
    [
      'a download that always breaks off',
      'truncate-always' as const,
      /could not be downloaded after 3 attempts/,
    ],
  ])('exits 3 for %s', async (_what, fault, message) => {
    // Prepare
    okFunction();
    plane.faults.download = fault;

    // Act
    const result = await run(okEnvelope());

    // Assess
    expect(result.code).toBe(3);
    expect(errorMessage(result)).toMatch(message);
    expect(readdirSync(join(sandbox))).not.toContain('task');
  });

  it.each([
    ['breaks off once', 'truncate-once' as const],
    ['answers 503 once', 'server-error-once' as const],
  ])('retries a download that %s and runs the handler', async (_what, fault) => {
    okFunction();
    plane.faults.download = fault;
    const result = await run(okEnvelope());
    expect(result.code).toBe(0);
  });

  it('exits 3 when the zip does not match CodeSha256', async () => {
    register('report', zipFolder(join(functions, 'cjs')), 'index.handler', {
      codeSha256: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    });
    const result = await run(okEnvelope());
    expect(result.code).toBe(3);
    expect(errorMessage(result)).toMatch(/does not match its CodeSha256/);
  });

  const hostile: [string, ZipSource[], RegExp][] = [
    ['an absolute path', [{ name: '/tmp/evil.js', data: 'x' }], /absolute path/],
    ['a ".." path', [{ name: 'a/../../evil.js', data: 'x' }], /climbs out/],
    ['a sibling-prefix escape', [{ name: '../task2/x.js', data: 'x' }], /climbs out/],
    [
      'a link leading out of the root',
      [{ name: 'escape', symlink: '../../../etc' }],
      /-> "..\/..\/..\/etc" resolves outside/,
    ],
    ['an absolute link', [{ name: 'etc', symlink: '/etc' }], /-> "\/etc" points outside/],
    [
      'declared sizes over the limit',
      [{ name: 'big.bin', data: 'x', declaredSize: 300_000_000 }],
      /unpacks to more than/,
    ],
    [
      'an entry that inflates past its declared size',
      [{ name: 'bomb.bin', data: Buffer.alloc(100_000), declaredSize: 1_000 }],
      /does not inflate to its declared/,
    ],
  ];

  it.each(hostile)('exits 3 and writes nothing for %s', async (_what, entries, message) => {
    // Prepare
    register(
      'report',
      buildZip([{ name: 'index.js', data: 'exports.handler = async () => 1;' }, ...entries]),
      'index.handler',
    );

    // Act
    const result = await run(okEnvelope());

    // Assess
    expect(result.code).toBe(3);
    expect(errorMessage(result)).toMatch(message);
  });

  it('exits 3 for a truncated archive that matches its checksum', async () => {
    const zip = zipFolder(join(functions, 'cjs'));
    register('report', zip.subarray(0, zip.length - 30), 'index.handler');
    const result = await run(okEnvelope());
    expect(result.code).toBe(3);
    expect(errorMessage(result)).toMatch(/corrupt or truncated/);
  });

  it('exits 4 when the handler file is missing', async () => {
    okFunction();
    const result = await run(envelopeFor('report', '1', 'missing/file.handler', {}));
    expect(result.code).toBe(EXIT_CODES.handlerLoad);
    expect(errorMessage(result)).toMatch(/cannot find the handler module "missing\/file"/);
  });

  it('exits 4 when the export is missing', async () => {
    okFunction();
    const result = await run(envelopeFor('report', '1', 'index.nothere', {}));
    expect(result.code).toBe(4);
    expect(errorMessage(result)).toMatch(/has no function export "nothere"/);
  });

  it('exits 1 when the handler throws, with the error, its stack and the request id', async () => {
    // Prepare
    register('report', zipFolder(join(functions, 'throws')), 'index.handler');
    const envelope = envelopeFor('report', '1', 'index.handler', { reportId: 'r-9' });

    // Act
    const result = await run(envelope);

    // Assess
    expect(result.code).toBe(EXIT_CODES.handlerError);
    expect(result.outcome).toMatchObject({
      level: 'ERROR',
      outcome: 'handler-error',
      requestId: envelope.invocation.awsRequestId,
      error: { name: 'TypeError', message: 'report r-9 has no pages' },
    });
    expect(result.outcome?.error).toMatchObject({ stack: expect.stringMatching(/index\.js/) });
  });

  it('aborts the handler on SIGTERM and exits 143 when it stops', async () => {
    // Prepare
    register('report', zipFolder(join(functions, 'slow')), 'index.handler');

    // Act
    const result = await run(
      envelopeFor('report', '1', 'index.handler', { workMs: 60_000 }),
      {},
      {
        onLine: (line, child) => {
          if (line.includes('slow handler started')) child.kill('SIGTERM');
        },
      },
    );

    // Assess
    expect(result.code).toBe(EXIT_CODES.stopped);
    expect(result.outcome).toMatchObject({ outcome: 'stopped', exitCode: 143 });
  });

  it('exits 143 when the handler ignores SIGTERM past the grace period', async () => {
    // Prepare
    const ignoresSignal = 'exports.handler = () => new Promise(() => { setInterval(() => {}, 1000); });';
    register('report', buildZip([{ name: 'index.js', data: ignoresSignal }]), 'index.handler');

    // Act
    const result = await run(
      envelopeFor('report', '1', 'index.handler', {}),
      { FARGATE_FALLBACK_STOP_GRACE_MS: '200' },
      {
        onLine: (line, child) => {
          if (line.includes('Calling the handler')) child.kill('SIGTERM');
        },
      },
    );

    // Assess
    expect(result.code).toBe(143);
    expect(errorMessage(result)).toMatch(/did not finish within the 200 ms grace period/);
  });
});

describe('a container image function: the code is the image the task runs', () => {
  /** The image's file system as the runner sees it: the function's code in its task root. */
  const imageWithCode = (folder: string) => {
    cpSync(join(functions, 'cjs'), folder, { recursive: true });
    return readdirSync(folder).sort();
  };
  const registerImage = (name: string, extra: Partial<FunctionSpec> = {}) =>
    plane.registerFunction({
      name,
      version: '1',
      image: `localhost/${name}:1`,
      environment: { GREETING: 'hello from the image function' },
      ...extra,
    });

  it('runs the handler from the task root with the original event and request id, and downloads nothing', async () => {
    // Prepare
    const taskRoot = join(sandbox, 'task');
    const files = imageWithCode(taskRoot);
    registerImage('transcode', { imageConfig: { command: ['index.handler'] } });
    const envelope = envelopeFor('transcode', '1', 'index.handler', { clip: 'c-1' });

    // Act
    const result = await run(envelope);

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(result.observed).toMatchObject({
      echo: { clip: 'c-1' },
      requestId: envelope.invocation.awsRequestId,
      greetingAtLoad: 'hello from the image function',
      handlerSetting: 'index.handler',
      taskRoot,
      runner: '1',
    });
    const messages = result.records.map((record) => record.message);
    expect(messages).toContain("The code is the function's image: nothing to download");
    expect(messages).not.toContain('Fetching the function code');
    // Nothing was extracted into the image's folder, nor into the layers root.
    expect(readdirSync(taskRoot).sort()).toEqual(files);
    expect(readdirSync(sandbox)).toEqual(['task']);
  });

  it("takes the handler from ImageConfig's command and the code from its working directory", async () => {
    // Prepare: no handler in the envelope (the wrapper saw no _HANDLER) and no task root given
    const workdir = join(sandbox, 'task', 'app');
    mkdirSync(workdir, { recursive: true });
    imageWithCode(workdir);
    registerImage('transcode', { imageConfig: { command: ['index.handler'], workingDirectory: workdir } });
    const envelope = envelopeFor('transcode', '1', 'index.handler', { clip: 'c-2' });
    delete (envelope.function as { handler?: string }).handler;
    const { [ENV.taskRoot]: _given, ...withoutRoot } = {
      ...baseEnv,
      [ENV.envelope]: JSON.stringify(envelope),
      [ENV.taskRoot]: '',
      [ENV.layersRoot]: join(sandbox, 'opt'),
    };

    // Act
    const result = await runCli(withoutRoot, { cwd: sandbox });

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(result.observed).toMatchObject({
      echo: { clip: 'c-2' },
      handlerSetting: 'index.handler',
      taskRoot: workdir,
    });
  });

  it('refuses an image of another architecture with the bad-input code, saying what to set', async () => {
    // Prepare
    imageWithCode(join(sandbox, 'task'));
    const other = process.arch === 'arm64' ? 'x86_64' : 'arm64';
    registerImage('transcode', { architecture: other });

    // Act
    const result = await run(envelopeFor('transcode', '1', 'index.handler', {}));

    // Assess
    expect(result.code).toBe(EXIT_CODES.badInput);
    expect(errorMessage(result)).toMatch(new RegExp(`is an ${other} image and this task runs on`));
    expect(errorMessage(result)).toMatch(/cpuArchitecture/);
  });

  it("refuses a task without the image's code folder: it was not started from the function's image", async () => {
    // Prepare
    registerImage('transcode');

    // Act
    const result = await run(envelopeFor('transcode', '1', 'index.handler', {}), {
      [ENV.taskRoot]: join(sandbox, 'task', 'missing'),
    });

    // Assess
    expect(result.code).toBe(EXIT_CODES.badInput);
    expect(errorMessage(result)).toMatch(/is a container image whose code should be in .*missing/);
  });
});
