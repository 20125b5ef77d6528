import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeTasksCommand,
  ECSClient,
  ListTasksCommand,
  RunTaskCommand,
  type RunTaskCommandInput,
  StopTaskCommand,
} from '@aws-sdk/client-ecs';
import { GetFunctionCommand, GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AuditedCall, roleAccessKey } from '../../src/audit.js';
import { handedOffEnvelope } from '../../src/envelopes.js';
import { LocalPlaneError, RegistrationError } from '../../src/errors.js';
import { NoLauncher, ProcessLauncher } from '../../src/launcher.js';
import { LocalControlPlane } from '../../src/plane.js';
import { RUNNER_CLI } from '../helpers/runner.js';

const echo = join(import.meta.dirname, '..', 'fixtures', 'echo');
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

const envelope = (requestId: string, event: unknown) =>
  JSON.stringify(handedOffEnvelope({ functionName: 'echo', requestId, event }));

const runTaskInput = (value: string, extra: Partial<RunTaskCommandInput> = {}): RunTaskCommandInput => ({
  cluster: 'local',
  taskDefinition: 'immortal-runner',
  launchType: 'FARGATE',
  networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-0000000000000000a'] } },
  overrides: {
    containerOverrides: [{ name: 'runner', environment: [{ name: 'FARGATE_FALLBACK_ENVELOPE', value }] }],
  },
  ...extra,
});

describe('LocalControlPlane', () => {
  let plane: LocalControlPlane;
  let ecs: ECSClient;
  let lambda: LambdaClient;

  const start = async (options: ConstructorParameters<typeof LocalControlPlane>[0] = {}) => {
    plane = new LocalControlPlane({ launcher: new ProcessLauncher({ cli: RUNNER_CLI }), ...options });
    plane.registerFunction({
      name: 'echo',
      folder: echo,
      handler: 'index.handler',
      environment: { GREETING: 'hi' },
    });
    const url = await plane.start();
    ecs = new ECSClient({ endpoint: url, region: 'eu-west-1', credentials, maxAttempts: 1 });
    lambda = new LambdaClient({ endpoint: url, region: 'eu-west-1', credentials, maxAttempts: 1 });
  };

  beforeEach(async () => {
    await start();
  });

  afterEach(async () => {
    await plane.stop();
  });

  it('serves GetFunction with the real CodeSha256 and a download URL', async () => {
    // Act
    const answer = await lambda.send(new GetFunctionCommand({ FunctionName: 'echo', Qualifier: '1' }));
    const zip = Buffer.from(await (await fetch(String(answer.Code?.Location))).arrayBuffer());

    // Assess
    expect(answer.Configuration).toMatchObject({
      FunctionName: 'echo',
      Handler: 'index.handler',
      PackageType: 'Zip',
    });
    expect(answer.Configuration?.Environment?.Variables).toEqual({ GREETING: 'hi' });
    expect(createHash('sha256').update(zip).digest('base64')).toBe(answer.Configuration?.CodeSha256);
  });

  it('answers a range of a download URL as S3 does: 206 with its Content-Range, 416 past the end', async () => {
    // Prepare
    const answer = await lambda.send(new GetFunctionCommand({ FunctionName: 'echo', Qualifier: '1' }));
    const url = String(answer.Code?.Location);
    const zip = Buffer.from(await (await fetch(url)).arrayBuffer());

    // Act
    const tail = await fetch(url, { headers: { range: 'bytes=-100' } });
    const past = await fetch(url, { headers: { range: `bytes=${zip.length}-` } });

    // Assess
    expect(tail.status).toBe(206);
    expect(tail.headers.get('content-range')).toBe(
      `bytes ${zip.length - 100}-${zip.length - 1}/${zip.length}`,
    );
    expect(Buffer.from(await tail.arrayBuffer()).equals(zip.subarray(zip.length - 100))).toBe(true);
    expect(past.status).toBe(416);
    expect(await past.text()).toContain('<Code>InvalidRange</Code>');
  });

  it("serves GetFunctionConfiguration: the version's configuration, recorded under its own action", async () => {
    // Act
    const answer = await lambda.send(
      new GetFunctionConfigurationCommand({ FunctionName: 'echo', Qualifier: '1' }),
    );

    // Assess
    expect(answer).toMatchObject({ FunctionName: 'echo', Version: '1', Handler: 'index.handler' });
    expect(answer.Environment?.Variables).toEqual({ GREETING: 'hi' });
    expect(plane.audit.map((call) => call.action)).toContain('lambda:GetFunctionConfiguration');
    await expect(
      lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'echo', Qualifier: '9' })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('answers ResourceNotFoundException for an unknown function or version', async () => {
    await expect(
      lambda.send(new GetFunctionCommand({ FunctionName: 'echo', Qualifier: '9' })),
    ).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });

  it('lets download URLs expire like presigned ones', async () => {
    // Prepare
    await plane.stop();
    let now = 1_000_000;
    await start({ now: () => now, codeUrlTtlMs: 600_000 });
    const answer = await lambda.send(new GetFunctionCommand({ FunctionName: 'echo' }));

    // Act
    now += 600_001;
    const response = await fetch(String(answer.Code?.Location));

    // Assess
    expect(response.status).toBe(403);
    expect(await response.text()).toContain('Request has expired');
  });

  it("receives the runner's X-Ray segment at its daemon, in the invocation's own trace", async () => {
    // Prepare
    const root = '1-67891233-abcdef012345678912345678';
    const value = JSON.stringify(
      handedOffEnvelope({
        functionName: 'echo',
        requestId: 'req-traced',
        event: {},
        traceHeader: `Root=${root};Parent=53995c3f42cd8ad8;Sampled=1`,
      }),
    );

    // Act
    const started = await ecs.send(new RunTaskCommand(runTaskInput(value, { clientToken: 'req-traced' })));
    const arn = String(started.tasks?.[0]?.taskArn);
    await plane.waitForTask(arn);
    for (let waited = 0; plane.segments.length === 0 && waited < 2_000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    // Assess
    expect(plane.segments).toHaveLength(1);
    expect(plane.segments[0]).toMatchObject({
      name: 'echo',
      trace_id: root,
      parent_id: '53995c3f42cd8ad8',
      origin: 'AWS::ECS::Container',
      annotations: { request_id: 'req-traced', outcome: 'success', runtime: 'fargate' },
      aws: { ecs: { task_arn: arn } },
    });
    const segment = plane.segments[0] as { id: string; start_time: number; end_time: number };
    expect(segment.id).toMatch(/^[0-9a-f]{16}$/);
    expect(segment.end_time).toBeGreaterThan(segment.start_time);
  });

  it('receives no segment for an invocation whose trace was not sampled', async () => {
    // Act
    const value = JSON.stringify(
      handedOffEnvelope({
        functionName: 'echo',
        requestId: 'req-unsampled',
        event: {},
        traceHeader: 'Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=0',
      }),
    );
    const started = await ecs.send(new RunTaskCommand(runTaskInput(value, { clientToken: 'req-unsampled' })));
    await plane.waitForTask(String(started.tasks?.[0]?.taskArn));
    await new Promise((resolve) => setTimeout(resolve, 100));

    // Assess
    expect(plane.segments).toEqual([]);
  });

  it('runs the runner for RunTask and takes the task from PROVISIONING to STOPPED with its exit code', async () => {
    // Act
    const started = await ecs.send(
      new RunTaskCommand(runTaskInput(envelope('req-ok', { n: 1 }), { clientToken: 'req-ok' })),
    );
    const arn = String(started.tasks?.[0]?.taskArn);
    const logs: string[] = [];
    plane.on('task-log', ({ line }: { line: string }) => logs.push(line));
    await plane.waitForTask(arn);
    const described = await ecs.send(new DescribeTasksCommand({ cluster: 'local', tasks: [arn] }));

    // Assess
    expect(started.tasks?.[0]?.lastStatus).toBe('PROVISIONING');
    expect(described.tasks?.[0]).toMatchObject({
      lastStatus: 'STOPPED',
      stopCode: 'EssentialContainerExited',
      containers: [{ name: 'runner', exitCode: 0 }],
    });
    expect(
      logs.some((line) => line.includes('"greeting":"hi"') && line.includes('"requestId":"req-ok"')),
    ).toBe(true);
  });

  it('stops a task whose runner cannot be found with TaskFailedToStart and the reason', async () => {
    // Prepare
    await plane.stop();
    await start({ launcher: new ProcessLauncher({ cli: '/nowhere/cli.js' }) });

    // Act
    const started = await ecs.send(new RunTaskCommand(runTaskInput(envelope('req-nostart', {}))));
    const stopped = await plane.waitForTask(String(started.tasks?.[0]?.taskArn));

    // Assess
    expect(stopped).toMatchObject({
      lastStatus: 'STOPPED',
      stopCode: 'TaskFailedToStart',
      stoppedReason: expect.stringContaining('/nowhere/cli.js does not exist'),
      exitCode: undefined,
    });
  });

  it('explains how to provide the runner when it is not installed, and finds an installed one', () => {
    // Prepare: a process without the NODE_PATH that package managers' shims set.
    const { NODE_PATH: _path, ...env } = process.env;
    const probe = (folder: string) =>
      spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { runnerCli } from ${JSON.stringify(join(import.meta.dirname, '..', '..', 'dist', 'index.js'))};
           try { console.log(runnerCli([${JSON.stringify(folder)}])); } catch (e) { console.log(e.name + ': ' + e.message); }`,
        ],
        { env, encoding: 'utf8' },
      ).stdout;

    // Act
    const missing = probe(tmpdir());
    const installed = probe(join(import.meta.dirname, '..', '..'));

    // Assess
    expect(missing).toMatch(
      /^LocalPlaneError: .*npm install --save-dev @immortal-lambda\/runner.*new ProcessLauncher\(\{ cli \}\)/,
    );
    expect(installed).toMatch(/runner[/\\]dist[/\\]cli\.js$/m);
  });

  it('shows a handler error as the container exit code and names the request in the record', async () => {
    // Act
    const started = await ecs.send(new RunTaskCommand(runTaskInput(envelope('req-fail', { fail: true }))));
    const arn = String(started.tasks?.[0]?.taskArn);
    const logs: string[] = [];
    plane.on('task-log', ({ line }: { line: string }) => logs.push(line));
    await plane.waitForTask(arn);
    const described = await ecs.send(new DescribeTasksCommand({ cluster: 'local', tasks: [arn] }));

    // Assess
    expect(described.tasks?.[0]?.containers?.[0]?.exitCode).toBe(1);
    const record = logs.map((line) => JSON.parse(line)).find((r) => r.message === 'immortal-runner finished');
    expect(record).toMatchObject({ outcome: 'handler-error', requestId: 'req-fail' });
  });

  it('returns the first task for the same client token and parameters, and ConflictException for other parameters', async () => {
    // Prepare
    await plane.stop();
    await start({ launcher: new NoLauncher() });
    const input = runTaskInput(envelope('req-1', {}), { clientToken: 'req-1' });

    // Act
    const first = await ecs.send(new RunTaskCommand(input));
    const again = await ecs.send(new RunTaskCommand(input));
    const conflict = ecs.send(
      new RunTaskCommand({ ...runTaskInput(envelope('req-1', { other: true })), clientToken: 'req-1' }),
    );

    // Assess
    expect(again.tasks?.[0]?.taskArn).toBe(first.tasks?.[0]?.taskArn);
    await expect(conflict).rejects.toMatchObject({
      name: 'ConflictException',
      resourceIds: [first.tasks?.[0]?.taskArn],
    });
    expect(plane.tasks()).toHaveLength(1);
  });

  it('refuses overrides over 8192 characters, and tasks without awsvpc subnets', async () => {
    // Act
    // Both in flight at once: either may be answered first, so both are awaited together.
    const [tooLarge, noSubnets] = await Promise.allSettled([
      ecs.send(new RunTaskCommand(runTaskInput('x'.repeat(8_200)))),
      ecs.send(new RunTaskCommand({ ...runTaskInput('{}'), networkConfiguration: {} })),
    ]);

    // Assess
    expect(tooLarge).toMatchObject({
      status: 'rejected',
      reason: { name: 'InvalidParameterException', message: expect.stringMatching(/8192/) },
    });
    expect(noSubnets).toMatchObject({ status: 'rejected', reason: { name: 'InvalidParameterException' } });
    expect(plane.tasks()).toHaveLength(0);
  });

  it('refuses clusters and subnets that do not exist, as ECS does, and takes the ones registered', async () => {
    // Act
    const otherCluster = ecs.send(new RunTaskCommand(runTaskInput('{}', { cluster: 'jobs' })));
    const listOther = ecs.send(new ListTasksCommand({ cluster: 'jobs', startedBy: 'immortal-lambda/r' }));
    const otherSubnet = ecs.send(
      new RunTaskCommand(
        runTaskInput('{}', {
          networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-0bbbbbbbbbbbbbbb2'] } },
        }),
      ),
    );
    const refusals = await Promise.allSettled([otherCluster, listOther, otherSubnet]);
    plane.registerNetwork({ cluster: 'jobs', subnets: ['subnet-0bbbbbbbbbbbbbbb2'] });
    const registered = await ecs.send(
      new RunTaskCommand(
        runTaskInput('{}', {
          cluster: 'jobs',
          networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-0bbbbbbbbbbbbbbb2'] } },
        }),
      ),
    );

    // Assess
    expect(refusals.map((refusal) => refusal.status)).toEqual(['rejected', 'rejected', 'rejected']);
    const reasons = refusals.map((refusal) => (refusal as PromiseRejectedResult).reason as Error);
    expect(reasons[0]).toMatchObject({ name: 'ClusterNotFoundException' });
    expect(reasons[1]).toMatchObject({ name: 'ClusterNotFoundException' });
    expect(reasons[2]).toMatchObject({
      name: 'InvalidParameterException',
      message: expect.stringMatching(/subnet ID 'subnet-0bbbbbbbbbbbbbbb2' does not exist/),
    });
    expect(registered.tasks?.[0]?.clusterArn).toMatch(/:cluster\/jobs$/);
  });

  it('runs a task with the size its overrides give, and refuses a size Fargate does not run', async () => {
    // Act
    const larger = await ecs.send(
      new RunTaskCommand(
        runTaskInput('{}', {
          overrides: {
            cpu: '2048',
            memory: '8192',
            containerOverrides: [
              { name: 'runner', environment: [{ name: 'FARGATE_FALLBACK_ENVELOPE', value: '{}' }] },
            ],
          },
        }),
      ),
    );
    const refused = ecs.send(
      new RunTaskCommand(
        runTaskInput('{}', { overrides: { cpu: '256', memory: '8192', containerOverrides: [] } }),
      ),
    );

    // Assess
    expect(larger.tasks?.[0]).toMatchObject({
      cpu: '2048',
      memory: '8192',
      overrides: { cpu: '2048', memory: '8192' },
    });
    await expect(refused).rejects.toMatchObject({
      name: 'ClientException',
      message: expect.stringMatching(
        /No Fargate configuration exists for given values: 256 CPU, 8192 memory/,
      ),
    });
  });

  it.each([
    ['a key over 128 characters', { key: 'k'.repeat(129), value: 'v' }, /too long/],
    ['a value over 256 characters', { key: 'k', value: 'v'.repeat(257) }, /too long/],
    ['the reserved aws: prefix', { key: 'AWS:owner', value: 'me' }, /reserved for AWS use/],
  ])('refuses a tag with %s, as ECS does', async (_what, tag, message) => {
    // Act
    const starting = ecs.send(new RunTaskCommand(runTaskInput('{}', { tags: [tag] })));

    // Assess
    await expect(starting).rejects.toMatchObject({
      name: 'InvalidParameterException',
      message: expect.stringMatching(message),
    });
  });

  it('refuses a request for any host name but its own, as a page using DNS rebinding would send', async () => {
    // Prepare
    const { port } = new URL(plane.url);

    // Act
    const get = (host: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const sent = request(
          { host: '127.0.0.1', port: Number(port), path: '/2015-03-31/functions/echo', headers: { host } },
          (answer) => {
            let body = '';
            answer.on('data', (chunk) => {
              body += chunk;
            });
            answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body }));
          },
        );
        sent.on('error', reject);
        sent.end();
      });
    const rebound = await get(`attacker.example:${port}`);
    const own = await get(`localhost:${port}`);

    // Assess
    expect(rebound.status).toBe(403);
    expect(rebound.body).toMatch(/answers only its own host names .* not attacker\.example/);
    expect(own.status).toBe(200);
  });

  it('refuses overrides that set NODE_OPTIONS or other process-level variables, unless the task definition allows them', async () => {
    // Prepare
    const input = runTaskInput('{}', {
      overrides: {
        containerOverrides: [
          {
            name: 'runner',
            environment: [
              { name: 'FARGATE_FALLBACK_ENVELOPE', value: '{}' },
              { name: 'NODE_OPTIONS', value: '--import=data:text/javascript,process.exit(9)' },
            ],
          },
        ],
      },
    });

    // Act
    const refused = ecs.send(new RunTaskCommand(input));
    await expect(refused).rejects.toMatchObject({
      name: 'InvalidParameterException',
      message: expect.stringMatching(/does not take NODE_OPTIONS in RunTask's overrides/),
    });
    plane.registerTaskDefinition({
      family: 'trusted',
      containerName: 'runner',
      environment: {},
      allowProcessOverrides: true,
    });
    const allowed = await ecs.send(new RunTaskCommand({ ...input, taskDefinition: 'trusted' }));

    // Assess
    expect(plane.tasks().filter((task) => task.family === 'immortal-runner')).toHaveLength(0);
    expect(allowed.tasks).toHaveLength(1);
  });

  it("gives a task its task role's credentials when it authorizes calls, and decides its calls as that role's", async () => {
    // Prepare: the test signs as S3RVER; the task role may read the function, nobody else may.
    await plane.stop();
    const taskRoleArn = 'arn:aws:iam::123456789012:role/runner-task';
    const calls: AuditedCall[] = [];
    await start({
      authorize: (call) => {
        calls.push(call);
        if (call.action === 'lambda:GetFunction') return call.accessKeyId === roleAccessKey(taskRoleArn);
        return call.accessKeyId === 'S3RVER';
      },
    });
    plane.registerTaskDefinition({
      family: 'with-role',
      containerName: 'runner',
      environment: {},
      taskRoleArn,
    });

    // Act
    const started = await ecs.send(
      new RunTaskCommand(
        runTaskInput(envelope('a0000000-0000-4000-8000-00000000000a', { name: 'role' }), {
          taskDefinition: 'with-role',
        }),
      ),
    );
    const stopped = await plane.waitForTask(String(started.tasks?.[0]?.taskArn), 30_000);
    const denied = lambda.send(new GetFunctionCommand({ FunctionName: 'echo' }));

    // Assess
    expect(stopped.exitCode).toBe(0);
    expect(calls.find((call) => call.action === 'lambda:GetFunction')?.accessKeyId).toBe(
      roleAccessKey(taskRoleArn),
    );
    await expect(denied).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });

  it('throttles and reports capacity failures when asked to', async () => {
    // Prepare
    plane.faults = { throttle: 1 };

    // Act
    const throttled = ecs.send(new RunTaskCommand(runTaskInput('{}')));
    await expect(throttled).rejects.toMatchObject({ name: 'ThrottlingException' });
    plane.faults = { capacity: 1 };
    const short = await ecs.send(new RunTaskCommand(runTaskInput('{}')));

    // Assess
    expect(short.tasks).toEqual([]);
    expect(short.failures?.[0]?.reason).toMatch(/Capacity is unavailable/);
    expect(plane.tasks()).toHaveLength(0);
  });

  it('throttles exactly the next N RunTask calls, and answers a given failure reason', async () => {
    // Prepare
    plane.faults = { throttleNext: 2 };

    // Act
    const first = ecs.send(new RunTaskCommand(runTaskInput('{}')));
    await expect(first).rejects.toMatchObject({ name: 'ThrottlingException' });
    await expect(ecs.send(new RunTaskCommand(runTaskInput('{}')))).rejects.toMatchObject({
      name: 'ThrottlingException',
    });
    const third = await ecs.send(new RunTaskCommand(runTaskInput('{}')));
    plane.faults = { failureReason: 'MISSING' };
    const missing = await ecs.send(new RunTaskCommand(runTaskInput('{}')));

    // Assess
    expect(third.tasks).toHaveLength(1);
    expect(missing).toMatchObject({ tasks: [], failures: [{ reason: 'MISSING' }] });
  });

  it.each([
    ['expired', 403, /Request has expired/],
    ['denied', 403, /Access Denied/],
    ['server-error-once', 500, /InternalError/],
  ] as const)('breaks code downloads when asked to: %s', async (fault, status, body) => {
    // Prepare
    plane.faults = { download: fault };
    const answer = await lambda.send(new GetFunctionCommand({ FunctionName: 'echo' }));

    // Act
    const response = await fetch(String(answer.Code?.Location));

    // Assess
    expect(response.status).toBe(status);
    expect(await response.text()).toMatch(body);
  });

  it('cuts a download short once, then serves it whole', async () => {
    // Prepare
    plane.faults = { download: 'truncate-once' };
    const answer = await lambda.send(new GetFunctionCommand({ FunctionName: 'echo' }));
    const url = String(answer.Code?.Location);

    // Act
    const cut = fetch(url).then((response) => response.arrayBuffer());
    await expect(cut).rejects.toThrow();
    const whole = Buffer.from(await (await fetch(url)).arrayBuffer());

    // Assess
    expect(createHash('sha256').update(whole).digest('base64')).toBe(answer.Configuration?.CodeSha256);
  });

  it('stops a task with StopTask and lists tasks by startedBy, and stopped ones by family and status', async () => {
    // Prepare
    await plane.stop();
    await start({ launcher: new NoLauncher() });
    const started = await ecs.send(
      new RunTaskCommand(runTaskInput('{}', { startedBy: 'immortal-lambda/req-9' })),
    );
    const arn = String(started.tasks?.[0]?.taskArn);
    await new Promise((resolve) => setTimeout(resolve, 100));

    // Act
    const running = await ecs.send(
      new ListTasksCommand({ cluster: 'local', startedBy: 'immortal-lambda/req-9' }),
    );
    await ecs.send(new StopTaskCommand({ cluster: 'local', task: arn, reason: 'finished in Lambda' }));
    await plane.waitForTask(arn);
    const stillRunning = await ecs.send(
      new ListTasksCommand({ cluster: 'local', startedBy: 'immortal-lambda/req-9' }),
    );
    const stopped = await ecs.send(
      new ListTasksCommand({ cluster: 'local', family: 'immortal-runner', desiredStatus: 'STOPPED' }),
    );
    const described = await ecs.send(new DescribeTasksCommand({ cluster: 'local', tasks: [arn, 'nope'] }));

    // Assess
    expect(running.taskArns).toEqual([arn]);
    expect(stillRunning.taskArns).toEqual([]);
    expect(stopped.taskArns).toEqual([arn]);
    expect(described.tasks?.[0]).toMatchObject({
      lastStatus: 'STOPPED',
      stopCode: 'UserInitiated',
      stoppedReason: 'finished in Lambda',
    });
    expect(described.failures).toEqual([{ arn: 'nope', reason: 'MISSING' }]);
  });
  it.each([
    ['desiredStatus', { desiredStatus: 'STOPPED' }],
    ['family', { family: 'immortal-runner' }],
    ['launchType', { launchType: 'FARGATE' }],
  ] as const)('refuses ListTasks by startedBy with %s, as ECS does', async (name, filter) => {
    // Act
    const listed = ecs.send(
      new ListTasksCommand({ cluster: 'local', startedBy: 'immortal-lambda/r', ...filter }),
    );

    // Assess
    await expect(listed).rejects.toMatchObject({
      name: 'InvalidParameterException',
      message: expect.stringContaining(
        `When you specify startedBy as the filter, it must be the only filter that you use (also given: ${name})`,
      ),
    });
  });
});

describe('LocalControlPlane set-up errors', () => {
  it('names a missing function folder', () => {
    const plane = new LocalControlPlane();
    expect(() =>
      plane.registerFunction({ name: 'x', folder: '/nowhere/at/all', handler: 'index.handler' }),
    ).toThrow(RegistrationError);
    expect(() =>
      plane.registerFunction({ name: 'x', folder: '/nowhere/at/all', handler: 'index.handler' }),
    ).toThrow(/\/nowhere\/at\/all does not exist/);
  });

  it('names a handler path that does not exist', () => {
    const plane = new LocalControlPlane();
    expect(() => plane.registerFunction({ name: 'x', folder: echo, handler: 'src/main.handler' })).toThrow(
      /names no file in .*src\/main\.js/,
    );
  });

  it('explains a port in use', async () => {
    // Prepare
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;

    // Act
    const starting = new LocalControlPlane().start({ port });

    // Assess
    await expect(starting).rejects.toBeInstanceOf(LocalPlaneError);
    await expect(new LocalControlPlane().start({ port })).rejects.toThrow(
      new RegExp(`port ${port} on 127.0.0.1 is in use`),
    );
    blocker.close();
  });
});

describe('LocalControlPlane with a container image function', () => {
  const fakePodman = join(import.meta.dirname, '..', 'fixtures', 'fake-podman.mjs');
  let plane: LocalControlPlane;
  let scratch: string;
  let calls: () => string[][];

  /** A plane with the transcode image function and its task definition, run by `containerEngine`. */
  const startWith = async (containerEngine: string) => {
    plane = new LocalControlPlane({ launcher: new NoLauncher(), containerEngine });
    plane.registerFunction({
      name: 'transcode',
      image: 'localhost/transcode:1',
      imageConfig: { command: ['index.handler'], workingDirectory: '/var/task' },
      architecture: 'arm64',
      environment: { PRESET: 'hd' },
    });
    plane.registerTaskDefinition({
      family: 'transcode-runner',
      containerName: 'runner',
      environment: {},
      image: { function: 'localhost/transcode:1', runner: 'immortal-runner:local' },
    });
    await plane.start();
  };

  beforeEach(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'image-plane-'));
    process.env.FAKE_PODMAN_LOG = join(scratch, 'calls.jsonl');
    calls = () =>
      readFileSync(String(process.env.FAKE_PODMAN_LOG), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as string[]);
    await startWith(fakePodman);
  });

  afterEach(async () => {
    await plane.stop();
    delete process.env.FAKE_PODMAN_RUN;
    rmSync(scratch, { recursive: true, force: true });
  });

  const runImageTask = async () => {
    const ecs = new ECSClient({ endpoint: plane.url, region: 'eu-west-1', credentials, maxAttempts: 1 });
    const started = await ecs.send(
      new RunTaskCommand(runTaskInput(envelope('req-image', {}), { taskDefinition: 'transcode-runner' })),
    );
    return plane.waitForTask(String(started.tasks?.[0]?.taskArn), 30_000);
  };

  it('answers GetFunction as Lambda does for an image: image URIs and ImageConfig, no code location, runtime or handler', async () => {
    // Prepare
    const lambda = new LambdaClient({
      endpoint: plane.url,
      region: 'eu-west-1',
      credentials,
      maxAttempts: 1,
    });

    // Act
    const answer = await lambda.send(new GetFunctionCommand({ FunctionName: 'transcode', Qualifier: '1' }));

    // Assess
    expect(answer.Configuration).toMatchObject({
      PackageType: 'Image',
      Architectures: ['arm64'],
      ImageConfigResponse: { ImageConfig: { Command: ['index.handler'], WorkingDirectory: '/var/task' } },
      Environment: { Variables: { PRESET: 'hd' } },
    });
    expect(answer.Configuration?.Runtime).toBeUndefined();
    expect(answer.Configuration?.Handler).toBeUndefined();
    expect(answer.Code).toMatchObject({ RepositoryType: 'ECR' });
    expect(answer.Code?.ImageUri).toMatch(/\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/transcode:1$/);
    expect(answer.Code?.ResolvedImageUri).toMatch(/\/transcode@sha256:[0-9a-f]{64}$/);
    expect(answer.Code?.Location).toBeUndefined();
  });

  it("runs the task as the construct's task definition does: the runner copied into a shared volume, then the function's image with the runner as its entry point", async () => {
    // Act
    const stopped = await runImageTask();

    // Assess
    expect(stopped).toMatchObject({ lastStatus: 'STOPPED', exitCode: 0 });
    const [create, install, run, remove] = calls();
    const volume = String(create?.[2]);
    expect(create).toEqual(['volume', 'create', expect.stringMatching(/^immortal-runner-/)]);
    expect(install).toEqual([
      'run',
      '--rm',
      '--user',
      '0',
      '-v',
      `${volume}:/immortal-runner`,
      '--entrypoint',
      'cp',
      'immortal-runner:local',
      '-R',
      '/usr/local/lib/immortal-runner/.',
      '/immortal-runner/',
    ]);
    expect(run?.slice(0, 10)).toEqual([
      'run',
      '--rm',
      '--name',
      expect.stringMatching(/^immortal-task-/),
      '--network',
      'host',
      '-v',
      `${volume}:/immortal-runner:ro`,
      '--entrypoint',
      'node',
    ]);
    expect(run?.slice(-2)).toEqual(['localhost/transcode:1', '/immortal-runner/dist/cli.js']);
    expect(
      run?.some(
        (arg) => arg.startsWith('FARGATE_FALLBACK_ENVELOPE=') && arg.includes('"awsRequestId":"req-image"'),
      ),
    ).toBe(true);
    // The image keeps its own PATH: the host's is not passed in.
    expect(run?.some((arg) => arg.startsWith('PATH='))).toBe(false);
    expect(remove).toEqual(['volume', 'rm', '--force', volume]);
  });

  it('stops a task whose image has no node as ECS does: TaskFailedToStart, CannotStartContainerError, no exit code', async () => {
    // Prepare
    process.env.FAKE_PODMAN_RUN = 'no-node';

    // Act
    const stopped = await runImageTask();

    // Assess
    expect(stopped).toMatchObject({
      lastStatus: 'STOPPED',
      stopCode: 'TaskFailedToStart',
      exitCode: undefined,
      stoppedReason: expect.stringMatching(/^CannotStartContainerError: .*"node": executable file not found/),
      containerReason: expect.stringContaining('executable file not found'),
    });
    expect(calls().at(-1)?.slice(0, 2)).toEqual(['volume', 'rm']);
  });

  it("kills an image task's container itself for its memory, not only the podman client: exit 137, OutOfMemoryError", async () => {
    // Prepare
    process.env.FAKE_PODMAN_RUN = 'hang';
    const ecs = new ECSClient({ endpoint: plane.url, region: 'eu-west-1', credentials, maxAttempts: 1 });
    const started = await ecs.send(
      new RunTaskCommand(runTaskInput(envelope('req-oom', {}), { taskDefinition: 'transcode-runner' })),
    );
    const arn = String(started.tasks?.[0]?.taskArn);
    await new Promise<void>((resolve) => {
      plane.on('task-log', ({ line }: { line: string }) => {
        if (line.includes('the runner is working')) resolve();
      });
    });

    // Act
    plane.killTaskForMemory(arn);
    const stopped = await plane.waitForTask(arn, 30_000);

    // Assess
    expect(stopped).toMatchObject({
      exitCode: 137,
      containerReason: expect.stringContaining('OutOfMemoryError'),
    });
    const run = calls().find((call) => call[0] === 'run' && call.includes('node'));
    const name = run?.[run.indexOf('--name') + 1];
    expect(calls()).toContainEqual(['kill', '--signal', 'KILL', name]);
  });

  it('says to install podman when there is none to run an image task with', async () => {
    // Prepare
    await plane.stop();
    await startWith('/nowhere/podman');

    // Act
    const stopped = await runImageTask();

    // Assess
    expect(stopped).toMatchObject({
      stopCode: 'TaskFailedToStart',
      stoppedReason: expect.stringMatching(/could not create the task's volume .*ENOENT.*install it/),
    });
  });

  it('refuses an image function given code, or layers', () => {
    expect(() => plane.registerFunction({ name: 'both', image: 'localhost/x:1', folder: echo })).toThrow(
      /an image function's code is its image .*give no folder or zip/,
    );
    expect(() =>
      plane.registerFunction({ name: 'layered', image: 'localhost/x:1', layers: ['arn'] }),
    ).toThrow(/container image functions have no layers/);
  });
});
