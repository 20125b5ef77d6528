import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { handedOffEnvelope, LocalControlPlane } from '@immortal-lambda/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..', '..');
const published = ['protocol', 'middleware', 'runner', 'local', 'cdk'];
let scratch: string;
let packs: string;
const tarballs = new Map<string, string>();

const pnpm = () => {
  const local = join(root, '.tools', 'pnpm', 'node_modules', '.bin', 'pnpm');
  return existsSync(local) ? local : 'pnpm';
};

/**
 * The AWS SDK's packages at the versions the workspace's lockfile holds (those it holds in one
 * version), for npm's `overrides`: the consumer installs the SDK the tests ran with, not whatever
 * the registry offers that day (a client's ranges can reach a release the registry cannot serve).
 */
function lockedSdkVersions(): Record<string, string> {
  const lock = readFileSync(join(root, 'pnpm-lock.yaml'), 'utf8');
  const versions = new Map<string, Set<string>>();
  for (const [, name, version] of lock.matchAll(
    /^ {2}'?(@(?:aws-sdk|smithy|aws-crypto)\/[^@'\s]+)@(\d[^('\s:]*)/gm,
  )) {
    const seen = versions.get(name as string) ?? new Set<string>();
    seen.add(version as string);
    versions.set(name as string, seen);
  }
  return Object.fromEntries(
    [...versions].filter(([, seen]) => seen.size === 1).map(([name, seen]) => [name, [...seen][0] as string]),
  );
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'immortal-consumer-'));
  packs = join(scratch, 'packs');
  mkdirSync(packs);
  for (const name of published) {
    await run(pnpm(), ['pack', '--pack-destination', packs], { cwd: join(root, 'packages', name) });
    const file = readdirSync(packs).find((f) => f.startsWith(`immortal-lambda-${name}-`));
    if (!file) throw new Error(`pnpm pack made no tarball for ${name}`);
    tarballs.set(name, join(packs, file));
  }
  // A project outside the workspace, as a user's would be, installing what would be published.
  const project = join(scratch, 'project');
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, overrides: lockedSdkVersions() }),
  );
  await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      String(tarballs.get('protocol')),
      String(tarballs.get('middleware')),
      String(tarballs.get('runner')),
    ],
    { cwd: project },
  );
}, 300_000);

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describe('the packed packages', () => {
  it.each(published)('%s holds only its build, README, LICENSE and package.json', async (name) => {
    // Act
    const { stdout } = await run('tar', ['tzf', String(tarballs.get(name))]);

    // Assess
    const files = stdout
      .trim()
      .split('\n')
      .map((line) => line.replace(/^package\//, ''));
    const allowed = /^(dist\/.+|README\.md|LICENSE|package\.json)$/;
    const extra = name === 'runner' ? ['Dockerfile'] : [];
    expect(files.filter((file) => !allowed.test(file) && !extra.includes(file))).toEqual([]);
    expect(files).toContain('README.md');
    expect(files.some((file) => file.startsWith('dist/index.'))).toBe(true);
  });

  it('work for an ESM consumer', async () => {
    // Prepare
    const project = join(scratch, 'project');
    writeFileSync(
      join(project, 'esm.mjs'),
      `import { withFargateFallback, HandoffError } from '@immortal-lambda/middleware';
import { fargateFallback } from '@immortal-lambda/middleware/middy';
import { parseEnvelope, ENVELOPE_VERSION } from '@immortal-lambda/middleware/protocol';
const env = { FARGATE_FALLBACK_CLUSTER: 'c', FARGATE_FALLBACK_TASK_DEFINITION: 't', FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1' };
const handler = withFargateFallback(async (event, _context, { runtime }) => ({ doubled: event.n * 2, runtime }), { env });
const result = await handler({ n: 21 }, { awsRequestId: 'r', getRemainingTimeInMillis: () => 60000 });
console.log(JSON.stringify({ result, middy: typeof fargateFallback({ env }).onError, version: ENVELOPE_VERSION, error: typeof HandoffError, parse: typeof parseEnvelope }));
`,
    );

    // Act
    const { stdout } = await run(process.execPath, ['esm.mjs'], { cwd: project });

    // Assess
    expect(JSON.parse(stdout)).toEqual({
      result: { doubled: 42, runtime: 'lambda' },
      middy: 'function',
      version: 1,
      error: 'function',
      parse: 'function',
    });
  });

  it('work for a CommonJS consumer', async () => {
    // Prepare
    const project = join(scratch, 'project');
    writeFileSync(
      join(project, 'cjs.cjs'),
      `const { withFargateFallback } = require('@immortal-lambda/middleware');
const { fargateFallback } = require('@immortal-lambda/middleware/middy');
const { ENV } = require('@immortal-lambda/middleware/protocol');
const protocol = require('@immortal-lambda/protocol');
const handler = withFargateFallback(async (event, _context, { runtime }) => ({ doubled: event.n * 2, runtime }), { env: { [ENV.runner]: '1' } });
handler({ n: 4 }, { awsRequestId: 'r', getRemainingTimeInMillis: () => 1 }).then((result) =>
  console.log(JSON.stringify({ result, middy: typeof fargateFallback, sameNames: protocol.ENV === ENV })),
);
`,
    );

    // Act
    const { stdout } = await run(process.execPath, ['cjs.cjs'], { cwd: project });

    // Assess
    expect(JSON.parse(stdout)).toEqual({
      result: { doubled: 8, runtime: 'fargate' },
      middy: 'function',
      sameNames: true,
    });
  });

  it('recognise their errors whichever copy made them: the bundled protocol, the CommonJS build', async () => {
    // Prepare: a step error thrown by the middleware's bundled journal, checked against the
    // installed protocol's classes; errors of the CommonJS build against the ESM build's.
    const project = join(scratch, 'project');
    writeFileSync(
      join(project, 'errors.mjs'),
      `import { createRequire } from 'node:module';
import { withFargateFallback, ConfigurationError, HandedOffError, ImmortalLambdaError } from '@immortal-lambda/middleware';
import * as viaMiddleware from '@immortal-lambda/middleware/protocol';
import * as protocol from '@immortal-lambda/protocol';
const cjs = createRequire(import.meta.url)('@immortal-lambda/middleware');
const handler = withFargateFallback(async (_event, _context, { step }) => {
  await step('load', () => 1);
  await step('load', () => 2);
}, { disabled: true });
const stepError = await handler({}, { awsRequestId: 'r', getRemainingTimeInMillis: () => 60000 }).catch((error) => error);
let configurationError;
try { cjs.withFargateFallback(async () => 1, { env: {} }); } catch (error) { configurationError = error; }
console.log(JSON.stringify({
  step: [stepError.name, stepError instanceof protocol.StepError, stepError instanceof viaMiddleware.StepError, stepError instanceof protocol.ImmortalLambdaError, stepError instanceof ImmortalLambdaError, stepError instanceof protocol.EnvelopeError],
  configuration: [configurationError.name, configurationError instanceof ConfigurationError, configurationError instanceof protocol.ImmortalLambdaError, configurationError instanceof HandedOffError],
  handedOff: [new cjs.HandedOffError('arn:task') instanceof HandedOffError, new HandedOffError('arn:task') instanceof cjs.HandedOffError, new HandedOffError('arn:task') instanceof cjs.HandoffError],
}));
`,
    );

    // Act
    const { stdout } = await run(process.execPath, ['errors.mjs'], { cwd: project });

    // Assess
    expect(JSON.parse(stdout)).toEqual({
      step: ['StepError', true, true, true, true, false],
      configuration: ['ConfigurationError', true, true, false],
      handedOff: [true, true, false],
    });
  });

  it('hand off from the installed package, ESM and CommonJS, the handler entry one file', async () => {
    // Prepare: an invocation whose time is up at once, a stand-in ECS client that records the
    // commands it is sent and answers with a task.
    const project = join(scratch, 'project');
    const body = `const sent = [];
const ecsClient = { send: async (command) => {
  sent.push(command.constructor.name);
  if (command.constructor.name === 'ListTasksCommand') return { taskArns: [] };
  return { tasks: [{ taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef' }], failures: [] };
} };
const env = {
  AWS_REGION: 'eu-west-1', AWS_LAMBDA_FUNCTION_NAME: 'report-job', AWS_LAMBDA_FUNCTION_VERSION: '7', _HANDLER: 'index.handler',
  FARGATE_FALLBACK_CLUSTER: 'jobs', FARGATE_FALLBACK_TASK_DEFINITION: 'runner:3', FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1',
};
const logger = { info: () => undefined, error: (message, attributes) => console.error(message, JSON.stringify(attributes)) };
const handler = withFargateFallback((_event, _context, { signal }) => new Promise((resolve) => signal.addEventListener('abort', () => resolve('stopped'))), { env, ecsClient, logger, metrics: false, marginMs: 1000 });
const context = {
  awsRequestId: 'pack-1', functionName: 'report-job', functionVersion: '7', memoryLimitInMB: '512',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report-job', logGroupName: 'g', logStreamName: 's',
  getRemainingTimeInMillis: () => 1000,
};
handler({ n: 1 }, context).then((receipt) =>
  console.log(JSON.stringify({ taskArn: receipt.taskArn, runTasks: sent.filter((name) => name === 'RunTaskCommand').length })),
);
`;
    writeFileSync(
      join(project, 'handoff.mjs'),
      `import { withFargateFallback } from '@immortal-lambda/middleware';\n${body}`,
    );
    writeFileSync(
      join(project, 'handoff.cjs'),
      `const { withFargateFallback } = require('@immortal-lambda/middleware');\n${body}`,
    );
    const dist = join(project, 'node_modules', '@immortal-lambda', 'middleware', 'dist');

    // Act
    const outputs = await Promise.all(
      ['handoff.mjs', 'handoff.cjs'].map((file) => run(process.execPath, [file], { cwd: project })),
    );

    // Assess: the receipt names the task, RunTask was sent once; the entries a handler imports
    // load no other file of the package, and import the handoff module by a name that exists.
    for (const { stdout } of outputs) {
      expect(JSON.parse(stdout)).toEqual({
        taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef',
        runTasks: 1,
      });
    }
    for (const entry of ['index.js', 'middy.js', 'index.cjs', 'middy.cjs']) {
      const code = readFileSync(join(dist, entry), 'utf8');
      expect(code, entry).not.toMatch(/^import .* from ['"]\.|require\(['"]\./m);
      // The handoff module is the one file loaded later (by the handoff, and by a batch's look-up).
      const lazy = [
        ...new Set([...code.matchAll(/import\(['"]\.\/([^'"]+)['"]\)/g)].map((match) => match[1])),
      ];
      expect(lazy, entry).toEqual([entry.endsWith('.cjs') ? 'handoff.cjs' : 'handoff.js']);
      expect(existsSync(join(dist, lazy[0] as string))).toBe(true);
    }
  });

  it('run immortal-runner from its tarball, through a handed-off invocation', async () => {
    // Prepare
    const project = join(scratch, 'project');
    const code = join(scratch, 'function');
    mkdirSync(code);
    writeFileSync(
      join(code, 'index.js'),
      'exports.handler = async (event, context) => { console.log(JSON.stringify({ observed: { event, id: context.awsRequestId } })); return 1; };\n',
    );
    const plane = new LocalControlPlane();
    plane.registerFunction({ name: 'packed', folder: code, handler: 'index.handler' });
    const url = await plane.start();
    const envelope = handedOffEnvelope({
      functionName: 'packed',
      requestId: 'packed-1',
      event: { from: 'tarball' },
    });

    // Act
    const child = spawn(join(project, 'node_modules', '.bin', 'immortal-runner'), [], {
      env: {
        PATH: process.env.PATH,
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'x',
        AWS_SECRET_ACCESS_KEY: 'y',
        AWS_ENDPOINT_URL_LAMBDA: url,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        FARGATE_FALLBACK_ENVELOPE: JSON.stringify(envelope),
        FARGATE_FALLBACK_TASK_ROOT: join(scratch, 'task'),
        FARGATE_FALLBACK_LAYERS_ROOT: join(scratch, 'opt'),
      },
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    const exitCode = await new Promise((resolve) => child.on('exit', resolve));
    await plane.stop();

    // Assess
    expect(exitCode, out).toBe(0);
    expect(out).toContain('{"observed":{"event":{"from":"tarball"},"id":"packed-1"}}');
    expect(out).toMatch(/"outcome":"success"/);
  });
});
