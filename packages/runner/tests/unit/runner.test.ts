import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ENV } from '@immortal-lambda/middleware/protocol';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handedOffEnvelope } from '../../../local/src/envelopes.js';
import { downloadVerified } from '../../src/download.js';
import { EXIT_CODES } from '../../src/exit-codes.js';
import { splitHandler } from '../../src/handler-loader.js';
import { type RunnerDependencies, runInvocation } from '../../src/runner.js';
import { readSettings } from '../../src/settings.js';
import { buildZip, codeSha256 } from '../helpers/zip-writer.js';

const envelope = () => handedOffEnvelope({ functionName: 'report', version: '2', requestId: 'unit-1' });

describe('runInvocation', () => {
  const lambda = mockClient(LambdaClient);
  let root: string;
  let lines: string[];
  let stop: (() => void) | undefined;
  let deps: RunnerDependencies;

  beforeEach(() => {
    lambda.reset();
    root = mkdtempSync(join(tmpdir(), 'runner-unit-'));
    lines = [];
    stop = undefined;
    deps = {
      env: {
        [ENV.envelope]: JSON.stringify(envelope()),
        [ENV.taskRoot]: join(root, 'task'),
        [ENV.layersRoot]: join(root, 'opt'),
      },
      lambda: () => new LambdaClient({ region: 'eu-west-1' }),
      s3: () => new S3Client({ region: 'eu-west-1' }),
      fetch: async () => new Response('unused'),
      now: () => Date.now(),
      setTimeout: (callback, ms) => setTimeout(callback, ms),
      clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
      onStop: (listener) => {
        stop = listener;
        return () => {
          stop = undefined;
        };
      },
      onIdle: () => () => undefined,
      write: (line) => lines.push(line),
      runtimeModulePaths: [],
      nodeMajor: 22,
      refreshModulePaths: () => undefined,
    };
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  const outcome = () => JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown>;

  it('exits 143 without extracting anything when stopped while fetching the code', async () => {
    // Prepare: GetFunction hangs until the stop arrives.
    lambda.on(GetFunctionCommand).callsFake(() => {
      setTimeout(() => stop?.(), 10);
      return new Promise(() => {});
    });

    // Act
    const code = await runInvocation(deps);

    // Assess
    expect(code).toBe(EXIT_CODES.stopped);
    expect(outcome()).toMatchObject({ outcome: 'stopped', requestId: 'unit-1', functionVersion: '2' });
    expect(readdirSync(root)).toEqual([]);
  });

  describe('a standby task that ends while it gets ready', () => {
    const s3 = mockClient(S3Client);
    const standby = () => ({
      ...deps.env,
      [ENV.standby]: 's3://payloads/immortal-lambda/outcomes/report/unit-1/resume.json',
      [ENV.payloadBucket]: 'payloads',
    });

    beforeEach(() => {
      s3.reset();
      s3.on(PutObjectCommand).resolves({});
    });

    it('was not needed when it is stopped: exit 0, and no attempt record', async () => {
      // Prepare: GetFunction hangs until the wrapper's cancel stops the task.
      lambda.on(GetFunctionCommand).callsFake(() => {
        setTimeout(() => stop?.(), 10);
        return new Promise(() => {});
      });

      // Act
      const code = await runInvocation({ ...deps, env: standby() });

      // Assess
      expect(code).toBe(EXIT_CODES.success);
      expect(outcome()).toMatchObject({ outcome: 'not-needed', requestId: 'unit-1' });
      expect(s3.commandCalls(PutObjectCommand)).toEqual([]);
    });

    it('keeps its exit code when its code cannot be fetched, and records nothing for the invocation', async () => {
      // Prepare
      lambda
        .on(GetFunctionCommand)
        .rejects(Object.assign(new Error('no such version'), { name: 'ResourceNotFoundException' }));

      // Act
      const code = await runInvocation({ ...deps, env: standby() });

      // Assess
      expect(code).toBe(EXIT_CODES.codeFetch);
      expect(outcome()).toMatchObject({ outcome: 'code-fetch-failed', standby: true });
      expect(s3.commandCalls(PutObjectCommand)).toEqual([]);
    });
  });

  it('writes one EMF line per run: RunnerDuration, CodeFetch, DeadTime, Relaunches, by function name, and none when off', async () => {
    // Prepare
    const zip = buildZip([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]);
    lambda.on(GetFunctionCommand).resolves({
      Configuration: { CodeSha256: codeSha256(zip), PackageType: 'Zip' },
      Code: { Location: 'https://code.example/zip' },
    });
    deps.fetch = async () => new Response(zip, { headers: { 'content-length': String(zip.length) } });
    deps.env[ENV.attempt] = '2';

    // Act
    await runInvocation(deps);
    const first = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line._aws);
    lines.length = 0;
    deps.env = { ...deps.env, [ENV.metrics]: 'false', [ENV.taskRoot]: join(root, 'task-2') };
    await runInvocation(deps);
    const second = lines.filter((line) => line.includes('"_aws"'));

    // Assess
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({
      FunctionName: 'report',
      Relaunches: 1,
      outcome: 'success',
      requestId: 'unit-1',
      _aws: {
        CloudWatchMetrics: [
          {
            Namespace: 'ImmortalLambda',
            Dimensions: [['FunctionName']],
            Metrics: [
              { Name: 'RunnerDuration', Unit: 'Milliseconds' },
              { Name: 'CodeFetch', Unit: 'Milliseconds' },
              { Name: 'DeadTime', Unit: 'Milliseconds' },
              { Name: 'Relaunches', Unit: 'Count' },
            ],
          },
        ],
      },
    });
    expect(second).toEqual([]);
  });

  it("refuses a node older than 20 before fetching anything, as an image function's own node may be", async () => {
    // Prepare
    deps = { ...deps, nodeMajor: 18, nodeVersion: 'v18.20.4' };

    // Act
    const code = await runInvocation(deps);

    // Assess
    expect(code).toBe(EXIT_CODES.badInput);
    expect(outcome()).toMatchObject({ outcome: 'bad-input' });
    expect(JSON.stringify(outcome())).toMatch(/node is v18\.20\.4 and the runner needs Node 20 or later/);
    expect(lambda.commandCalls(GetFunctionCommand)).toHaveLength(0);
  });

  it("changes into an image function's working directory, where its code is, and runs the image's command", async () => {
    // Prepare: no task root given; ImageConfig names the folder
    const workdir = join(root, 'image', 'app');
    mkdirSync(workdir, { recursive: true });
    writeFileSync(
      join(workdir, 'job.cjs'),
      'exports.run = async (event) => ({ ran: event, cwd: process.cwd() });\n',
    );
    const chdirs: string[] = [];
    const { [ENV.taskRoot]: _root, ...env } = deps.env;
    const handedOff = envelope();
    delete (handedOff.function as { handler?: string }).handler;
    deps = {
      ...deps,
      env: { ...env, [ENV.envelope]: JSON.stringify(handedOff) },
      arch: 'x64',
      chdir: (folder) => chdirs.push(folder),
    };
    lambda.on(GetFunctionCommand).resolves({
      Configuration: {
        PackageType: 'Image',
        Architectures: ['x86_64'],
        ImageConfigResponse: { ImageConfig: { Command: ['job.run'], WorkingDirectory: workdir } },
      },
      Code: { RepositoryType: 'ECR', ImageUri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/report:2' },
    });

    // Act
    const code = await runInvocation(deps);

    // Assess
    expect(code).toBe(EXIT_CODES.success);
    expect(chdirs).toEqual([workdir]);
    expect(deps.env._HANDLER).toBe('job.run');
    expect(deps.env.LAMBDA_TASK_ROOT).toBe(workdir);
    expect(outcome()).toMatchObject({ outcome: 'success', requestId: 'unit-1' });
  });

  /**
   * An image function whose code is in `folder`, handed off without a handler, whose GetFunction
   * names no command (its image's CMD is not overridden); `env` adds to the task's environment.
   */
  const imageFunction = (folder: string, env: Record<string, string> = {}) => {
    mkdirSync(folder, { recursive: true });
    const { [ENV.taskRoot]: _root, ...rest } = deps.env;
    const handedOff = envelope();
    delete (handedOff.function as { handler?: string }).handler;
    deps = {
      ...deps,
      env: { ...rest, [ENV.envelope]: JSON.stringify(handedOff), ...env },
      arch: 'x64',
      cwd: () => folder,
      chdir: () => undefined,
    };
    lambda.on(GetFunctionCommand).resolves({
      Configuration: { PackageType: 'Image', Architectures: ['x86_64'] },
      Code: { RepositoryType: 'ECR', ImageUri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/report:2' },
    });
  };

  it("runs an image function's handler from the task definition when neither the envelope nor GetFunction names one", async () => {
    // Prepare
    const workdir = join(root, 'image', 'task');
    imageFunction(workdir, { [ENV.imageHandler]: 'index.handler' });
    writeFileSync(join(workdir, 'index.cjs'), 'exports.handler = async () => ({ ran: true });\n');

    // Act
    const code = await runInvocation(deps);

    // Assess
    expect(code).toBe(EXIT_CODES.success);
    expect(deps.env._HANDLER).toBe('index.handler');
  });

  it("finds an image function's code in the LAMBDA_TASK_ROOT its image sets, whatever its working directory (/ included)", async () => {
    // Prepare: the container starts in an empty folder (an image whose WORKDIR is /)
    const taskRoot = join(root, 'image', 'var-task');
    mkdirSync(taskRoot, { recursive: true });
    writeFileSync(join(taskRoot, 'index.cjs'), 'exports.handler = async () => ({ ran: true });\n');
    imageFunction(join(root, 'image', 'slash'), {
      [ENV.imageHandler]: 'index.handler',
      LAMBDA_TASK_ROOT: taskRoot,
    });

    // Act
    const code = await runInvocation(deps);

    // Assess
    expect(code).toBe(EXIT_CODES.success);
    expect(deps.env.LAMBDA_TASK_ROOT).toBe(taskRoot);
  });

  it('finishes a run whose handler succeeded with a result JSON cannot carry, keeping what it can and saying what not', async () => {
    // Prepare: a BigInt, a cycle and a getter that throws, none of which JSON.stringify takes.
    const workdir = join(root, 'image', 'odd-result');
    imageFunction(workdir, { [ENV.imageHandler]: 'index.handler' });
    writeFileSync(
      join(workdir, 'index.cjs'),
      [
        'exports.handler = async () => {',
        '  const result = { total: 12n, rows: [1, 2] };',
        '  result.self = result;',
        "  Object.defineProperty(result, 'secret', { enumerable: true, get() { throw new Error('no access'); } });",
        '  return result;',
        '};',
      ].join('\n'),
    );

    // Act
    const code = await runInvocation(deps);

    // Assess
    expect(code).toBe(EXIT_CODES.success);
    expect(outcome()).toMatchObject({ outcome: 'success' });
    expect(String(outcome().resultNote)).toMatch(/BigInt was kept as its decimal string/);
    expect(String(outcome().resultNote)).toMatch(/cycle was kept as "\[Circular\]"/);
    expect(String(outcome().resultNote)).toMatch(/property secret could not be read \(no access\)/);
  });

  it('fails a run whose handler threw an error that is its own cause, describing it without looping', async () => {
    // Prepare
    const workdir = join(root, 'image', 'self-cause');
    imageFunction(workdir, { [ENV.imageHandler]: 'index.handler' });
    writeFileSync(
      join(workdir, 'index.cjs'),
      "exports.handler = async () => { const error = new Error('loop'); error.cause = error; throw error; };\n",
    );

    // Act
    const code = await runInvocation(deps);

    // Assess
    expect(code).toBe(EXIT_CODES.handlerError);
    expect(outcome()).toMatchObject({ error: { message: 'loop', cause: { message: '[Circular cause]' } } });
  });

  it("says where an image function's handler goes when nothing names it", async () => {
    // Prepare
    imageFunction(join(root, 'image', 'none'));

    // Act
    const code = await runInvocation(deps);

    // Assess
    expect(code).toBe(EXIT_CODES.handlerLoad);
    expect(JSON.stringify(outcome())).toContain(
      `set ${ENV.imageHandler} on the task definition to its image's CMD`,
    );
  });

  it('asks for the exact version in the envelope', async () => {
    // Prepare
    const zip = buildZip([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]);
    lambda.on(GetFunctionCommand).resolves({
      Configuration: { CodeSha256: codeSha256(zip), PackageType: 'Zip' },
      Code: { Location: 'https://code.example/zip' },
    });
    deps.fetch = async () => new Response(zip, { headers: { 'content-length': String(zip.length) } });

    // Act
    const code = await runInvocation(deps);

    // Assess
    expect(code).toBe(EXIT_CODES.success);
    expect(lambda.commandCalls(GetFunctionCommand)[0]?.args[0].input).toEqual({
      FunctionName: 'report',
      Qualifier: '2',
    });
    expect(deps.env.FARGATE_FALLBACK_RUNNER).toBe('1');
    expect(deps.env.AWS_LAMBDA_FUNCTION_VERSION).toBe('2');
  });
});

describe('downloadVerified', () => {
  const body = Buffer.from('zip bytes');
  const noWait = async () => undefined;

  it('never retries a checksum mismatch into success', async () => {
    // Prepare
    let calls = 0;
    const fetch = async () => {
      calls += 1;
      return new Response(body);
    };

    // Act
    const download = downloadVerified({
      url: 'u',
      label: 'the code',
      sha256: 'wrong',
      maxBytes: 100,
      fetch,
      sleep: noWait,
    });

    // Assess
    await expect(download).rejects.toThrow(/does not match its CodeSha256/);
    expect(calls).toBe(1);
  });

  it('leaves the verified body in shared memory, for the writer threads to read without a copy', async () => {
    // Prepare
    const fetch = async () => new Response(body, { headers: { 'content-length': String(body.length) } });

    // Act
    const downloaded = await downloadVerified({
      url: 'u',
      label: 'the code',
      sha256: codeSha256(body),
      maxBytes: 100,
      fetch,
    });

    // Assess
    expect(downloaded.equals(body)).toBe(true);
    expect(downloaded.buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('refuses a body larger than the cap before reading it', async () => {
    // Prepare
    const fetch = async () => new Response(body, { headers: { 'content-length': '1000000000' } });

    // Act
    const download = downloadVerified({
      url: 'u',
      label: 'the code',
      sha256: codeSha256(body),
      maxBytes: 100,
      fetch,
    });

    // Assess
    await expect(download).rejects.toThrow(/1000000000 bytes, over the 100-byte limit/);
  });

  it('stops a body without a length once it passes the cap', async () => {
    // Prepare
    const big = Buffer.alloc(500);
    const fetch = async () => new Response(new Blob([big]).stream());

    // Act
    const download = downloadVerified({
      url: 'u',
      label: 'the code',
      sha256: codeSha256(big),
      maxBytes: 100,
      fetch,
    });

    // Assess
    await expect(download).rejects.toThrow(/larger than the 100-byte limit/);
  });

  it('renews a refused URL once through refreshUrl', async () => {
    // Prepare
    const seen: string[] = [];
    const fetch = async (url: string) => {
      seen.push(url);
      return url === 'old'
        ? new Response('<Message>Request has expired</Message>', { status: 403 })
        : new Response(body);
    };

    // Act
    const downloaded = await downloadVerified({
      url: 'old',
      label: 'the code',
      sha256: codeSha256(body),
      maxBytes: 100,
      fetch,
      refreshUrl: async () => 'new',
    });

    // Assess
    expect(downloaded.equals(body)).toBe(true);
    expect(seen).toEqual(['old', 'new']);
  });
});

describe('splitHandler and readSettings', () => {
  it('split handler strings the way Lambda does', () => {
    expect(splitHandler('index.handler')).toEqual({ modulePath: 'index', exportPath: ['handler'] });
    expect(splitHandler('src/jobs/report.jobs.main')).toEqual({
      modulePath: 'src/jobs/report',
      exportPath: ['jobs', 'main'],
    });
    expect(() => splitHandler('handler')).toThrow(/not of the form path\/to\/file.export/);
  });

  it('default to Lambda paths and refuse relative roots and bad numbers, all at once', () => {
    expect(readSettings({})).toMatchObject({
      taskRoot: '/var/task',
      layersRoot: '/opt',
      stopGraceMs: 25_000,
    });
    expect(() =>
      readSettings({
        [ENV.taskRoot]: 'task',
        [ENV.maxRuntimeMs]: '-1',
        FARGATE_FALLBACK_STOP_GRACE_MS: '999999',
      }),
    ).toThrow(
      /FARGATE_FALLBACK_MAX_RUNTIME_MS[\s\S]*FARGATE_FALLBACK_STOP_GRACE_MS[\s\S]*FARGATE_FALLBACK_TASK_ROOT/,
    );
  });
});
