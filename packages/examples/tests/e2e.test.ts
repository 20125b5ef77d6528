import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DescribeTasksCommand, ECSClient, StopTaskCommand } from '@aws-sdk/client-ecs';
import { LocalControlPlane, type LocalS3, NoLauncher, startS3 } from '@immortal-lambda/local';
import { type HandoffReceipt, withFargateFallback } from '@immortal-lambda/middleware';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { burstContext, mulberry32, runRetriedBurst } from '../bench/retried-burst.js';
import {
  type Deployment,
  deployExample,
  registerTaskDefinitions,
  startLaunchers,
} from '../lib/deployment.js';
import { isBucketWideListing } from '../lib/iam.js';
import { bundleFixture } from './helpers/fixtures.js';
import { runLambda } from './helpers/lambda-leg.js';

const examples = join(import.meta.dirname, '..');
const report = join(examples, 'dist', 'report');
// The handoff comes 1.5 s in, as Lambda's 3 s timeout less a 1.5 s margin would make it; the
// longer timeout gives the handoff 2 s before its guard, room for a first SDK load on a busy machine.
const TIMEOUT_MS = 4_000;
const MARGIN_MS = 2_500;

let s3: LocalS3;
let plane: LocalControlPlane;
let deployment: Deployment;
let scratch: string;
let failing: string;
const logs: { taskId: string; line: string }[] = [];

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'immortal-e2e-'));
  failing = await bundleFixture('fails-on-fargate', join(examples, 'dist', 'e2e', 'fails-on-fargate'));
  // The construct's own grants, enforced on every call: each piece signs as its role.
  deployment = deployExample({
    functions: [{ name: 'report-job', envelopeTransport: 'auto' }, { name: 'fails-on-fargate' }],
  });
  s3 = await startS3({ bucket: deployment.bucket, authorize: deployment.authorize });
  plane = new LocalControlPlane({
    s3Endpoint: s3.endpoint,
    authorize: deployment.authorize,
    clusters: [deployment.cluster],
    subnets: deployment.subnets,
  });
  registerTaskDefinitions(plane, deployment);
  plane.registerFunction({
    name: 'report-job',
    folder: report,
    handler: 'index.handler',
    environment: { REPORT_TITLE: 'E2E report' },
  });
  plane.registerFunction({ name: 'fails-on-fargate', folder: failing, handler: 'index.handler' });
  plane.on('task-log', ({ task, line }) => logs.push({ taskId: task.id, line }));
  await plane.start();
  startLaunchers(plane, deployment, { plane: plane.url, s3: s3.endpoint, region: plane.region });
});

afterAll(async () => {
  await plane.stop();
  await s3.stop();
  rmSync(scratch, { recursive: true, force: true });
  // S3's bucket-wide listing before it answers a missing key is the one refusal expected.
  expect(deployment.refused.filter((call) => !isBucketWideListing(call))).toEqual([]);
});

beforeEach(() => {
  plane.faults = {};
});

/** Invokes a function through lambda-local, which enforces the timeout, as Lambda would. */
async function invoke(
  name: string,
  folder: string,
  event: unknown,
  requestId?: string,
  extra: Record<string, string> = {},
) {
  const leg = await runLambda({
    name,
    folder,
    event,
    timeoutMs: TIMEOUT_MS,
    environment: {
      ...plane.environment({ s3Endpoint: s3.endpoint, bucket: s3.bucket }),
      ...deployment.functions[name]?.function.environment,
      FARGATE_FALLBACK_MARGIN_MS: String(MARGIN_MS),
      ...extra,
    },
    ...(requestId ? { requestId } : {}),
  });
  return leg.ok
    ? {
        ok: true as const,
        result: leg.result as HandoffReceipt & Record<string, unknown>,
        elapsed: leg.elapsedMs,
        id: leg.id,
      }
    : { ok: false as const, error: leg.error, elapsed: leg.elapsedMs, id: leg.id };
}

const records = (taskArn: string) =>
  logs
    .filter((entry) => taskArn.endsWith(entry.taskId))
    .map((entry) => {
      try {
        return JSON.parse(entry.line) as Record<string, unknown>;
      } catch {
        return { text: entry.line };
      }
    });

describe('the whole path on one machine: lambda-local, the local control plane, the runner', () => {
  it('1. completes a short job in the Lambda harness and starts no task', async () => {
    // Prepare
    const before = plane.tasks().length;

    // Act
    const outcome = await invoke('report-job', report, { reportId: 'short', steps: 2, stepMs: 100 });

    // Assess
    expect(outcome.ok && outcome.result).toMatchObject({ reportId: 'short', finishedOn: 'lambda' });
    expect(plane.tasks()).toHaveLength(before);
  });

  it('2. hands a long job off once; the runner completes it with the same request id, event and environment', async () => {
    // Act
    const outcome = await invoke('report-job', report, { reportId: 'long', steps: 4, stepMs: 1_000 });

    // Assess
    expect(outcome.ok).toBe(true);
    expect(outcome.elapsed).toBeLessThan(TIMEOUT_MS);
    const receipt = outcome.ok ? outcome.result : ({} as HandoffReceipt);
    expect(receipt).toMatchObject({
      status: 'handed-off',
      requestId: outcome.id,
      envelopeLocation: 'inline',
    });
    expect(plane.tasks().filter((task) => task.startedBy === `immortal-lambda/${outcome.id}`)).toHaveLength(
      1,
    );
    const stopped = await plane.waitForTask(receipt.taskArn, 30_000);
    expect(stopped.exitCode).toBe(0);
    const finished = records(receipt.taskArn).find((r) => String(r.message).endsWith('long finished'));
    expect(finished).toMatchObject({
      message: 'E2E report long finished',
      runtime: 'fargate',
      result: { reportId: 'long', steps: 4, finishedOn: 'fargate', requestId: outcome.id },
    });
  });

  it('3. spills an event of 64 KB to S3, and the runner reads it back intact', async () => {
    // Prepare
    const rows = Array.from({ length: 2_500 }, (_, i) => `row-${i}`.padEnd(28, '.'));
    expect(JSON.stringify(rows).length).toBeGreaterThan(64 * 1024);

    // Act
    const outcome = await invoke('report-job', report, { reportId: 'large', steps: 3, stepMs: 1_000, rows });

    // Assess
    const receipt = outcome.ok ? outcome.result : ({} as HandoffReceipt);
    expect(receipt.envelopeLocation).toMatch(
      new RegExp(`^s3://${deployment.bucket}/immortal-lambda/envelopes/report-job/`),
    );
    const task = plane.task(receipt.taskArn);
    expect(task?.environment.FARGATE_FALLBACK_ENVELOPE).toBe(receipt.envelopeLocation);
    expect((await plane.waitForTask(receipt.taskArn, 30_000)).exitCode).toBe(0);
    const finished = records(receipt.taskArn).find((r) => String(r.message).endsWith('large finished'));
    expect(finished?.result).toMatchObject({ rows: rows.length, finishedOn: 'fargate' });
  });

  it('4. gives a retried invocation (same request id) the same task, not a second one', async () => {
    // Prepare
    const requestId = '0f0e0d0c-0b0a-4909-8807-060504030201';

    // Act
    const first = await invoke(
      'report-job',
      report,
      { reportId: 'retried', steps: 4, stepMs: 1_000 },
      requestId,
    );
    const retry = await invoke(
      'report-job',
      report,
      { reportId: 'retried', steps: 4, stepMs: 1_000 },
      requestId,
    );

    // Assess
    const a = first.ok ? first.result.taskArn : 'none';
    const b = retry.ok ? retry.result.taskArn : 'none';
    expect(a).toMatch(/^arn:aws:ecs:/);
    expect(b).toBe(a);
    expect(plane.tasks().filter((task) => task.startedBy === `immortal-lambda/${requestId}`)).toHaveLength(1);
    await plane.waitForTask(a, 30_000);
  });

  it('6. fails with a HandoffError before the deadline when RunTask never answers and there is no launch queue', async () => {
    // Prepare
    plane.faults = { hang: true };

    // Act: the function deployed with launchQueue: false
    const outcome = await invoke(
      'report-job',
      report,
      { reportId: 'hung', steps: 10, stepMs: 1_000 },
      undefined,
      {
        FARGATE_FALLBACK_LAUNCH_QUEUE: '',
      },
    );

    // Assess
    expect(outcome.ok).toBe(false);
    expect(outcome.ok || outcome.error.errorType).toBe('HandoffError');
    expect(outcome.elapsed).toBeLessThan(TIMEOUT_MS);
  });

  it('6b. queues the launch when RunTask never answers, and the launcher starts its one task once RunTask answers again', async () => {
    // Prepare
    plane.faults = { hang: true };

    // Act
    const outcome = await invoke('report-job', report, { reportId: 'hung-queued', steps: 4, stepMs: 1_000 });
    plane.faults = {};
    const id = outcome.id;
    const started = () => plane.tasks().filter((task) => task.startedBy === `immortal-lambda/${id}`);
    const until = Date.now() + 60_000;
    while (started().length === 0 && Date.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 100));

    // Assess
    expect(outcome.ok && outcome.result.status).toBe('queued');
    expect(outcome.elapsed).toBeLessThan(TIMEOUT_MS);
    expect(started()).toHaveLength(1);
    await plane.waitForTask(String(started()[0]?.arn), 60_000);
    expect(started()).toHaveLength(1);
  }, 120_000);

  it("7. runs under the construct's grants: one function's role may not stop another's task", async () => {
    // Prepare: a task of fails-on-fargate, and report-job's credentials.
    const outcome = await invoke('fails-on-fargate', failing, {});
    const receipt = outcome.ok ? outcome.result : ({} as HandoffReceipt);
    const asReport = deployment.functions['report-job']?.function.environment ?? {};
    const ecs = new ECSClient({
      endpoint: plane.url,
      region: plane.region,
      credentials: {
        accessKeyId: String(asReport.AWS_ACCESS_KEY_ID),
        secretAccessKey: String(asReport.AWS_SECRET_ACCESS_KEY),
      },
    });
    const before = deployment.refused.length;

    // Act
    const stopping = ecs.send(
      new StopTaskCommand({ cluster: deployment.cluster, task: receipt.taskArn, reason: 'not mine' }),
    );

    // Assess
    await expect(stopping).rejects.toMatchObject({ name: 'AccessDeniedException' });
    expect((await plane.waitForTask(receipt.taskArn, 30_000)).stoppedReason).not.toBe('not mine');
    const refusal = deployment.refused.splice(before);
    expect(refusal.map((call) => call.action)).toEqual(['ecs:StopTask']);
  });

  it('8. shows a handler that throws in the runner as a failed task, its record naming the request', async () => {
    // Act
    const outcome = await invoke('fails-on-fargate', failing, {});

    // Assess
    const receipt = outcome.ok ? outcome.result : ({} as HandoffReceipt);
    await plane.waitForTask(receipt.taskArn, 30_000);
    const ecs = new ECSClient({
      endpoint: plane.url,
      region: plane.region,
      credentials: { accessKeyId: deployment.operatorKey, secretAccessKey: 'y' },
    });
    const described = await ecs.send(
      new DescribeTasksCommand({ cluster: deployment.cluster, tasks: [receipt.taskArn] }),
    );
    expect(described.tasks?.[0]).toMatchObject({ lastStatus: 'STOPPED', containers: [{ exitCode: 1 }] });
    const record = records(receipt.taskArn).find((r) => r.message === 'immortal-runner finished');
    expect(record).toMatchObject({
      outcome: 'handler-error',
      requestId: outcome.id,
      error: { message: `the report for ${outcome.id} cannot be built` },
    });
  });
});

describe('5. a burst of 50 concurrent long invocations against a throttling plane short of capacity', () => {
  let burstPlane: LocalControlPlane;

  beforeAll(async () => {
    // Tasks are only counted here, not run: NoLauncher keeps them RUNNING.
    burstPlane = new LocalControlPlane({ launcher: new NoLauncher(), random: mulberry32(7) });
    await burstPlane.start();
  });

  afterAll(async () => {
    await burstPlane.stop();
  });

  it('hands each one off exactly once or fails it loudly before its deadline: none lost, none doubled', async () => {
    // Prepare
    burstPlane.faults = { throttle: 0.4, capacity: 0.2, latencyMs: 20 };
    const handler = withFargateFallback(
      (_event: unknown, _context, { signal }) =>
        new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      {
        env: { ...burstPlane.environment(), AWS_LAMBDA_FUNCTION_VERSION: '1' },
        marginMs: MARGIN_MS,
        logger: { info: () => {}, error: () => {} },
        ecsClient: new ECSClient({
          endpoint: burstPlane.url,
          region: burstPlane.region,
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
          maxAttempts: 1,
        }),
      },
    );
    const invocations = Array.from({ length: 50 }, (_, i) => {
      const deadline = Date.now() + TIMEOUT_MS;
      const context = burstContext(`burst-${String(i).padStart(2, '0')}-${Date.now()}`, deadline);
      return handler({ i }, context).then(
        (receipt) => ({
          id: context.awsRequestId,
          handedOff: receipt as HandoffReceipt,
          lateBy: Date.now() - deadline,
        }),
        (error: Error) => ({ id: context.awsRequestId, failed: error, lateBy: Date.now() - deadline }),
      );
    });

    // Act
    const outcomes = await Promise.all(invocations);

    // Assess
    const handedOff = outcomes.filter((o) => 'handedOff' in o);
    const failed = outcomes.filter((o) => 'failed' in o);
    expect(handedOff.length + failed.length).toBe(50);
    for (const outcome of outcomes) expect(outcome.lateBy).toBeLessThan(0);
    for (const outcome of failed) expect((outcome as { failed: Error }).failed.name).toBe('HandoffError');
    const tasksByRequest = new Map<string, number>();
    for (const task of burstPlane.tasks()) {
      const id = String(task.startedBy).replace('immortal-lambda/', '');
      tasksByRequest.set(id, (tasksByRequest.get(id) ?? 0) + 1);
    }
    for (const outcome of handedOff) {
      expect(
        tasksByRequest.get(outcome.id),
        JSON.stringify({ outcome, tasks: [...tasksByRequest].slice(0, 3) }),
      ).toBe(1);
      expect(burstPlane.task((outcome as { handedOff: HandoffReceipt }).handedOff.taskArn)).toBeDefined();
    }
    for (const outcome of failed) expect(tasksByRequest.get(outcome.id) ?? 0).toBe(0);
    expect(burstPlane.tasks()).toHaveLength(handedOff.length);
    expect(burstPlane.calls.filter((call) => call === 'ECS.RunTask').length).toBeGreaterThan(50);
    console.info(`burst: ${handedOff.length} handed off, ${failed.length} failed loudly, 0 lost, 0 doubled`);
  });
});

describe('9. a retried request id (Lambda retries, concurrent duplicates) never starts two tasks', () => {
  it.each([
    { mode: 'sequential', remembered: false },
    { mode: 'concurrent', remembered: false },
    { mode: 'sequential', remembered: true },
    { mode: 'concurrent', remembered: true },
  ] as const)(
    'finds the task an earlier attempt started whatever token started it: $mode attempts, failed tokens remembered: $remembered',
    async ({ mode, remembered }) => {
      // Act: 40 ids, each invoked twice, against 20 % capacity failures and 10 % throttling.
      const counts = await runRetriedBurst({
        ids: 40,
        mode,
        seed: 11,
        capacity: 0.2,
        throttle: 0.1,
        rememberFailedTokens: remembered,
        timeoutMs: TIMEOUT_MS,
        marginMs: MARGIN_MS,
      });

      // Assess
      console.info(`retried burst (${mode}, remembered ${remembered}): ${JSON.stringify(counts)}`);
      expect(counts.invocations).toBe(80);
      expect(counts.handedOff + counts.handoffErrors).toBe(80);
      expect(counts.handedOff).toBeGreaterThan(60);
      expect(counts).toMatchObject({ doubled: 0, late: 0, orphaned: 0, wrongReceipt: 0 });
    },
  );
});

describe('8. the demo command', () => {
  /**
   * Runs the demo with `args`; a run that fails or outlives its room says what it printed. The
   * demo synthesises the construct first: a busy machine needs room for that too.
   */
  const demo = (args: string[]) =>
    promisify(execFile)(process.execPath, [join(examples, 'demo.mjs'), ...args], { timeout: 150_000 }).catch(
      (error: { message: string; stdout?: string; stderr?: string }) => {
        throw new Error(`${error.message}\n--- stdout\n${error.stdout}\n--- stderr\n${error.stderr}`);
      },
    );

  it('prints every step of the timeline and exits 0', async () => {
    // Act
    const { stdout } = await demo(['--work-ms', '4000']);

    // Assess
    const steps = [
      /lambda +invoking report-job with a 3\.0 s timeout/,
      /lambda +invocation \w{8} started/,
      /lambda +Quarterly report Q3-2026: step 1\/4 done +\[runtime: lambda\]/,
      /handoff +RunTask started task \w{8} after \d+ ms in Lambda .*envelope inline/,
      /metrics +ImmortalLambda \{FunctionName=report-job\}: Handoffs 1, HandoffLatency \d+ ms, TimeInLambda \d+ ms, EnvelopeBytes \d+ B/,
      /ecs +task \w{8} RUNNING/,
      /runner +Resuming a handed-off invocation: request \w{8}/,
      /runner +Extracted the function code: \d+ files/,
      /runner +Calling the handler with the original event, request id \w{8}/,
      /runner +Quarterly report Q3-2026: step 4\/4 done +\[runtime: fargate\]/,
      /metrics +ImmortalLambda \{FunctionName=report-job\}: RunnerDuration \d+ ms, CodeFetch \d+ ms, DeadTime \d+ ms, Relaunches 0/,
      /runner +immortal-runner finished: success \(exit 0\)/,
      /status +getInvocationStatus: succeeded \(attempt 1\)/,
      /status +result: \{"reportId":"Q3-2026","steps":4/,
      /demo: OK — the invocation outlived its 3\.0 s timeout and finished on Fargate with the same request id/,
    ];
    let from = 0;
    for (const step of steps) {
      const match = step.exec(stdout.slice(from));
      expect(match, `missing, or out of order: ${step}\n${stdout}`).not.toBeNull();
      from += (match?.index ?? 0) + (match?.[0].length ?? 0);
    }
    const id = /invocation (\w{8}) started/.exec(stdout)?.[1];
    expect(stdout).toContain(`request ${id}`);
    expect(stdout).toMatch(
      new RegExp(`lambda +invocation ${id} returned the handoff receipt before its timeout`),
    );
  }, 180_000);

  it('runs cold, then pre-warmed, and shows the pre-warmed dead time below the cold one (--prewarm-ms)', async () => {
    // Act
    const { stdout } = await demo(['--work-ms', '3000', '--prewarm-ms', '1400']);

    // Assess
    const steps = [
      /demo +run 1 of 2: cold/,
      /handoff +RunTask started task \w{8} after \d+ ms in Lambda/,
      /status +timeline from the handoff .*: dead time (\d+) ms/,
      /demo +run 2 of 2: pre-warmed/,
      /handoff +pre-warm: RunTask started task \w{8} in standby after \d+ ms in Lambda/,
      /runner +Getting ready in standby/,
      /handoff +envelope written where task \w{8} waits/,
      /runner +Resuming a handed-off invocation in its pre-warmed task/,
      /status +getInvocationStatus: succeeded \(attempt 1\)/,
      /demo +dead time \(handoff began in Lambda → handler called in the runner\): cold \d+ ms, pre-warmed \d+ ms/,
      /demo: OK — .*pre-warmed, the runner called the handler \d+ ms after the handoff began \(cold: \d+ ms\)/,
    ];
    let from = 0;
    for (const step of steps) {
      const match = step.exec(stdout.slice(from));
      expect(match, `missing, or out of order: ${step}\n${stdout}`).not.toBeNull();
      from += (match?.index ?? 0) + (match?.[0].length ?? 0);
    }
    const [, cold, warm] = /cold (\d+) ms, pre-warmed (\d+) ms/.exec(stdout) ?? [];
    // Against the cold run of the same machine, now; the bound has room for a loaded machine.
    expect(Number(warm)).toBeLessThan(Number(cold));
    expect(Number(warm)).toBeLessThanOrEqual(3_000);
  }, 180_000);

  it('shows a Spot interruption, the relaunch on on-demand, and the completion (--interrupt-after-ms)', async () => {
    // Act
    const { stdout } = await demo(['--work-ms', '5000', '--interrupt-after-ms', '1500']);

    // Assess
    const steps = [
      /handoff +RunTask started task (\w{8})/,
      /ecs +task \w{8} RUNNING \(FARGATE_SPOT\)/,
      /status +getInvocationStatus: running \(attempt 1\)/,
      /ecs +task \w{8}: Spot interruption \(SIGTERM, SIGKILL after 2 s\)/,
      /runner +immortal-runner finished: stopped \(exit 143\)/,
      /watch +task \w{8} \(SpotInterruption\): relaunched as task \w{8}, attempt 2, on-demand/,
      /ecs +task \w{8} RUNNING \(FARGATE\)/,
      /runner +immortal-runner finished: success \(exit 0\)/,
      /status +getInvocationStatus: succeeded \(attempt 2\)/,
      /status +steps: \d+ finished in Lambda before the handoff, \d+ answered from the journal by the last attempt \(not run again\), 5 in all/,
      /demo: OK — .* finished on Fargate with the same request id \w{8}, after 1 relaunch\./,
    ];
    let from = 0;
    for (const step of steps) {
      const match = step.exec(stdout.slice(from));
      expect(match, `missing, or out of order: ${step}\n${stdout}`).not.toBeNull();
      from += (match?.index ?? 0) + (match?.[0].length ?? 0);
    }
  }, 180_000);
});
