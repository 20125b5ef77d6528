import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LocalControlPlane,
  type LocalS3,
  type LocalTask,
  startS3,
  type TaskStateChangeEvent,
} from '@immortal-lambda/local';
import type { HandoffReceipt } from '@immortal-lambda/middleware';
import { relaunchFailures, taskWatchdog, type WatchdogOutcome } from '@immortal-lambda/middleware/safety-net';
import { getInvocationStatus } from '@immortal-lambda/middleware/status';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  clientsOf,
  type Deployment,
  deployExample,
  registerTaskDefinitions,
  sdkEnvironment,
  startLaunchers,
} from '../lib/deployment.js';
import { isBucketWideListing } from '../lib/iam.js';
import { bundleFixture } from './helpers/fixtures.js';
import { invokeLambda } from './helpers/lambda-leg.js';
import { statusBecomes, watchStoppedTasks } from './helpers/watch.js';

const examples = join(import.meta.dirname, '..');
const report = join(examples, 'dist', 'report');
const queue = join(examples, 'dist', 'queue');
// The handoff comes 1.5 s in, as Lambda's 3 s timeout less a 1.5 s margin would make it; the
// longer timeout gives the handoff 2 s before its guard, room for a first SDK load on a busy machine.
const TIMEOUT_MS = 4_000;
const MARGIN_MS = 2_500;
const FAILURES = 'arn:aws:sqs:eu-west-1:123456789012:report-failures';

let s3: LocalS3;
let plane: LocalControlPlane;
let scratch: string;
let failing: string;
let env: Record<string, string>;
let deployment: Deployment;
let BUCKET: string;
/** Where the deployed pieces' clients send their calls. */
const at = () => ({ plane: plane.url, s3: s3.endpoint, region: plane.region });
let watchdog: ReturnType<typeof taskWatchdog>;
const watched: Promise<WatchdogOutcome>[] = [];
/** The verdicts given so far: a test reads its own without waiting on anyone else's. */
const verdicts: WatchdogOutcome[] = [];
const logs: { taskId: string; line: string }[] = [];

const remaining = { getRemainingTimeInMillis: () => 60_000 };

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'immortal-safety-net-'));
  failing = await bundleFixture('fails-on-fargate', join(examples, 'dist', 'safety-net', 'fails-on-fargate'));
  // The construct's own grants, enforced on every call: each function, task and safety-net
  // function signs as its role; the test itself (status reads) as the operator.
  deployment = deployExample({
    functions: [
      { name: 'report-job' },
      { name: 'render-queue' },
      { name: 'fails-on-fargate', onFailure: FAILURES },
    ],
  });
  BUCKET = deployment.bucket;
  s3 = await startS3({ bucket: BUCKET, authorize: deployment.authorize });
  // Long enough in PROVISIONING that a handed-off invocation can be seen before its runner starts.
  plane = new LocalControlPlane({
    s3Endpoint: s3.endpoint,
    provisioningMs: 700,
    authorize: deployment.authorize,
    clusters: [deployment.cluster],
    subnets: deployment.subnets,
  });
  registerTaskDefinitions(plane, deployment);
  // Each function as deployed: its settings are what the safety net reads from its configuration.
  const variables = (name: string) => deployment.functions[name]?.variables ?? {};
  plane.registerFunction({
    name: 'report-job',
    folder: report,
    handler: 'index.handler',
    environment: variables('report-job'),
  });
  plane.registerFunction({
    name: 'render-queue',
    folder: queue,
    handler: 'index.handler',
    environment: variables('render-queue'),
  });
  plane.registerFunction({
    name: 'fails-on-fargate',
    folder: failing,
    handler: 'index.handler',
    environment: variables('fails-on-fargate'),
    destinations: { onFailure: FAILURES },
  });
  plane.on('task-log', ({ task, line }: { task: LocalTask; line: string }) =>
    logs.push({ taskId: task.id, line }),
  );
  await plane.start();
  startLaunchers(plane, deployment, { plane: plane.url, s3: s3.endpoint, region: plane.region });
  env = {
    ...plane.environment({ s3Endpoint: s3.endpoint, bucket: s3.bucket }),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  // The SDK finds the plane through the endpoints; the test's own calls sign as the operator.
  Object.assign(process.env, env);
  // The cluster's one watchdog, with its own settings and role, as the construct deploys it; its
  // EventBridge rule delivers the stopped runner tasks of every function it serves.
  const byRole = new Map<string, ReturnType<typeof taskWatchdog>>();
  const watchdogs = new Map(
    Object.values(deployment.functions).map((deployed) => {
      const { roleArn } = deployed.watchdog;
      const made =
        byRole.get(roleArn) ??
        taskWatchdog({
          env: { ...sdkEnvironment(env), ...deployed.watchdog.environment },
          backoffMs: 100,
          ...clientsOf(deployed.watchdog, at()),
        });
      byRole.set(roleArn, made);
      return [deployed.task.family, made];
    }),
  );
  expect(byRole.size).toBe(1);
  watchdog = (event, context) => {
    const definition = String(event.detail?.taskDefinitionArn);
    const own = watchdogs.get(/task-definition\/([^:]+)/.exec(definition)?.[1] ?? '');
    if (!own) throw new Error(`no watchdog for the task definition ${definition}`);
    return own(event, context);
  };
  watchStoppedTasks(plane, watchdog, watched, verdicts);
});

afterAll(async () => {
  await Promise.allSettled(watched);
  await plane.stop();
  await s3.stop();
  rmSync(scratch, { recursive: true, force: true });
  // S3's bucket-wide listing before it answers a missing key is the one refusal expected.
  expect(deployment.refused.filter((call) => !isBucketWideListing(call))).toEqual([]);
});

beforeEach(() => {
  plane.resetRecords();
  watched.length = 0;
  verdicts.length = 0;
});

afterEach(async () => {
  // Every task of a test stops, and its event is followed up, before the next test begins.
  const running = plane.tasks().filter((task) => task.lastStatus !== 'STOPPED');
  await Promise.all(running.map((task) => plane.waitForTask(task.arn, 60_000)));
  await Promise.allSettled(watched);
});

/** The watchdog's verdicts on the tasks of one invocation, once `count` of them are in. */
async function verdictsFor(requestId: string, count = 1, timeoutMs = 60_000): Promise<WatchdogOutcome[]> {
  const started = Date.now();
  for (;;) {
    const own = verdicts.filter((verdict) => verdict.requestId === requestId);
    if (own.length >= count) return own;
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `the watchdog gave ${own.length} of ${count} verdicts on ${requestId} in ${timeoutMs} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function invoke(name: string, folder: string, event: unknown, extra: Record<string, string> = {}) {
  const { result, id } = await invokeLambda({
    name,
    folder,
    event,
    timeoutMs: TIMEOUT_MS,
    environment: {
      ...env,
      ...deployment.functions[name]?.function.environment,
      FARGATE_FALLBACK_MARGIN_MS: String(MARGIN_MS),
      ...extra,
    },
  });
  return { receipt: result as HandoffReceipt, id };
}

const status = (functionName: string, requestId: string, loadResult = false) =>
  getInvocationStatus({ functionName, requestId }, { bucket: BUCKET, loadResult });

const tasksOf = (requestId: string) =>
  plane.tasks().filter((task) => task.startedBy === `immortal-lambda/${requestId}`);

/** Resolves once a line of the task's runner log matches. */
async function logged(taskArn: string, pattern: RegExp, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!logs.some((entry) => taskArn.endsWith(entry.taskId) && pattern.test(entry.line))) {
    if (Date.now() - started > timeoutMs) throw new Error(`task ${taskArn} never logged ${pattern}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The destination record of one invocation, once the plane has received it. */
async function deliveredFor(requestId: string, timeoutMs = 20_000) {
  const started = Date.now();
  for (;;) {
    const delivery = plane.deliveries.find((d) => String(d.payload).includes(requestId));
    if (delivery) return delivery;
    if (Date.now() - started > timeoutMs) {
      throw new Error(`no destination record of ${requestId} arrived in ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('after the handoff: recorded, watched, relaunched', () => {
  it('relaunches a task interrupted on Spot on on-demand capacity, which completes with one outcome; the status follows every state', async () => {
    // Prepare
    const seen: string[] = [];

    // Act: hand off on Spot, then interrupt the runner mid-run as Spot does.
    const { receipt, id } = await invoke(
      'report-job',
      report,
      { reportId: 'spot', steps: 6, stepMs: 400 },
      { FARGATE_FALLBACK_CAPACITY: 'FARGATE_SPOT' },
    );
    seen.push(String((await status('report-job', id))?.status));
    // Steps 1 to 3 finish in Lambda; the runner answers them from the journal and runs step 4.
    await logged(receipt.taskArn, /step 4\/6 done/);
    seen.push(String((await status('report-job', id))?.status));
    plane.interruptTask(receipt.taskArn, { stopTimeoutMs: 2_000 });
    const interrupted = await plane.waitForTask(receipt.taskArn);
    const [relaunch] = await verdictsFor(id);
    seen.push(String((await status('report-job', id))?.status));
    await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, ['running']);
    seen.push('running');
    const final = await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, [
      'succeeded',
      'failed',
    ]);

    // Assess
    expect(receipt).toMatchObject({ status: 'handed-off', capacityProvider: 'FARGATE_SPOT' });
    expect(interrupted).toMatchObject({ stopCode: 'SpotInterruption', exitCode: 143 });
    expect(relaunch).toMatchObject({ action: 'relaunched', requestId: id, attempt: 2 });
    const tasks = tasksOf(id);
    expect(tasks.map((task) => task.capacityProvider)).toEqual(['FARGATE_SPOT', 'FARGATE']);
    expect(seen).toEqual(['handed-off', 'running', 'relaunching', 'running']);
    expect(final).toMatchObject({
      status: 'succeeded',
      attempts: 2,
      taskArn: tasks[1]?.arn,
      // The relaunch resumed from the journal the first task saved: only steps 5 and 6 ran again.
      result: { reportId: 'spot', steps: 6, stepsRunHere: 2, finishedOn: 'fargate', requestId: id },
      // Steps 1-3 in Lambda; the relaunch found 1-4 in the journal the first task saved.
      steps: { inLambda: 3, fromJournal: 4, total: 6 },
    });
    await plane.waitForTask(String(tasks[1]?.arn));
    const finishedRuns = logs.filter((entry) =>
      /"message":"immortal-runner finished".*"outcome":"success"/.test(entry.line),
    );
    expect(finishedRuns.filter((entry) => tasks.some((task) => task.id === entry.taskId))).toHaveLength(1);
  });

  it('relaunches a task that failed to start, and the invocation completes', async () => {
    // Prepare
    plane.faults = { failToStart: 1 };

    // Act
    const { receipt, id } = await invoke('report-job', report, {
      reportId: 'nostart',
      steps: 5,
      stepMs: 500,
    });
    const first = await plane.waitForTask(receipt.taskArn);
    const [relaunch] = await verdictsFor(id);
    const final = await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, [
      'succeeded',
      'failed',
    ]);

    // Assess
    expect(first).toMatchObject({ stopCode: 'TaskFailedToStart', exitCode: undefined });
    expect(relaunch).toMatchObject({ action: 'relaunched', attempt: 2 });
    expect(final).toMatchObject({ status: 'succeeded', attempts: 2, result: { reportId: 'nostart' } });
    expect(tasksOf(id)).toHaveLength(2);
  });

  it('relaunches a task killed for its memory, and the runner of each attempt records its own task', async () => {
    // Act
    const { receipt, id } = await invoke('report-job', report, { reportId: 'oom', steps: 5, stepMs: 500 });
    await logged(receipt.taskArn, /step 3\/5 done/);
    const running = await status('report-job', id);
    plane.killTaskForMemory(receipt.taskArn);
    const killed = await plane.waitForTask(receipt.taskArn);
    const [relaunch] = await verdictsFor(id);
    const final = await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, [
      'succeeded',
      'failed',
    ]);

    // Assess
    expect(running).toMatchObject({ status: 'running', taskArn: receipt.taskArn });
    expect(killed).toMatchObject({
      exitCode: 137,
      containerReason: expect.stringMatching(/^OutOfMemoryError/),
    });
    expect(relaunch).toMatchObject({ action: 'relaunched', attempt: 2 });
    expect(final).toMatchObject({ status: 'succeeded', attempts: 2, taskArn: relaunch?.taskArn });
    // Twice the memory of the task that died (the runner family's 2048 MiB), not the same size again.
    expect(plane.task(receipt.taskArn)).toMatchObject({ memory: 2048 });
    expect(plane.task(String(relaunch?.taskArn))).toMatchObject({ cpu: 1024, memory: 4096 });
  });

  it('records a task killed for its memory at the ceiling as the result, and does not start it again', async () => {
    // Prepare: the relaunch of a kill, at the most memory allowed, is killed again.
    const { receipt, id } = await invoke('report-job', report, {
      reportId: 'oom-twice',
      steps: 8,
      stepMs: 500,
    });
    await logged(receipt.taskArn, /step \d\/8 done/);
    plane.killTaskForMemory(receipt.taskArn);
    const [relaunch] = await verdictsFor(id);
    await logged(String(relaunch?.taskArn), /step \d\/8 done/);

    // Act
    plane.killTaskForMemory(String(relaunch?.taskArn));
    const verdicts = await verdictsFor(id, 2);
    const final = await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, [
      'failed',
    ]);

    // Assess
    expect(verdicts.map((verdict) => verdict.action)).toEqual(['relaunched', 'result']);
    expect(verdicts[1]?.reason).toMatch(
      /ran out of memory at 4096 MiB, and FARGATE_FALLBACK_MAX_MEMORY_MIB \(4096 MiB\) allows no more/,
    );
    expect(tasksOf(id)).toHaveLength(2);
    expect(final).toMatchObject({ status: 'failed', error: { name: 'TaskStopped', exitCode: 137 } });
  });

  it("does not relaunch a handler error: it is the result, recorded failed and sent to the failure destination in Lambda's shape", async () => {
    // Act
    const { receipt, id } = await invoke('fails-on-fargate', failing, { order: 42 });
    const stopped = await plane.waitForTask(receipt.taskArn);
    const [verdict] = await verdictsFor(id);
    const final = await statusBecomes({ functionName: 'fails-on-fargate', requestId: id, bucket: BUCKET }, [
      'failed',
    ]);

    // Assess
    expect(stopped.exitCode).toBe(1);
    expect(verdict).toMatchObject({ action: 'result', requestId: id });
    expect(tasksOf(id)).toHaveLength(1);
    expect(final).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: {
        name: 'Error',
        message: `the report for ${id} cannot be built`,
        exitCode: 1,
        retryable: false,
      },
    });
    expect(plane.deliveries).toHaveLength(1);
    expect(plane.deliveries[0]?.service).toBe('sqs');
    expect(JSON.parse(String(plane.deliveries[0]?.payload))).toMatchObject({
      requestContext: {
        requestId: id,
        functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:fails-on-fargate',
        condition: 'RetriesExhausted',
        approximateInvokeCount: 1,
      },
      requestPayload: { order: 42 },
      responseContext: { statusCode: 200, functionError: 'Unhandled' },
      responsePayload: { errorType: 'Error', errorMessage: `the report for ${id} cannot be built` },
      immortalLambda: { runtime: 'fargate', writer: 'runner' },
    });
  });

  it('gives up after the last attempt: the invocation is failed, and the failure goes to the destination', async () => {
    // Prepare: every start fails.
    plane.faults = { failToStart: 3 };

    // Act
    const { id } = await invoke('fails-on-fargate', failing, { order: 7 });
    await statusBecomes({ functionName: 'fails-on-fargate', requestId: id, bucket: BUCKET }, ['failed']);
    const verdicts = await verdictsFor(id, 3);
    const final = await status('fails-on-fargate', id);

    // Assess
    expect(verdicts.map((v) => v.action)).toEqual(['relaunched', 'relaunched', 'gave-up']);
    expect(tasksOf(id)).toHaveLength(3);
    expect(final).toMatchObject({
      status: 'failed',
      attempts: 3,
      error: { name: 'TaskStopped', stopCode: 'TaskFailedToStart', retryable: false },
    });
    const delivery = await deliveredFor(id);
    const record = JSON.parse(String(delivery.payload));
    expect(record).toMatchObject({
      requestContext: { requestId: id, condition: 'RetriesExhausted', approximateInvokeCount: 3 },
      requestPayload: { order: 7 },
      immortalLambda: { writer: 'watchdog' },
    });
  });

  it('acts once on a stopped-task event delivered twice', async () => {
    // Prepare: the first start fails; its event is delivered again after the relaunch.
    plane.faults = { failToStart: 1 };
    const events: TaskStateChangeEvent[] = [];
    const keep = (event: TaskStateChangeEvent) => {
      if (event.detail.lastStatus === 'STOPPED') events.push(event);
    };
    plane.on('task-state-change', keep);

    // Act
    const { receipt, id } = await invoke('report-job', report, { reportId: 'twice', steps: 5, stepMs: 500 });
    await plane.waitForTask(receipt.taskArn);
    await verdictsFor(id);
    const first = events.find((event) => event.detail.taskArn === receipt.taskArn) as TaskStateChangeEvent;
    const again = await watchdog(first, remaining);
    await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, ['succeeded']);
    plane.off('task-state-change', keep);

    // Assess
    expect(again).toMatchObject({ action: 'already-relaunched', requestId: id });
    expect(tasksOf(id)).toHaveLength(2);
  });

  it('answers undefined for a request id it has no record of', async () => {
    expect(await status('report-job', 'never-handed-off')).toBeUndefined();
  });
});

/** Lambda's on-failure destination record of an invocation of report-job that failed with `error`. */
const failureRecord = (id: string, event: unknown, error: { errorType: string; errorMessage: string }) => ({
  version: '1.0',
  timestamp: new Date().toISOString(),
  requestContext: {
    requestId: id,
    functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report-job:$LATEST',
    condition: 'RetriesExhausted',
    approximateInvokeCount: 3,
  },
  requestPayload: event,
  responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
  responsePayload: error,
});

describe('the safety net: invocations that failed in Lambda are started on Fargate, once', () => {
  const requestId = (n: number) => `0a0b0c0d-1111-4222-8333-${String(n).padStart(12, '0')}`;
  const relaunchOf = (extra: Record<string, string> = {}) => {
    const deployed = deployment.functions['report-job']?.relaunch;
    if (!deployed) throw new Error('report-job has no relaunch function');
    return relaunchFailures({
      env: { ...sdkEnvironment(env), ...deployed.environment, ...extra },
      ...clientsOf(deployed, at()),
    });
  };
  const relaunch = () => relaunchOf();
  // A relaunch function on one function's dead-letter queue, whose messages do not name it, serves that function alone.
  const deadLetterRelaunch = () =>
    relaunchOf({
      FARGATE_FALLBACK_FUNCTION_ARN: 'arn:aws:lambda:eu-west-1:123456789012:function:report-job',
    });

  it('starts one task for an on-failure destination record delivered twice through SQS', async () => {
    // Prepare
    const id = requestId(1);
    const record = failureRecord(
      id,
      { reportId: 'from-destination', steps: 2, stepMs: 100 },
      { errorType: 'Runtime.OutOfMemory', errorMessage: 'Runtime exited with error: signal: killed' },
    );
    const sqsEvent = (messageId: string) => ({
      Records: [{ eventSource: 'aws:sqs', messageId, body: JSON.stringify(record), messageAttributes: {} }],
    });
    const handler = relaunch();

    // Act
    const first = await handler(sqsEvent('m-1'), remaining);
    const second = await handler(sqsEvent('m-2'), remaining);
    const final = await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, [
      'succeeded',
      'failed',
    ]);

    // Assess
    expect(first).toMatchObject({
      batchItemFailures: [],
      relaunched: [{ requestId: id, taskArn: expect.any(String) }],
    });
    expect(second.batchItemFailures).toEqual([]);
    expect(tasksOf(id)).toHaveLength(1);
    expect(final).toMatchObject({
      status: 'succeeded',
      result: { reportId: 'from-destination', requestId: id },
    });
  });

  it('starts one task for a dead-letter message delivered twice through SNS, of the one function it is set up for', async () => {
    // Prepare
    const id = requestId(2);
    const snsEvent = {
      Records: [
        {
          EventSource: 'aws:sns',
          Sns: {
            Message: JSON.stringify({ reportId: 'from-dlq', steps: 2, stepMs: 100 }),
            MessageAttributes: {
              RequestID: { Type: 'String', Value: id },
              ErrorCode: { Type: 'String', Value: '200' },
              ErrorMessage: { Type: 'String', Value: 'Task timed out after 3.00 seconds' },
            },
          },
        },
      ],
    };
    const handler = deadLetterRelaunch();

    // Act
    await Promise.all([handler(snsEvent, remaining), handler(snsEvent, remaining)]);
    const final = await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, [
      'succeeded',
      'failed',
    ]);

    // Assess
    expect(tasksOf(id)).toHaveLength(1);
    expect(final).toMatchObject({ status: 'succeeded', result: { reportId: 'from-dlq', requestId: id } });
  });

  it("leaves a handler's own error as the result: nothing started, the record sent on to the final-failures queue", async () => {
    // Prepare: Lambda already retried a handler that threw; rerunning it would throw again.
    const id = requestId(4);
    const undone = String(
      deployment.functions['report-job']?.relaunch?.environment.FARGATE_FALLBACK_FINAL_FAILURES,
    );
    const record = failureRecord(
      id,
      { reportId: 'threw', steps: 1, stepMs: 10 },
      { errorType: 'TypeError', errorMessage: 'reportId.trim is not a function' },
    );
    const handler = relaunchOf();

    // Act
    const result = await handler(
      {
        Records: [
          { eventSource: 'aws:sqs', messageId: 'm-4', body: JSON.stringify(record), messageAttributes: {} },
        ],
      },
      remaining,
    );

    // Assess
    expect(result.batchItemFailures).toEqual([]);
    expect(result.relaunched[0]?.skipped).toMatch(/the handler's own error .*TypeError: reportId.trim/);
    expect(tasksOf(id)).toHaveLength(0);
    const sent = plane.deliveries.filter((delivery) => delivery.service === 'sqs');
    expect(sent).toHaveLength(1);
    expect(sent[0]?.target).toMatch(new RegExp(`/${undone.split(':').pop()}$`));
    expect(JSON.parse(String(sent[0]?.payload))).toMatchObject({
      requestContext: { requestId: id, condition: 'RetriesExhausted' },
      requestPayload: { reportId: 'threw' },
      responsePayload: { errorType: 'TypeError', errorMessage: 'reportId.trim is not a function' },
      immortalLambda: { writer: 'safety-net' },
    });
  });

  it('reports an SQS message it cannot start in batchItemFailures, and starts the others', async () => {
    // Prepare
    const id = requestId(3);
    const event = {
      Records: [
        { eventSource: 'aws:sqs', messageId: 'bad', body: '{"not":"a record"}', messageAttributes: {} },
        {
          eventSource: 'aws:sqs',
          messageId: 'good',
          body: JSON.stringify({ reportId: 'dlq-sqs', steps: 1, stepMs: 50 }),
          messageAttributes: { RequestID: { stringValue: id, dataType: 'String' } },
        },
      ],
    };

    // Act
    const result = await deadLetterRelaunch()(event, remaining);

    // Assess
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'bad' }]);
    expect(tasksOf(id)).toHaveLength(1);
    await statusBecomes({ functionName: 'report-job', requestId: id, bucket: BUCKET }, ['succeeded']);
  });
});

describe('event sources', () => {
  it('runs an SQS batch through the whole path: handed off, finished on Fargate, its batchItemFailures in the outcome', async () => {
    // Prepare
    const event = {
      Records: [
        { messageId: 'a', eventSource: 'aws:sqs', body: JSON.stringify({ frames: 6, frameMs: 400 }) },
        { messageId: 'b', eventSource: 'aws:sqs', body: 'not json' },
        { messageId: 'c', eventSource: 'aws:sqs', body: JSON.stringify({ frames: 2, frameMs: 200 }) },
      ],
    };

    // Act
    const { receipt, id } = await invoke('render-queue', queue, event);
    const final = await statusBecomes({ functionName: 'render-queue', requestId: id, bucket: BUCKET }, [
      'succeeded',
      'failed',
    ]);

    // Assess
    expect(receipt.status).toBe('handed-off');
    expect(final).toMatchObject({
      status: 'succeeded',
      result: { batchItemFailures: [{ itemIdentifier: 'b' }] },
    });
  });
});
