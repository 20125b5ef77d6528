import { join } from 'node:path';
import { LocalControlPlane, type LocalS3, startS3 } from '@immortal-lambda/local';
import type { HandoffReceipt } from '@immortal-lambda/middleware';
import { taskWatchdog, type WatchdogOutcome } from '@immortal-lambda/middleware/safety-net';
import { getInvocationStatus } from '@immortal-lambda/middleware/status';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { invokeLambda } from './helpers/lambda-leg.js';
import { statusBecomes, watchStoppedTasks } from './helpers/watch.js';

const report = join(import.meta.dirname, '..', 'dist', 'report');
// The handoff comes 1.5 s in, as Lambda's 3 s timeout less a 1.5 s margin would make it; the
// longer timeout gives the handoff 2 s before its guard, room for a first SDK load on a busy machine.
const TIMEOUT_MS = 4_000;
const MARGIN_MS = 2_500;
// The standby task starts 100 ms into the invocation, 1.4 s before the handoff.
const PREWARM_MS = 1_400;
const BUCKET = 'prewarm';

let s3: LocalS3;
let plane: LocalControlPlane;
let env: Record<string, string>;
const watched: Promise<WatchdogOutcome>[] = [];
const verdicts: WatchdogOutcome[] = [];

beforeAll(async () => {
  s3 = await startS3({ bucket: BUCKET });
  // Half a second in PROVISIONING, as a (much slower) Fargate start would spend.
  plane = new LocalControlPlane({ s3Endpoint: s3.endpoint, provisioningMs: 500 });
  plane.registerFunction({ name: 'report-job', folder: report, handler: 'index.handler' });
  await plane.start();
  env = {
    ...plane.environment({ s3Endpoint: s3.endpoint, bucket: s3.bucket }),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  Object.assign(process.env, env);
  const watchdog = taskWatchdog({ env, backoffMs: 100 });
  watchStoppedTasks(plane, watchdog, watched, verdicts);
});

afterAll(async () => {
  await Promise.allSettled(watched);
  await plane.stop();
  await s3.stop();
});

beforeEach(() => {
  plane.resetRecords();
  watched.length = 0;
  verdicts.length = 0;
});

afterEach(async () => {
  const running = plane.tasks().filter((task) => task.lastStatus !== 'STOPPED');
  await Promise.all(running.map((task) => plane.waitForTask(task.arn, 60_000)));
  await Promise.allSettled(watched);
});

async function invoke(event: Record<string, unknown>, prewarmMs = PREWARM_MS) {
  const { result, id, elapsedMs } = await invokeLambda({
    name: 'report-job',
    folder: report,
    event,
    timeoutMs: TIMEOUT_MS,
    environment: {
      ...env,
      FARGATE_FALLBACK_MARGIN_MS: String(MARGIN_MS),
      FARGATE_FALLBACK_PREWARM_MS: String(prewarmMs),
    },
  });
  return { result: result as HandoffReceipt | Record<string, unknown>, id, elapsedMs };
}

const status = (requestId: string) =>
  getInvocationStatus({ functionName: 'report-job', requestId }, { bucket: BUCKET });

const tasksOf = (requestId: string) =>
  plane.tasks().filter((task) => task.startedBy?.startsWith(`immortal-lambda/${requestId}`));

describe('a pre-warmed handoff', () => {
  it('calls the handler in the runner soon after the handoff: the task was ready and waiting', async () => {
    // Act
    const { result, id } = await invoke({ reportId: 'warm', steps: 4, stepMs: 1_000 });
    const final = await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, [
      'succeeded',
      'failed',
    ]);

    // Assess
    expect(result).toMatchObject({ status: 'handed-off', requestId: id });
    expect(final.status).toBe('succeeded');
    expect(final.timeline?.resumedAt).toBeGreaterThan(
      final.timeline?.codeReadyAt ?? Number.POSITIVE_INFINITY,
    );
    // Its code was ready before it was told to go (above); the dead time is a few 200 ms polls,
    // given room here for a machine running every package's tests at once.
    expect(final.timeline?.deadTimeMs).toBeLessThanOrEqual(3_000);
    const tasks = tasksOf(id);
    expect(tasks.map((task) => task.startedBy)).toEqual([`immortal-lambda/${id}/standby`]);
    expect(final.result).toMatchObject({ reportId: 'warm', finishedOn: 'fargate' });
  });

  it('leaves no running task and one not-needed record when the handler finishes in Lambda after the standby started', async () => {
    // Act: the job takes 1 s; the standby task starts at 0.1 s, the handoff would be at 1.5 s
    const { result, id } = await invoke({ reportId: 'quick', steps: 1, stepMs: 1_000 });
    const [task] = tasksOf(id);
    const stopped = task ? await plane.waitForTask(task.arn, 30_000) : undefined;
    const final = await status(id);

    // Assess
    expect(result).toMatchObject({ reportId: 'quick', finishedOn: 'lambda' });
    expect(tasksOf(id)).toHaveLength(1);
    expect(stopped?.lastStatus).toBe('STOPPED');
    expect(plane.tasks().filter((t) => t.lastStatus !== 'STOPPED')).toHaveLength(0);
    expect(final).toMatchObject({ status: 'not-needed', attempts: 1 });
  });

  it('still hands off, with a task of its own, when the standby task failed to start', async () => {
    // Prepare
    plane.faults = { failToStart: 1 };

    // Act
    const { result, id } = await invoke({ reportId: 'fallback', steps: 3, stepMs: 1_000 });
    const final = await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, [
      'succeeded',
      'failed',
    ]);

    // Assess
    expect(final.status).toBe('succeeded');
    const tasks = tasksOf(id);
    expect(tasks.map((task) => task.startedBy).sort()).toEqual([
      `immortal-lambda/${id}`,
      `immortal-lambda/${id}/standby`,
    ]);
    expect((result as HandoffReceipt).taskArn).toBe(
      tasks.find((t) => t.startedBy === `immortal-lambda/${id}`)?.arn,
    );
    await Promise.allSettled(watched);
    expect(verdicts.find((v) => v.action === 'ignored')?.reason).toContain(
      'stopped before it was told to go',
    );
  });
});

describe('routeToFargate', () => {
  it('hands an "export all" off at once: no work in Lambda, the same receipt and status', async () => {
    // Act
    const { result, id, elapsedMs } = await invoke(
      { reportId: 'all', steps: 2, stepMs: 500, exportAll: true },
      0,
    );
    const final = await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, [
      'succeeded',
      'failed',
    ]);

    // Assess
    expect(result).toMatchObject({ status: 'handed-off', requestId: id });
    expect(elapsedMs).toBeLessThan(1_000);
    expect(final).toMatchObject({ status: 'succeeded', steps: { inLambda: 0, total: 2 } });
    expect(final.result).toMatchObject({ reportId: 'all', stepsRunHere: 2, finishedOn: 'fargate' });
  });
});
