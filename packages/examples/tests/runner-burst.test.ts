import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import { handedOffEnvelope, LocalControlPlane } from '@immortal-lambda/local';
import { DEFAULT_CONTAINER_NAME, ENV } from '@immortal-lambda/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../bench/retried-burst.js';

const RUNNERS = 150;
let folder: string;
let plane: LocalControlPlane;
const lines = new Map<string, string[]>();

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'runner-burst-'));
  writeFileSync(join(folder, 'index.js'), 'exports.handler = async (event) => ({ done: event.i });\n');
  plane = new LocalControlPlane({ random: mulberry32(5) });
  plane.registerFunction({ name: 'quick', folder, handler: 'index.handler' });
  plane.on('task-log', ({ task, line }) => lines.set(task.arn, [...(lines.get(task.arn) ?? []), line]));
  await plane.start();
});

afterAll(async () => {
  await plane.stop();
  rmSync(folder, { recursive: true, force: true });
});

describe('a burst of runners against a Lambda API that throttles', () => {
  it(`gets all ${RUNNERS} runners their code: every one exits 0`, async () => {
    // Prepare: 70 % of all GetFunction calls are answered 429, as Lambda's account rates do; the
    // SDK's own 3 attempts run out for about a third of the runners, which then wait and retry.
    plane.faults = { lambdaThrottle: 0.7 };
    const ecs = new ECSClient({
      endpoint: plane.url,
      region: plane.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const env = plane.environment();

    // Act: the tasks a burst of handoffs starts at once.
    const started = await Promise.all(
      Array.from({ length: RUNNERS }, async (_, i) => {
        const envelope = handedOffEnvelope({
          functionName: 'quick',
          requestId: `runner-burst-${i}`,
          event: { i },
        });
        const answer = await ecs.send(
          new RunTaskCommand({
            cluster: env[ENV.cluster],
            taskDefinition: env[ENV.taskDefinition],
            networkConfiguration: { awsvpcConfiguration: { subnets: [String(env[ENV.subnets])] } },
            overrides: {
              containerOverrides: [
                {
                  name: DEFAULT_CONTAINER_NAME,
                  environment: [
                    { name: ENV.envelope, value: JSON.stringify(envelope) },
                    // 150 runner processes share this machine's cores (each task has its own on
                    // Fargate): a GetFunction answer may take longer than the 20 s call timeout.
                    { name: ENV.awsTimeoutMs, value: '120000' },
                  ],
                },
              ],
            },
          }),
        );
        return String(answer.tasks?.[0]?.taskArn);
      }),
    );
    const stopped = await Promise.all(started.map((arn) => plane.waitForTask(arn, 240_000)));

    // Assess
    const failed = stopped.filter((task) => task.exitCode !== 0);
    expect(
      failed.map((task) => ({ arn: task.arn, exit: task.exitCode, log: lines.get(task.arn)?.slice(-2) })),
    ).toEqual([]);
    const waits = [...lines.values()]
      .flat()
      .filter((line) => line.includes('Throttled by the Lambda API')).length;
    const calls = plane.calls.filter((call) => call === 'Lambda.GetFunction').length;
    console.info(
      `runner burst: ${RUNNERS} runners, ${calls} GetFunction calls, ${waits} throttled waits, all exit 0`,
    );
    expect(waits).toBeGreaterThan(RUNNERS / 10);
  }, 300_000);
});
