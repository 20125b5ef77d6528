import { join } from 'node:path';
import { LocalControlPlane, type LocalS3, NoLauncher, startS3 } from '@immortal-lambda/local';
import type { HandoffReceipt } from '@immortal-lambda/middleware';
import { taskWatchdog, type WatchdogOutcome } from '@immortal-lambda/middleware/safety-net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { invokeLambda } from '../helpers/lambda-leg.js';
import { statusBecomes, watchStoppedTasks } from '../helpers/watch.js';

// container/test.sh builds these: the runner image, the transcode example's image on the same
// local base, and that image without its node.
const runnerImage = process.env.IMMORTAL_RUNNER_IMAGE;
const functionImage = process.env.IMMORTAL_FUNCTION_IMAGE;
const noNodeImage = process.env.IMMORTAL_NO_NODE_IMAGE;
const transcode = join(import.meta.dirname, '..', '..', 'dist', 'transcode');
const BUCKET = 'image-functions';
const TIMEOUT_MS = 3_000;
const MARGIN_MS = 1_500;

let s3: LocalS3;
let plane: LocalControlPlane;
const watched: Promise<WatchdogOutcome>[] = [];
const verdicts: WatchdogOutcome[] = [];

beforeAll(async () => {
  if (!runnerImage || !functionImage || !noNodeImage) {
    throw new Error(
      'IMMORTAL_RUNNER_IMAGE, IMMORTAL_FUNCTION_IMAGE and IMMORTAL_NO_NODE_IMAGE are not set: run packages/runner/container/test.sh, which builds the images first',
    );
  }
  s3 = await startS3({ bucket: BUCKET });
  // No zip function here: every task runs from a task definition that names its image.
  plane = new LocalControlPlane({ s3Endpoint: s3.endpoint, launcher: new NoLauncher() });
  for (const [name, image] of [
    ['transcode', functionImage],
    ['transcode-no-node', noNodeImage],
  ] as const) {
    plane.registerFunction({ name, image, imageConfig: { command: ['index.handler'] } });
    plane.registerTaskDefinition({
      family: `${name}-runner`,
      containerName: 'runner',
      environment: {},
      image: { function: image, runner: runnerImage },
    });
  }
  await plane.start();
  // The test's own reads and the watchdogs in this process find the plane and S3 through the
  // environment (the Lambda harness gives the process its own back after each invocation).
  Object.assign(process.env, {
    ...plane.environment({ s3Endpoint: s3.endpoint, bucket: BUCKET }),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  // As the construct deploys them: each image function's task definition has a watchdog of its own.
  const watchdogs = new Map<string, ReturnType<typeof taskWatchdog>>(
    ['transcode', 'transcode-no-node'].map((name) => {
      const env = plane.environment({
        s3Endpoint: s3.endpoint,
        bucket: BUCKET,
        taskDefinition: `${name}-runner`,
      });
      return [`${name}-runner`, taskWatchdog({ env, backoffMs: 100 })] as const;
    }),
  );
  const byFamily: ReturnType<typeof taskWatchdog> = async (event, context) => {
    const family = /:task-definition\/([^:]+):/.exec(event.detail?.taskDefinitionArn ?? '')?.[1] ?? '';
    const watchdog = watchdogs.get(family);
    if (!watchdog) throw new Error(`no watchdog serves the task definition family ${family}`);
    return watchdog(event, context);
  };
  watchStoppedTasks(plane, byFamily, watched, verdicts);
});

afterAll(async () => {
  await Promise.allSettled(watched);
  await plane?.stop();
  await s3?.stop();
});

afterEach(async () => {
  await Promise.allSettled(watched);
});

/** One invocation of the image function's handler as Lambda runs it, configured for its task definition. */
async function invoke(name: string, event: Record<string, unknown>) {
  const { result, id } = await invokeLambda({
    name,
    folder: transcode,
    event,
    timeoutMs: TIMEOUT_MS,
    environment: {
      ...plane.environment({ s3Endpoint: s3.endpoint, bucket: BUCKET, taskDefinition: `${name}-runner` }),
      FARGATE_FALLBACK_MARGIN_MS: String(MARGIN_MS),
    },
  });
  return { result: result as HandoffReceipt, id };
}

describe('a container image function handed off (podman, the runner brought in beside the image)', () => {
  it("runs its handler from the function's own image with the original event and request id, to a successful outcome", async () => {
    // Prepare
    const lines: string[] = [];
    plane.on('task-log', ({ line }: { line: string }) => lines.push(line));

    // Act: 4 segments of 1 s cannot finish in the 1.5 s before the handoff
    const { result, id } = await invoke('transcode', { clipId: 'c-1', segments: 4, segmentMs: 1_000 });
    const final = await statusBecomes(
      { functionName: 'transcode', requestId: id, bucket: BUCKET },
      ['succeeded', 'failed'],
      90_000,
    );

    // Assess
    expect(result).toMatchObject({ status: 'handed-off', requestId: id });
    expect(final.status).toBe('succeeded');
    expect(final.result).toMatchObject({
      clipId: 'c-1',
      segments: 4,
      finishedOn: 'fargate',
      requestId: id,
      // Loaded from the image's own task root, by the image's own node.
      module: '/var/task/index.js',
    });
    // The segment finished in Lambda was not encoded again.
    expect((final.result as { segmentsEncodedHere: number }).segmentsEncodedHere).toBeLessThan(4);
    const task = plane.tasks().find((t) => t.startedBy === `immortal-lambda/${id}`);
    expect((await plane.waitForTask(String(task?.arn), 30_000)).exitCode).toBe(0);
    expect(lines.some((line) => line.includes("The code is the function's image: nothing to download"))).toBe(
      true,
    );
    expect(lines.some((line) => line.includes('Fetching the function code'))).toBe(false);
  });

  it('fails clearly, with the bad-configuration code and no relaunch, when the image has no node', async () => {
    // Act
    const { result, id } = await invoke('transcode-no-node', {
      clipId: 'c-2',
      segments: 4,
      segmentMs: 1_000,
    });
    const final = await statusBecomes(
      { functionName: 'transcode-no-node', requestId: id, bucket: BUCKET },
      ['succeeded', 'failed'],
      90_000,
    );

    // Assess
    expect(result).toMatchObject({ status: 'handed-off', requestId: id });
    expect(final.status).toBe('failed');
    expect(final.error?.message).toMatch(/has no usable node on its PATH/);
    expect(final.error).toMatchObject({ exitCode: 2 });
    const tasks = plane.tasks().filter((t) => t.startedBy?.startsWith(`immortal-lambda/${id}`));
    expect(tasks).toHaveLength(1);
    expect(tasks[0]?.stopCode).toBe('TaskFailedToStart');
    await Promise.allSettled(watched);
    expect(verdicts.find((v) => v.requestId === id)).toMatchObject({ action: 'result' });
  });
});
