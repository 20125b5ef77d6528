// The demo: a report job that needs longer than its Lambda timeout, invoked through a Lambda
// harness that enforces the timeout (lambda-local), handed off to the local control plane, and
// finished by the runner with the same request id. Prints a timeline; exits 0 on success.
//
//   pnpm demo [--work-ms 8000] [--timeout-ms 3000] [--margin-ms 1500] [--step-ms 1000] [--event-kb 0]
//             [--interrupt-after-ms N]   interrupt the runner N ms after it starts, as Fargate Spot does:
//                                        the watchdog relaunches it on on-demand capacity
//             [--prewarm-ms N]           run the job twice: as usual, then with its task pre-warmed N ms
//                                        before the handoff, and compare the dead time of the two
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DescribeTasksCommand, ECSClient } from '@aws-sdk/client-ecs';
import { S3Client } from '@aws-sdk/client-s3';
import { LocalControlPlane, startS3 } from '@immortal-lambda/local';
import { taskWatchdog } from '@immortal-lambda/middleware/safety-net';
import { getInvocationStatus } from '@immortal-lambda/middleware/status';
import lambdaLocal from 'lambda-local';
import {
  clientsOf,
  deployExample,
  isBucketWideListing,
  registerTaskDefinitions,
  sdkEnvironment,
  startLaunchers,
} from './dist/lib/deployment.js';

const here = dirname(fileURLToPath(import.meta.url));
// The SDK warns on Node 20 about its future support; Lambda runs Node 22 and 24.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const USAGE = `npm run demo [-- options]: one long report handed off from Lambda to Fargate, on the local plane

  --work-ms <ms>             how long the report works in all (default 8000)
  --timeout-ms <ms>          the Lambda timeout (default 3000)
  --margin-ms <ms>           the handoff margin (default 1500)
  --step-ms <ms>             how long each step takes (default 1000)
  --event-kb <kb>            pad the event to this size: over 8 KB it goes through S3 (default 0)
  --interrupt-after-ms <ms>  interrupt the task as Spot does this long after its handler starts: the watchdog relaunches it (default 0: off)
  --prewarm-ms <ms>          start the task this long before the handoff, in standby (default 0: off)
  --help                     this text`;
let values;
try {
  ({ values } = parseArgs({
    options: {
      'work-ms': { type: 'string', default: '8000' },
      'timeout-ms': { type: 'string', default: '3000' },
      'margin-ms': { type: 'string', default: '1500' },
      'step-ms': { type: 'string', default: '1000' },
      'event-kb': { type: 'string', default: '0' },
      'interrupt-after-ms': { type: 'string', default: '0' },
      'prewarm-ms': { type: 'string', default: '0' },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (error) {
  console.error(`demo: ${error.message}\n\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const number = (name) => {
  const value = Number(values[name]);
  if (!Number.isFinite(value) || value < 0) {
    console.error(`demo: --${name} ${values[name]} is not a number of milliseconds or kilobytes`);
    process.exit(2);
  }
  return value;
};
const workMs = number('work-ms');
const timeoutMs = number('timeout-ms');
const marginMs = number('margin-ms');
const stepMs = Math.max(1, number('step-ms'));
const eventKb = number('event-kb');
const interruptAfterMs = number('interrupt-after-ms');
const prewarmMs = number('prewarm-ms');
const steps = Math.max(1, Math.ceil(workMs / stepMs));

const started = performance.now();
const write = process.stdout.write.bind(process.stdout);
const line = (who, text) =>
  write(`${((performance.now() - started) / 1000).toFixed(3).padStart(8)}s  ${who.padEnd(7)}  ${text}\n`);
const short = (id) => String(id).slice(0, 8);
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

write(
  `\nimmortal-lambda demo: a ${seconds(steps * stepMs)} report job (${steps} steps of ${seconds(stepMs)}) under a ${seconds(
    timeoutMs,
  )} Lambda timeout, handoff margin ${seconds(marginMs)}${eventKb ? `, ${eventKb} KB event` : ''}${
    interruptAfterMs
      ? `, the first task interrupted as on Spot ${seconds(interruptAfterMs)} after its handler starts`
      : ''
  }${prewarmMs ? `; run cold, then with the task pre-warmed ${seconds(prewarmMs)} before the handoff` : ''}\n\n`,
);

// The construct's grants for this function, synthesised: the plane and S3 decide every call by
// them, each piece signing as its own role (the function, its task, the watchdog).
line('iam', 'synthesising FargateFallback for report-job (its roles and their policies)');
const deployment = deployExample({
  functions: [{ name: 'report-job', timeoutSeconds: Math.ceil(timeoutMs / 1000), envelopeTransport: 'auto' }],
});
const deployed = deployment.functions['report-job'];
const s3 = await startS3({ bucket: deployment.bucket, authorize: deployment.authorize });
// A task spends half a second in PROVISIONING, as a (much slower) Fargate start would.
const plane = new LocalControlPlane({
  s3Endpoint: s3.endpoint,
  provisioningMs: 500,
  authorize: deployment.authorize,
  clusters: [deployment.cluster],
  subnets: deployment.subnets,
});
registerTaskDefinitions(plane, deployment);
const fn = plane.registerFunction({
  name: 'report-job',
  folder: join(here, 'dist', 'report'),
  handler: 'index.handler',
  // As deployed: the construct's settings (which the watchdog reads) and the function's own.
  environment: { ...deployed.variables, REPORT_TITLE: 'Quarterly report' },
  timeout: Math.ceil(timeoutMs / 1000),
});
await plane.start();
// The launch queue's launcher, polled as its event source mapping would (a burst past Fargate's launch rate).
startLaunchers(plane, deployment, { plane: plane.url, s3: s3.endpoint, region: plane.region });
line('local', `control plane on ${plane.url} (ECS + Lambda APIs), S3 emulator on ${s3.endpoint}`);
line(
  'local',
  `function report-job:${fn.version} registered from dist/report (CodeSha256 ${fn.sha256.slice(0, 12)}…)`,
);
line('iam', `every call of the function, its task and the watchdog is decided by their roles' policies`);

let outcome = 'unknown';
const fail = async (reason) => {
  line('demo', `FAILED: ${reason}`);
  await plane.stop();
  await s3.stop();
  process.exit(1);
};

// What the handler and the wrapper print inside the Lambda harness, as timeline lines.
const describeRecord = (who, text) => {
  let record;
  try {
    record = JSON.parse(text);
  } catch {
    line(who, text);
    return;
  }
  if (record._aws) {
    // A CloudWatch metric line (EMF): what CloudWatch would chart.
    const [directive] = record._aws.CloudWatchMetrics;
    const values = directive.Metrics.map(
      (metric) =>
        `${metric.Name} ${record[metric.Name]}${metric.Unit === 'Milliseconds' ? ' ms' : metric.Unit === 'Bytes' ? ' B' : ''}`,
    );
    line('metrics', `${directive.Namespace} {FunctionName=${record.FunctionName}}: ${values.join(', ')}`);
    return;
  }
  if (record.message === 'Invocation handed off to Fargate') {
    line(
      'handoff',
      `RunTask started task ${short(record.taskArn.split('/').pop())} after ${record.ranInLambdaMs} ms in Lambda (${
        record.remainingMs
      } ms left): envelope ${record.envelopeLocation === 'inline' ? 'inline in the container override' : `spilled to ${record.envelopeLocation}`}, ${
        record.envelopeBytes
      } bytes, ${record.attempts} attempt${record.attempts === 1 ? '' : 's'}, ${record.elapsedMs} ms`,
    );
  } else if (record.message === 'Runner task started in standby') {
    line(
      'handoff',
      `pre-warm: RunTask started task ${short(record.taskArn.split('/').pop())} in standby after ${record.ranInLambdaMs} ms in Lambda; the handler keeps running`,
    );
  } else if (record.message === 'Invocation handed off to its pre-warmed task') {
    line(
      'handoff',
      `envelope written where task ${short(record.taskArn.split('/').pop())} waits, after ${record.ranInLambdaMs} ms in Lambda (${record.elapsedMs} ms)`,
    );
  } else if (record.message === 'Handoff to Fargate failed') {
    line('handoff', `FAILED (${record.reason}): ${record.error?.message}`);
  } else if (record.service === 'immortal-runner') {
    const extra =
      record.message === 'Extracted the function code'
        ? `: ${record.files} files, ${(record.bytes / 1024).toFixed(1)} KB into ${record.root}`
        : record.message === 'Resuming a handed-off invocation'
          ? `: request ${short(record.requestId)}, handler ${record.handler}`
          : record.message === 'Calling the handler'
            ? ` with the original event, request id ${short(record.requestId)}, ${record.timeline?.deadTimeMs} ms after the handoff began`
            : record.message === 'immortal-runner finished'
              ? `: ${record.outcome} (exit ${record.exitCode}), handler ran ${seconds(record.handlerDurationMs ?? 0)}${
                  record.error ? `, error: ${record.error.message}` : ''
                }`
              : '';
    line(who, `${record.message}${extra}`);
  } else if (record.message) {
    const result = record.result ? `: ${JSON.stringify(record.result)}` : '';
    line(who, `${record.message}${result}${record.runtime ? `  [runtime: ${record.runtime}]` : ''}`);
  } else {
    line(who, text);
  }
};

// The safety net, as the construct deploys it: STOPPED runner tasks go to the watchdog, which
// signs as its own role. The demo itself (the status polls) signs as the operator.
const endpoints = plane.environment({ s3Endpoint: s3.endpoint, bucket: s3.bucket });
Object.assign(process.env, endpoints);
const environment = { ...endpoints, ...deployed.function.environment };
// lambda-local leaves the function's variables in process.env: the operator's calls name their credentials.
// Every call of the demo's own clients is bounded, as the watchdog's own are on Lambda: a call
// that gets no answer fails the story loudly instead of holding it.
// (The SDK only warns about a request past its timeout unless told to throw; thrown, it is retried.)
const bounded = {
  requestHandler: { requestTimeout: 20_000, connectionTimeout: 5_000, throwOnRequestTimeout: true },
};
const operatorS3 = new S3Client({
  ...bounded,
  region: plane.region,
  endpoint: s3.endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: deployment.operatorKey, secretAccessKey: 'local' },
});
const watchdog = taskWatchdog({
  env: { ...sdkEnvironment(endpoints), ...deployed.watchdog.environment },
  backoffMs: 500,
  logger: { info() {}, warn() {}, error() {} },
  ...clientsOf(deployed.watchdog, { plane: plane.url, s3: s3.endpoint, region: plane.region }),
});
const watched = [];
plane.on('task-state-change', (change) => {
  if (change.detail.lastStatus !== 'STOPPED') return;
  const verdict = watchdog(change, { getRemainingTimeInMillis: () => 60_000 }).then(
    (decision) => {
      if (decision.action !== 'succeeded') {
        line(
          'watch',
          `task ${short(change.detail.taskArn.split('/').pop())} (${change.detail.stopCode}): ${decision.action}${
            decision.action === 'relaunched'
              ? ` as task ${short(decision.taskArn.split('/').pop())}, attempt ${decision.attempt}, on-demand`
              : ''
          } — ${decision.reason}`,
        );
      }
      return decision;
    },
    (caught) => {
      line('watch', `FAILED to follow up task ${change.detail.taskArn}: ${caught.message}`);
      return { action: 'error' };
    },
  );
  watched.push(verdict);
});
let interrupted = false;
plane.on('task-started', (task) => {
  line(
    'ecs',
    `task ${short(task.id)} RUNNING (${task.capacityProvider}): immortal-runner started as a local process`,
  );
});
// The first task is interrupted as on Spot once its handler has run for --interrupt-after-ms,
// whatever the machine's speed: the story is the same on a loaded machine.
plane.on('task-log', ({ task, line: text }) => {
  describeRecord('runner', text);
  if (!interruptAfterMs || interrupted || !text.includes('Calling the handler')) return;
  interrupted = true;
  setTimeout(() => {
    line('ecs', `task ${short(task.id)}: Spot interruption (SIGTERM, SIGKILL after 2 s)`);
    plane.interruptTask(task.arn, { stopTimeoutMs: 2_000 });
  }, interruptAfterMs);
});
plane.on('task-stopped', (task) =>
  line('ecs', `task ${short(task.id)} STOPPED: exit code ${task.exitCode ?? 'none'} (${task.stoppedReason})`),
);

// The Lambda harness: lambda-local enforces the timeout. Its own log lines are not needed.
lambdaLocal.setLogger({ log: () => {}, transports: [] });

/** One invocation of the job, followed to its end; `prewarm` is FARGATE_FALLBACK_PREWARM_MS. */
async function invokeOnce(prewarm) {
  // The Lambda harness: lambda-local enforces the timeout. Its own log lines are not needed.
  const event = {
    reportId: 'Q3-2026',
    steps,
    stepMs,
    ...(eventKb > 0
      ? {
          rows: Array.from({ length: Math.ceil((eventKb * 1024) / 32) }, (_, i) =>
            `row ${i}`.padEnd(24, '.'),
          ),
        }
      : {}),
  };
  const patched = ['log', 'info', 'warn', 'error'];
  const saved = Object.fromEntries(patched.map((name) => [name, console[name]]));
  for (const name of patched) console[name] = (...args) => describeRecord('lambda', args.join(' '));
  // The wrapper writes its metric lines (EMF) straight to stdout, as Lambda needs them.
  const stdoutWrite = process.stdout.write;
  process.stdout.write = (chunk, ...rest) => {
    const text = String(chunk);
    if (text.startsWith('{') && text.includes('"_aws"')) {
      describeRecord('lambda', text.trim());
      return true;
    }
    return stdoutWrite.call(process.stdout, chunk, ...rest);
  };
  line('lambda', `invoking report-job with a ${seconds(timeoutMs)} timeout (lambda-local enforces it)`);
  let result;
  let error;
  let requestId;
  let outcome = 'unknown';
  let status;
  try {
    result = await lambdaLocal.execute({
      event,
      lambdaPath: join(here, 'dist', 'report', 'index.js'),
      lambdaHandler: 'handler',
      timeoutMs,
      verboseLevel: 3,
      environment: {
        ...environment,
        ...(interruptAfterMs ? { FARGATE_FALLBACK_CAPACITY: 'FARGATE_SPOT' } : {}),
        FARGATE_FALLBACK_PREWARM_MS: String(prewarm),
        AWS_LAMBDA_FUNCTION_NAME: 'report-job',
        AWS_LAMBDA_FUNCTION_VERSION: fn.version,
        _HANDLER: 'index.handler',
        REPORT_TITLE: 'Quarterly report',
        FARGATE_FALLBACK_MARGIN_MS: String(marginMs),
      },
      contextOverwrite: (context) => {
        context.functionName = 'report-job';
        context.functionVersion = fn.version;
        context.invokedFunctionArn = `${fn.arn}:${fn.version}`;
        context.memoryLimitInMB = '1024';
        requestId = context.awsRequestId;
        line('lambda', `invocation ${short(requestId)} started`);
      },
    });
  } catch (caught) {
    error = caught;
  } finally {
    for (const name of patched) console[name] = saved[name];
    process.stdout.write = stdoutWrite;
  }

  if (error) {
    await fail(
      `the invocation failed in Lambda: ${error.errorType ?? error.name}: ${error.errorMessage ?? error.message}`,
    );
  }
  if (result?.status !== 'handed-off') {
    line('lambda', `invocation ${short(requestId)} finished in Lambda: ${JSON.stringify(result)}`);
    outcome = 'completed in Lambda, no task started';
    if (plane.tasks().some((task) => task.startedBy === `immortal-lambda/${requestId}`))
      await fail('a task was started although the job finished in Lambda');
  } else {
    line(
      'lambda',
      `invocation ${short(requestId)} returned the handoff receipt before its timeout: task ${short(result.taskArn.split('/').pop())}`,
    );
    // Follow the invocation by its records, as a status route would, until it has a result.
    const deadline = Date.now() + steps * stepMs * 3 + 60_000;
    let last;
    while (Date.now() < deadline) {
      status = await getInvocationStatus(
        { functionName: 'report-job', requestId },
        { bucket: s3.bucket, s3Client: operatorS3 },
      );
      const now = status
        ? `${status.status} (attempt ${status.attempts}${status.error?.retryable ? ': stopped before a result, the watchdog may relaunch it' : ''})`
        : 'no record';
      if (now !== last) line('status', `getInvocationStatus: ${now}`);
      last = now;
      if (
        status &&
        (status.status === 'succeeded' || (status.status === 'failed' && !status.error?.retryable))
      )
        break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await Promise.all(watched);
    const finalTask = status?.taskArn ?? result.taskArn;
    await plane.waitForTask(finalTask, 30_000).catch((e) => fail(e.message));
    const ecs = new ECSClient({
      ...bounded,
      endpoint: plane.url,
      region: plane.region,
      credentials: { accessKeyId: deployment.operatorKey, secretAccessKey: 'local' },
    });
    const described = await ecs.send(
      new DescribeTasksCommand({ cluster: deployment.cluster, tasks: [finalTask] }),
    );
    const container = described.tasks?.[0]?.containers?.[0];
    line(
      'ecs',
      `DescribeTasks ${short(finalTask.split('/').pop())}: ${described.tasks?.[0]?.lastStatus}, container exit code ${container?.exitCode}`,
    );
    if (status?.status !== 'succeeded') {
      await fail(
        `the invocation ended ${status?.status ?? 'without a record'}: ${status?.error?.message ?? ''}`,
      );
    }
    line('status', `result: ${JSON.stringify(status.result)}`);
    const t = status.timeline;
    if (t) {
      const at = (ms) => `${ms >= t.handoffAt ? '+' : '−'}${Math.abs(ms - t.handoffAt)} ms`;
      line(
        'status',
        `timeline from the handoff (− is before it): runner process started ${at(t.processStartedAt)}, code ready ${at(t.codeReadyAt)}${
          t.resumedAt ? `, told to go ${at(t.resumedAt)}` : ''
        }, handler called ${at(t.handlerCalledAt)}: dead time ${t.deadTimeMs} ms`,
      );
    }
    if (status.steps) {
      line(
        'status',
        `steps: ${status.steps.inLambda} finished in Lambda before the handoff, ${status.steps.fromJournal} answered from the journal by the last attempt (not run again), ${status.steps.total} in all`,
      );
    }
    outcome = `outlived its ${seconds(timeoutMs)} timeout and finished on Fargate with the same request id ${short(requestId)}${
      status.attempts > 1 ? `, after ${status.attempts - 1} relaunch${status.attempts > 2 ? 'es' : ''}` : ''
    }`;
  }
  return { outcome, status };
}

if (prewarmMs > 0) {
  line('demo', 'run 1 of 2: cold (the task is started at the handoff)');
  const cold = await invokeOnce(0);
  line('demo', `run 2 of 2: pre-warmed (the task is started ${seconds(prewarmMs)} before the handoff)`);
  const warm = await invokeOnce(prewarmMs);
  const dead = (run) => run.status?.timeline?.deadTimeMs;
  line(
    'demo',
    `dead time (handoff began in Lambda → handler called in the runner): cold ${dead(cold)} ms, pre-warmed ${dead(warm)} ms`,
  );
  // Judged against the cold run of the same machine, now: a loaded machine is slow for both.
  if (!(dead(warm) < dead(cold)))
    await fail(`the pre-warmed dead time was ${dead(warm)} ms, not less than the cold ${dead(cold)} ms`);
  outcome = `${warm.outcome}; pre-warmed, the runner called the handler ${dead(warm)} ms after the handoff began (cold: ${dead(cold)} ms)`;
} else {
  ({ outcome } = await invokeOnce(0));
}

// The watchdog follows every stopped task, the last one too: it finishes before the plane goes.
for (let seen = -1; seen !== watched.length; ) {
  seen = watched.length;
  await Promise.allSettled(watched);
}
// S3 asks itself whether a caller may list the whole bucket before it answers a missing key:
// the roles may not, and that refusal is how a missing key becomes 403. Any other refusal fails.
const refused = deployment.refused.filter((call) => !isBucketWideListing(call));
const decided = [...plane.audit, ...s3.audit].filter((call) => call.accessKeyId !== deployment.operatorKey);
line('iam', `${decided.length} calls decided by the synthesised policies, ${refused.length} refused`);
if (refused.length > 0)
  await fail(
    `a call the deployment's roles may not make: ${refused.map((c) => `${c.action} on ${c.resource}`).join('; ')}`,
  );
await plane.stop();
await s3.stop();
write(`\ndemo: OK — the invocation ${outcome}.\n`);
process.exit(0);
