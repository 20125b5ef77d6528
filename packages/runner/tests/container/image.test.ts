import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import { ENV } from '@immortal-lambda/middleware/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handedOffEnvelope } from '../../../local/src/envelopes.js';
import { NoLauncher, PodmanLauncher } from '../../../local/src/launcher.js';
import { LocalControlPlane } from '../../../local/src/plane.js';
import { EXIT_CODES } from '../../src/exit-codes.js';
import { zipFolder } from '../helpers/zip-writer.js';

const image = process.env.IMMORTAL_RUNNER_IMAGE;
const functions = join(import.meta.dirname, '..', 'fixtures', 'functions');
// The local plane serves the Lambda API the containers call.
const lambda = new LocalControlPlane({ launcher: new NoLauncher() });
// The runtime of the functions run here: the Node of the image (container/test.sh builds it on 22).
const IMAGE_RUNTIME = process.env.IMMORTAL_RUNNER_IMAGE_RUNTIME ?? 'nodejs22.x';
let endpoint: string;

beforeAll(async () => {
  if (!image)
    throw new Error('IMMORTAL_RUNNER_IMAGE is not set: run container/test.sh, which builds the image first');
  endpoint = await lambda.start();
});

afterAll(async () => {
  await lambda.stop();
});

/** Runs the image as ECS would: the task definition's and the override's environment, nothing else. */
function runContainer(env: Record<string, string>) {
  return new Promise<{ code: number | null; records: Record<string, unknown>[] }>((resolve) => {
    const args = [
      'run',
      '--rm',
      '--network',
      'host',
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      String(image),
    ];
    const child = spawn('podman', args);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    child.on('exit', (code) =>
      resolve({
        code,
        records: out
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>),
      }),
    );
  });
}

const envelope = (name: string, event: unknown) =>
  handedOffEnvelope({ functionName: name, event, requestId: `container-${Date.now()}` });

const containerEnv = (value: unknown) => ({
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_ENDPOINT_URL_LAMBDA: endpoint,
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  [ENV.envelope]: JSON.stringify(value),
});

describe(`the runner image (${image})`, () => {
  it('runs as a non-root user with immortal-runner as its entrypoint', async () => {
    // Act
    const { stdout } = await promisify(execFile)('podman', [
      'image',
      'inspect',
      String(image),
      '--format',
      '{{.Config.User}} {{.Config.Entrypoint}}',
    ]);

    // Assess
    expect(stdout.trim()).toBe('1000:1000 [immortal-runner]');
  });

  it('runs one complete handoff: envelope in its environment, code fetched from a loopback endpoint, handler run', async () => {
    // Prepare
    lambda.registerFunction({
      name: 'report',
      version: '1',
      zip: zipFolder(join(functions, 'cjs')),
      handler: 'index.handler',
      runtime: IMAGE_RUNTIME,
      environment: { GREETING: 'from the function configuration' },
    });
    const handedOff = envelope('report', { reportId: 'in-a-container' });

    // Act
    const result = await runContainer(containerEnv(handedOff));

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    const observed = result.records.find((r) => r.observed)?.observed;
    expect(observed).toMatchObject({
      echo: { reportId: 'in-a-container' },
      greetingAtLoad: 'from the function configuration',
      requestId: handedOff.invocation.awsRequestId,
      taskRoot: '/var/task',
      runner: '1',
    });
    // The image's build wrote the Lambda client's compiled code with the image's own Node.
    const resuming = result.records.find((r) => r.message === 'Resuming a handed-off invocation');
    expect(resuming?.sdkCodeCache).toBe('used');
    expect(result.records.at(-1)).toMatchObject({
      message: 'immortal-runner finished',
      outcome: 'success',
      exitCode: 0,
    });
  });

  it('exits with the handler-error code when the handler throws', async () => {
    // Prepare
    lambda.registerFunction({
      name: 'failing',
      version: '1',
      zip: zipFolder(join(functions, 'throws')),
      handler: 'index.handler',
      runtime: IMAGE_RUNTIME,
    });

    // Act
    const result = await runContainer(containerEnv(envelope('failing', { reportId: 'r-1' })));

    // Assess
    expect(result.code).toBe(EXIT_CODES.handlerError);
    expect(result.records.at(-1)).toMatchObject({
      outcome: 'handler-error',
      error: { message: 'report r-1 has no pages' },
    });
  });

  it('runs a task of the local control plane through the image (PodmanLauncher)', async () => {
    // Prepare
    const plane = new LocalControlPlane({ launcher: new PodmanLauncher(String(image)) });
    plane.registerFunction({
      name: 'report',
      folder: join(functions, 'cjs'),
      handler: 'index.handler',
      runtime: IMAGE_RUNTIME,
    });
    const url = await plane.start();
    const ecs = new ECSClient({
      endpoint: url,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    });
    const lines: string[] = [];
    plane.on('task-log', ({ line }: { line: string }) => lines.push(line));
    const handedOff = envelope('report', { via: 'podman' });

    // Act
    const started = await ecs.send(
      new RunTaskCommand({
        cluster: 'local',
        taskDefinition: 'immortal-runner',
        launchType: 'FARGATE',
        networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-0000000000000000a'] } },
        overrides: {
          containerOverrides: [
            { name: 'runner', environment: [{ name: ENV.envelope, value: JSON.stringify(handedOff) }] },
          ],
        },
      }),
    );
    const task = await plane.waitForTask(String(started.tasks?.[0]?.taskArn), 60_000);
    await plane.stop();

    // Assess
    expect(task.exitCode).toBe(0);
    expect(
      lines.some(
        (line) => line.includes('"via":"podman"') && line.includes(handedOff.invocation.awsRequestId),
      ),
    ).toBe(true);
  });
});
