import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { handedOffEnvelope, LocalControlPlane, NoLauncher } from '@immortal-lambda/local';
import { ENV, type Envelope } from '@immortal-lambda/middleware/protocol';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/exit-codes.js';
import { runCli } from '../helpers/run-cli.js';
import { buildZip } from '../helpers/zip-writer.js';

// The local plane serves the Lambda API the runner calls; these tests run the runner themselves.
const plane = new LocalControlPlane({ launcher: new NoLauncher() });
let silent: Server;
let silentEndpoint: string;
const sockets = new Set<Socket>();
let scratch: string;
let sandbox: string;
let baseEnv: Record<string, string>;

const errorMessage = (result: { outcome?: Record<string, unknown> | undefined }) =>
  String((result.outcome?.error as { message?: string } | undefined)?.message);

const envelope = (handler: string | undefined, event: unknown = {}): Envelope => {
  const built = handedOffEnvelope({
    functionName: 'fn',
    version: '1',
    event,
    handler: handler ?? 'index.handler',
  });
  if (handler === undefined) delete built.function.handler;
  return built;
};

const run = (value: Envelope | string, extra: Record<string, string> = {}) =>
  runCli({
    ...baseEnv,
    [ENV.envelope]: typeof value === 'string' ? value : JSON.stringify(value),
    [ENV.taskRoot]: join(sandbox, 'task'),
    [ENV.layersRoot]: join(sandbox, 'opt'),
    ...extra,
  });

const register = (files: { name: string; data: string }[], handler = 'index.handler') =>
  plane.registerFunction({ name: 'fn', version: '1', zip: buildZip(files), handler });

beforeAll(async () => {
  // An endpoint that accepts connections and never answers.
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentEndpoint = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  baseEnv = {
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL_LAMBDA: await plane.start(),
    AWS_ENDPOINT_URL_ECS: 'http://127.0.0.1:9',
  };
  scratch = mkdtempSync(join(tmpdir(), 'runner-hostile-'));
});

afterAll(async () => {
  await plane.stop();
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
  rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => {
  plane.resetRecords();
  sandbox = mkdtempSync(join(scratch, 'sandbox-'));
  // A module outside the task root that a hostile handler string would reach.
  mkdirSync(join(sandbox, 'x'));
  writeFileSync(
    join(sandbox, 'x', 'evil.js'),
    'exports.handler = async () => { console.log(JSON.stringify({ observed: { evil: true } })); };',
  );
});

afterEach(() => {
  expect(readdirSync(sandbox).sort()).toEqual(expect.arrayContaining(['x']));
  expect(readdirSync(join(sandbox, 'x'))).toEqual(['evil.js']);
});

describe('immortal-runner refuses hostile handler strings and exports', () => {
  it.each([
    ['../x/evil.handler', /climbs out of the task root/],
    ['sub/../../x/evil.handler', /climbs out of the task root/],
    ['/etc/evil.handler', /absolute path/],
  ])('exits 2 for an envelope whose handler is %s, running nothing', async (handler, message) => {
    // Prepare
    register([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]);
    const hostile = {
      ...envelope('index.handler'),
      function: { ...envelope('index.handler').function, handler },
    };

    // Act
    const result = await run(hostile);

    // Assess
    expect(result.code).toBe(EXIT_CODES.badInput);
    expect(errorMessage(result)).toMatch(message);
    expect(result.observed).toBeUndefined();
  });

  it('exits 4 for a configured handler that climbs out, when the envelope carries none', async () => {
    // Prepare
    register([{ name: 'index.js', data: 'exports.handler = async () => 1;' }], '../x/evil.handler');

    // Act
    const result = await run(envelope(undefined));

    // Assess
    expect(result.code).toBe(EXIT_CODES.handlerLoad);
    expect(errorMessage(result)).toMatch(/climbs out of the task root/);
    expect(result.observed).toBeUndefined();
  });

  it('runs the configured handler when _HANDLER was unset where the handoff ran', async () => {
    // Prepare
    register(
      [
        {
          name: 'main.js',
          data: 'exports.run = async (e) => { console.log(JSON.stringify({ observed: e })); };',
        },
      ],
      'main.run',
    );

    // Act
    const result = await run(envelope(undefined, { from: 'configuration' }));

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(result.observed).toEqual({ from: 'configuration' });
  });

  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__'])(
    'exits 4 for index.%s: only own properties are handlers',
    async (name) => {
      // Prepare
      register([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]);

      // Act
      const result = await run(envelope(`index.${name}`));

      // Assess
      expect(result.code).toBe(EXIT_CODES.handlerLoad);
      expect(errorMessage(result)).toMatch(new RegExp(`no function export "${name}"`));
    },
  );
});

describe('immortal-runner validates what it reads', () => {
  it('exits 2 for a handedOffAt that is no date, without a raw RangeError', async () => {
    // Prepare
    register([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]);
    const json = JSON.stringify(envelope('index.handler')).replace(
      /"handedOffAt":\d+/,
      '"handedOffAt":1e308',
    );

    // Act
    const result = await run(json);

    // Assess
    expect(result.code).toBe(EXIT_CODES.badInput);
    expect(errorMessage(result)).toMatch(/invocation.handedOffAt must be a time in epoch milliseconds/);
  });

  it.each(['0x10', '1e3', '12.5', '-5'])('exits 2 for %s as FARGATE_FALLBACK_MAX_RUNTIME_MS', async (raw) => {
    const result = await run(envelope('index.handler'), { [ENV.maxRuntimeMs]: raw });
    expect(result.code).toBe(EXIT_CODES.badInput);
    expect(errorMessage(result)).toMatch(`FARGATE_FALLBACK_MAX_RUNTIME_MS is "${raw}"`);
  });

  it('exits 2 naming the setting when the task root is a file', async () => {
    // Prepare
    register([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]);
    writeFileSync(join(sandbox, 'task'), 'a file');

    // Act
    const result = await run(envelope('index.handler'));

    // Assess
    expect(result.code).toBe(EXIT_CODES.badInput);
    expect(errorMessage(result)).toMatch(/is not a folder/);
  });
});

describe('immortal-runner never hangs on an AWS endpoint that does not answer', () => {
  const bounds = { FARGATE_FALLBACK_AWS_TIMEOUT_MS: '300', FARGATE_FALLBACK_AWS_MAX_ATTEMPTS: '2' };

  it('exits 3 with a clear record when the Lambda API accepts and never answers', async () => {
    // Act
    const began = Date.now();
    const result = await run(envelope('index.handler'), {
      ...bounds,
      AWS_ENDPOINT_URL_LAMBDA: silentEndpoint,
    });

    // Assess
    expect(result.code).toBe(EXIT_CODES.codeFetch);
    expect(errorMessage(result)).toMatch(
      /the Lambda API did not answer GetFunction for fn:1 after 2 attempts/,
    );
    expect(Date.now() - began).toBeLessThan(15_000);
  });

  it('exits 2 with a clear record when S3 never answers for the envelope', async () => {
    // Act
    const result = await run('s3://envelopes/fn/id.json', { ...bounds, AWS_ENDPOINT_URL_S3: silentEndpoint });

    // Assess
    expect(result.code).toBe(EXIT_CODES.badInput);
    expect(errorMessage(result)).toMatch(/S3 did not answer after 2 attempts/);
  });
});

describe('immortal-runner applies what Lambda would', () => {
  it('exits 3 naming the key and the missing permission when the environment cannot be decrypted', async () => {
    // Prepare
    plane.registerFunction({
      name: 'fn',
      version: '1',
      zip: buildZip([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]),
      handler: 'index.handler',
      environmentError: { ErrorCode: 'AccessDeniedException', Message: 'Lambda was unable to decrypt' },
    });

    // Act
    const result = await run(envelope('index.handler'));

    // Assess
    expect(result.code).toBe(EXIT_CODES.codeFetch);
    expect(errorMessage(result)).toMatch(
      /environment variables of fn:1 cannot be read \(AccessDeniedException.*kms:Decrypt on arn:aws:kms:eu-west-1:123456789012:key\/env/,
    );
    expect(result.records.some((r) => r.message === 'Calling the handler')).toBe(false);
  });

  it('refuses a function of another Node major with the bad-configuration code, unless allowed', async () => {
    // Prepare
    const other = Number(process.versions.node.split('.')[0]) === 22 ? 'nodejs24.x' : 'nodejs22.x';
    plane.registerFunction({
      name: 'fn',
      version: '1',
      zip: buildZip([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]),
      handler: 'index.handler',
      runtime: other,
    });

    // Act
    const refused = await run(envelope('index.handler'));
    const allowed = await run(envelope('index.handler'), { FARGATE_FALLBACK_ALLOW_RUNTIME_MISMATCH: 'true' });

    // Assess
    expect(refused.code).toBe(EXIT_CODES.badInput);
    expect(errorMessage(refused)).toMatch(new RegExp(`runs on ${other} and this runner on Node`));
    expect(allowed.code).toBe(EXIT_CODES.success);
  });

  it('retries GetFunction while the Lambda API throttles, logging each wait, and runs the handler', async () => {
    // Prepare
    register([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]);
    plane.faults.lambdaThrottleNext = 4;

    // Act
    const result = await run(envelope('index.handler'), { FARGATE_FALLBACK_AWS_MAX_ATTEMPTS: '1' });

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(
      result.records.filter((r) => String(r.message).startsWith('Throttled by the Lambda API')),
    ).toHaveLength(4);
  });

  it('ends a throttled run loudly once the throttle budget is spent', async () => {
    // Prepare
    register([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]);
    plane.faults.lambdaThrottleNext = 1_000;

    // Act
    const result = await run(envelope('index.handler'), {
      FARGATE_FALLBACK_AWS_MAX_ATTEMPTS: '1',
      FARGATE_FALLBACK_THROTTLE_BUDGET_MS: '1500',
    });

    // Assess
    expect(result.code).toBe(EXIT_CODES.codeFetch);
    expect(errorMessage(result)).toMatch(/still throttled by the Lambda API after \d+ s/);
  });

  it('aborts a handler that runs past FARGATE_FALLBACK_MAX_RUNTIME_MS and exits 124 after the grace', async () => {
    // Prepare: the handler ignores its signal.
    register([
      {
        name: 'index.js',
        data: 'exports.handler = () => new Promise((resolve) => setTimeout(resolve, 60_000));',
      },
    ]);

    // Act
    const began = Date.now();
    const result = await run(envelope('index.handler'), {
      [ENV.maxRuntimeMs]: '300',
      FARGATE_FALLBACK_STOP_GRACE_MS: '200',
    });

    // Assess
    expect(result.code).toBe(EXIT_CODES.timedOut);
    expect(result.outcome).toMatchObject({ outcome: 'timed-out', exitCode: 124 });
    expect(errorMessage(result)).toMatch(
      /ran past FARGATE_FALLBACK_MAX_RUNTIME_MS \(300 ms\) and did not stop within the 200 ms grace/,
    );
    expect(Date.now() - began).toBeLessThan(10_000);
  });

  it('exits 124 when a handler stops on its aborted signal at the maximum run time', async () => {
    // Prepare: the handler honours its signal.
    register([
      {
        name: 'index.js',
        data: `exports.handler = (_e, _c, cb) => new Promise((_r, reject) => {
  const work = setTimeout(() => {}, 60_000);
  cb.signal.addEventListener('abort', () => { clearTimeout(work); reject(cb.signal.reason); });
});`,
      },
    ]);

    // Act
    const result = await run(envelope('index.handler'), { [ENV.maxRuntimeMs]: '300' });

    // Assess
    expect(result.code).toBe(EXIT_CODES.timedOut);
    expect(errorMessage(result)).toMatch(/was aborted and stopped/);
  });

  it('starts the handler in a process with the function NODE_OPTIONS, as Lambda does', async () => {
    // Prepare
    plane.registerFunction({
      name: 'fn',
      version: '1',
      zip: buildZip([
        {
          name: 'index.js',
          data: `const v8 = require('node:v8');
exports.handler = async (event, context) => {
  console.log(JSON.stringify({ observed: {
    heapMiB: Math.round(v8.getHeapStatistics().heap_size_limit / 1048576),
    sourceMaps: process.sourceMapsEnabled,
    requestId: context.awsRequestId,
    event,
  } }));
  return 'ok';
};`,
        },
      ]),
      handler: 'index.handler',
      environment: { NODE_OPTIONS: '--max-old-space-size=96 --enable-source-maps' },
    });
    const value = envelope('index.handler', { id: 4 });

    // Act
    const result = await run(value);

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(result.observed).toMatchObject({
      sourceMaps: true,
      requestId: value.invocation.awsRequestId,
      event: { id: 4 },
    });
    // The heap limit the option sets, against the same Node's default on this machine.
    const { getHeapStatistics } = await import('node:v8');
    const defaultMiB = getHeapStatistics().heap_size_limit / 1_048_576;
    expect(Number(result.observed?.heapMiB)).toBeLessThan(defaultMiB / 2);
    expect(result.records.filter((r) => r.message === 'immortal-runner finished')).toHaveLength(1);
  });

  it('runs the handler through AWS_LAMBDA_EXEC_WRAPPER and passes on its exit code', async () => {
    // Prepare
    plane.registerFunction({
      name: 'fn',
      version: '1',
      zip: buildZip([
        { name: 'wrapper.sh', data: '#!/bin/sh\nexport WRAPPED_BY=wrapper\nexec "$@"\n', mode: 0o755 },
        {
          name: 'index.js',
          data: 'exports.handler = async () => { console.log(JSON.stringify({ observed: { wrappedBy: process.env.WRAPPED_BY } })); throw new Error("after the wrapper"); };',
        },
      ]),
      handler: 'index.handler',
      environment: { AWS_LAMBDA_EXEC_WRAPPER: '/var/task/wrapper.sh' },
    });

    // Act
    const result = await run(envelope('index.handler'));

    // Assess
    expect(result.observed).toEqual({ wrappedBy: 'wrapper' });
    expect(result.code).toBe(EXIT_CODES.handlerError);
    expect(result.outcome).toMatchObject({ outcome: 'handler-error' });
    expect(errorMessage(result)).toBe('after the wrapper');
  });

  it('says that extensions in the layers are not run', async () => {
    // Prepare
    const layer = plane.registerLayer(
      'ext',
      buildZip([{ name: 'extensions/telemetry', data: '#!/bin/sh\n', mode: 0o755 }]),
    );
    plane.registerFunction({
      name: 'fn',
      version: '1',
      zip: buildZip([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]),
      handler: 'index.handler',
      layers: [layer],
    });

    // Act
    const result = await run(envelope('index.handler'));

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(
      result.records.find((r) => r.message === 'Lambda extensions are not run by the runner'),
    ).toMatchObject({
      extensions: [join(sandbox, 'opt', 'extensions', 'telemetry')],
    });
  });
});
