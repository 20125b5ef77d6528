// A burst of long invocations at AWS's real rates: N invocations through the built wrapper,
// spread over worker processes as Lambda spreads them over sandboxes, against the local plane
// with `limits: 'aws'` (RunTask 20 calls a second, Fargate launches 100 burst and 20 a second).
// Each hands off 2 s in, 10 s before its deadline. They start as Lambda can start them
// (`--arrival lambda`, the default: one function gains at most 1,000 execution environments every
// 10 s, refilled continuously, so the first 1,000 start at once and the rest at 100 a second) or
// all at once (`--arrival instant`). Measured twice in the same run: with the launch queue (the
// construct's default: the plane runs the launcher as its event source mapping would) and, as the
// baseline, without it (RunTask retried until the deadline).
//
// Every worker process, the plane and the S3 emulator share this machine's cores; on AWS each
// sandbox has its own, and ECS, SQS and S3 run on machines of their own, whatever the burst's
// sandboxes spend. S3 runs in a process of its own (`s3-process.ts`), so that the records the burst
// writes are not answered on the thread that answers RunTask and SendMessage. The workers are 4 by
// default (`--workers`): each process warms up on its own (the SDK's code compiled as its calls
// run) and the processes switch on the same cores, so the more workers, the more CPU per invocation
// (at N = 1,000, the same hour: 5.3, 6.5, 7.2 and 10.3 ms with 2, 4, 8 and 16), which the plane and
// S3 then lack; on AWS a sandbox pays its warm-up on its own CPU. `--nice 10` runs the worker
// processes at a lower priority (the default, 0, shares the cores evenly): the plane then answers
// as promptly as the machine allows, and what the cores lack falls on the sandboxes, as their own
// timers running late (`machine:` below) instead of the plane's answers coming late. And the
// handoff latency is also measured as one sandbox sees it: while the launcher still drains the
// burst (RunTask throttled), `--probes` fresh processes run one invocation each, about one handoff
// a second (four at a time, staggered), through the built wrapper with its defaults. A `machine:`
// line says what the run cost this machine: how busy its cores were in each second from the go to
// the first invocations' deadline (near 100 %, the run measures the machine as much as the
// library), the sandboxes' CPU per invocation, the plane's, S3's, and how late each process's
// timers ran at worst. `BURST_DEBUG=1` adds each worker's SDK calls (time, errors) and its first
// errors, which second of the burst the failed and late handoffs fell in, how many tasks started in
// each second after the first handoff, and S3's calls by action; `BURST_PROFILE=<dir>` writes a CPU
// profile of each worker there. Run it on Node 22.12 or later: the plane then listens on 8 sockets
// sharing its port; on Node 20, on one, and a busy plane accepts one connection per turn of its
// event loop, so the burst's connections wait seconds to be accepted.
//
//   pnpm --filter @immortal-lambda/examples bench:burst [-- --n 1000,5000 --workers 4 --arrival lambda --probes 50 --nice 0]
import { fork } from 'node:child_process';
import { Agent } from 'node:http';
import { setPriority } from 'node:os';
import { parseArgs } from 'node:util';
import { ECSClient } from '@aws-sdk/client-ecs';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { LocalControlPlane, NoLauncher } from '@immortal-lambda/local';
import { type HandoffAnswer, withFargateFallback } from '@immortal-lambda/middleware';
import { launchQueued } from '@immortal-lambda/middleware/safety-net';
import type { SQSEvent } from 'aws-lambda';
import {
  type Arrival,
  arrivalOffset,
  callSummary,
  countBy,
  type MachineBusy,
  machineBusy,
  measureLoad,
  type ProcessLoad,
  percentile,
  runProbes,
  sortedLatencies,
  timeCalls,
} from './burst-parts.js';
import { burstContext } from './retried-burst.js';
import { type S3Process, startS3Process } from './s3-process.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const MARGIN_MS = 10_000;
const REMAINING_MS = 12_000;
const BUCKET = 'burst-records';
const QUEUE = 'launches';
/** RunTask's rate for Fargate: one task per call, so the burst starts at most this many a second. */
const TASKS_PER_SECOND = 20;
interface WorkerJob {
  ids: string[];
  /** When each invocation starts, in ms after the go. */
  offsets: number[];
  env: Record<string, string>;
  s3Endpoint: string;
  planeUrl: string;
}

/** What a worker sends back: its answers, and what it spent. */
interface WorkerResult {
  answers: Answer[];
  load: ProcessLoad;
}

interface Answer {
  id: string;
  status: 'handed-off' | 'queued' | 'error';
  error?: string;
  latencyMs: number;
  /** When the handoff was due (epoch ms). */
  handOffAt: number;
  lateBy: number;
}

/**
 * One worker: its share of the burst, as many sandboxes would run them. It loads everything
 * first and says so; the invocations start when the go comes (every worker at once), each at its
 * offset.
 */
async function runWorker(job: WorkerJob, ready: () => Promise<number>): Promise<Answer[]> {
  // A sandbox's environment is the function's: the SDK clients the handoff makes read it.
  Object.assign(process.env, job.env);
  // The plane takes any key; S3's emulator its own.
  const credentials = { accessKeyId: 'function', secretAccessKey: 'local' };
  const s3Credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const agent = new Agent({ keepAlive: true, maxSockets: job.ids.length });
  let shown = 0;
  const common = { region: 'eu-west-1', maxAttempts: 1, requestHandler: { httpAgent: agent } };
  const clients = {
    ecs: new ECSClient({ ...common, endpoint: job.planeUrl, credentials }),
    s3: new S3Client({
      ...common,
      endpoint: job.s3Endpoint,
      forcePathStyle: true,
      credentials: s3Credentials,
    }),
    // The launch queue is the plane's: its key is the function's.
    sqs: new SQSClient({ ...common, endpoint: job.planeUrl, credentials, useQueueUrlAsEndpoint: false }),
  };
  if (process.env.BURST_DEBUG) for (const client of Object.values(clients)) timeCalls(client);
  const handler = withFargateFallback(
    (_event: unknown, _context, { signal }) =>
      new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    {
      env: job.env,
      marginMs: MARGIN_MS,
      metrics: false,
      logger: {
        info: () => {},
        // The first few errors of each worker, with BURST_DEBUG.
        error: (message: string, attributes?: Record<string, unknown>) => {
          shown += 1;
          if (process.env.BURST_DEBUG && shown <= 3)
            console.error(`  worker ${process.pid}: ${message} ${JSON.stringify(attributes)}`);
        },
      },
      ecsClient: clients.ecs,
      s3Client: clients.s3,
      sqsClient: clients.sqs,
    },
  );
  const goAt = await ready();
  return Promise.all(
    job.ids.map(async (id, i) => {
      await new Promise((resolve) => setTimeout(resolve, goAt + (job.offsets[i] ?? 0) - Date.now()));
      const deadline = Date.now() + REMAINING_MS;
      const handOffAt = deadline - MARGIN_MS;
      const settle = (status: Answer['status'], error?: string): Answer => ({
        id,
        status,
        ...(error ? { error } : {}),
        latencyMs: Date.now() - handOffAt,
        handOffAt,
        lateBy: Date.now() - deadline,
      });
      try {
        const answer = (await handler({ id }, burstContext(id, deadline) as never)) as HandoffAnswer;
        if (process.env.BURST_DEBUG) console.error(`  ${id}: ${answer.status}`);
        return settle(answer.status);
      } catch (error) {
        return settle('error', `${(error as Error).name}: ${(error as Error).message}`);
      }
    }),
  );
}

/**
 * Runs the burst's invocations in `workers` processes: each loads first, then all start together
 * (the go 0.5 s after the last is ready), each invocation at its arrival offset.
 */
async function runWorkers(
  ids: string[],
  setup: Pick<BurstSetup, 'workers' | 'arrival' | 'nice'>,
  job: Omit<WorkerJob, 'ids' | 'offsets'>,
): Promise<{ answers: Answer[]; loads: ProcessLoad[]; busy: MachineBusy }> {
  const { workers, arrival } = setup;
  const children = Array.from({ length: workers }, (_, w) => {
    const share = ids.map((_, k) => k).filter((k) => k % workers === w);
    const child = fork(process.argv[1] as string, ['--worker'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      ...(process.env.BURST_PROFILE
        ? { execArgv: [...process.execArgv, '--cpu-prof', `--cpu-prof-dir=${process.env.BURST_PROFILE}`] }
        : {}),
    });
    // `--nice`: the plane goes first, as AWS's services do not share the sandboxes' CPU.
    if (setup.nice > 0 && child.pid !== undefined) setPriority(child.pid, setup.nice);
    const ready = new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('error', reject);
    });
    child.send({
      ...job,
      ids: share.map((k) => ids[k] as string),
      offsets: share.map((k) => arrivalOffset(k, arrival)),
    } satisfies WorkerJob);
    return { child, ready };
  });
  await Promise.all(children.map(({ ready }) => ready));
  const goAt = Date.now() + 500;
  // The machine while the burst's first invocations run: from the go to their deadline.
  const busy = machineBusy(goAt, REMAINING_MS / 1000);
  const results = await Promise.all(
    children.map(
      ({ child }) =>
        new Promise<WorkerResult>((resolve) => {
          child.once('message', (message) => {
            resolve(message as WorkerResult);
            if (!process.env.BURST_PROFILE) child.kill();
          });
          child.send({ goAt });
        }),
    ),
  );
  return {
    answers: results.flatMap((r) => r.answers),
    loads: results.map((r) => r.load),
    busy: await busy,
  };
}

/** How the burst runs on this machine (see the header). */
interface BurstSetup {
  workers: number;
  arrival: Arrival;
  probes: number;
  /** The worker processes' nice value: 0 shares the cores evenly with the plane. */
  nice: number;
}

/** The burst, in `workers` processes, against a plane with AWS's limits; with or without the launch queue. */
async function burst(n: number, setup: BurstSetup, withQueue: boolean) {
  const { probes } = setup;
  const s3: S3Process = await startS3Process(BUCKET);
  const plane = new LocalControlPlane({ launcher: new NoLauncher(), limits: 'aws', s3Endpoint: s3.endpoint });
  await plane.start();
  try {
    const queueUrl = plane.queues.create(QUEUE, {
      visibilityTimeoutMs: 720_000,
      maxReceiveCount: 5,
      deadLetterQueue: `${QUEUE}-dlq`,
    });
    const launcherCredentials = { accessKeyId: 'launcher', secretAccessKey: 'local' };
    const launcher = launchQueued({
      ecsClient: new ECSClient({
        endpoint: plane.url,
        region: plane.region,
        credentials: launcherCredentials,
      }),
      s3Client: new S3Client({
        endpoint: s3.endpoint,
        region: plane.region,
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      }),
      logger: {
        info: () => {},
        error: (message, attributes) => {
          if (process.env.BURST_DEBUG) console.error(`  launcher: ${message} ${JSON.stringify(attributes)}`);
        },
      },
    });
    plane.queues.consume(
      queueUrl,
      (event) => launcher(event as unknown as SQSEvent, { getRemainingTimeInMillis: () => 120_000 }),
      {
        batchSize: 10,
        maxConcurrency: 2,
      },
    );
    const env = {
      ...plane.environment({ s3Endpoint: s3.endpoint, bucket: BUCKET }),
      AWS_ACCESS_KEY_ID: 'function',
      AWS_LAMBDA_FUNCTION_VERSION: '1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...(withQueue ? { FARGATE_FALLBACK_LAUNCH_QUEUE: queueUrl } : {}),
    };
    const stamp = Date.now().toString(36);
    const ids = Array.from({ length: n }, (_, i) => `burst-${stamp}-${i}`);
    const load = measureLoad();
    const { answers, loads, busy } = await runWorkers(ids, setup, {
      env,
      s3Endpoint: s3.endpoint,
      planeUrl: plane.url,
    });
    const planeLoad = load.stop();
    const s3Load = await s3.load();
    // The burst's clock: from its first handoff (the workers' own start-up left out).
    const firstHandoff = Math.min(...answers.map((a) => a.handOffAt));
    const secondOf = (at: number) => String(Math.floor((at - firstHandoff) / 1000));
    if (process.env.BURST_DEBUG) {
      const bySecond = (some: Answer[]) => JSON.stringify(countBy(some.map((a) => secondOf(a.handOffAt))));
      console.error(
        `  errors by second of handoff: ${bySecond(answers.filter((a) => a.status === 'error'))}`,
      );
      const late = answers.filter((a) => a.lateBy >= 0);
      console.error(`  late by second of handoff: ${bySecond(late)}`);
      const lateBy = late.map((a) => a.lateBy).sort((a, b) => a - b);
      console.error(
        `  late answers: ${JSON.stringify(countBy(late.map((a) => a.status)))}, by p50 ${percentile(lateBy, 0.5)} max ${lateBy.at(-1)} ms`,
      );
    }
    // One sandbox's view, while the launcher drains the burst.
    const probeAnswers = await runProbes(probes, stamp, {
      ...env,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      FARGATE_FALLBACK_MARGIN_MS: String(MARGIN_MS),
    });
    // The queued ones start as the launcher drains the queue.
    const queued = answers.filter((a) => a.status === 'queued').length;
    const waitUntil = Date.now() + 10 * 60_000;
    let shown = 0;
    while (
      Date.now() < waitUntil &&
      (plane.queues.depth(queueUrl) > 0 ||
        startedIds(plane).size < n + probes - errors(answers) - errors(probeAnswers))
    ) {
      if (process.env.BURST_DEBUG && Date.now() - shown > 5_000) {
        shown = Date.now();
        console.error(
          `  in the queue ${plane.queues.depth(queueUrl)}, ids with a task ${startedIds(plane).size}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const s3Calls = await s3.calls();
    const tasksById = new Map<string, number>();
    for (const task of plane.tasks()) {
      const id = String(task.startedBy).replace('immortal-lambda/', '');
      tasksById.set(id, (tasksById.get(id) ?? 0) + 1);
    }
    // The burst's own tasks: the probes start theirs one after another, as they run.
    const lastStart = Math.max(
      ...plane
        .tasks()
        .filter((task) => String(task.startedBy).includes('burst-'))
        .map((task) => task.createdAt),
    );
    if (process.env.BURST_DEBUG) {
      const starts = plane.tasks().map((task) => secondOf(task.createdAt));
      console.error(`  tasks started by second after the first handoff: ${JSON.stringify(countBy(starts))}`);
      console.error(`  S3 calls: ${JSON.stringify(countBy(s3Calls.map((call) => call.action)))}`);
    }
    const latencies = sortedLatencies(answers);
    const probeLatencies = sortedLatencies(probeAnswers);
    const everyone = [...answers, ...probeAnswers];
    // The functions' calls: to the plane (ECS, SQS) by their key; to S3, the records they write
    // (the launcher's `launched` records left out).
    const fnCalls =
      // (a RunTask with tags is also authorised as ecs:TagResource and iam:PassRole: one call)
      plane.audit.filter(
        (call) => call.accessKeyId === 'function' && !/^(ecs:TagResource|iam:PassRole)$/.test(call.action),
      ).length +
      s3Calls.filter(
        (call) =>
          call.action === 's3:PutObject' &&
          !call.resource.endsWith('/launched.json') &&
          !call.resource.includes('probe-'),
      ).length;
    const rateErrors = answers.filter(
      (a) =>
        a.status === 'error' &&
        /HandoffError/.test(a.error ?? '') &&
        /Rate exceeded|Throttl/.test(a.error ?? ''),
    ).length;
    return {
      withQueue,
      n,
      handedOff: answers.filter((a) => a.status === 'handed-off').length,
      queued,
      handoffErrors: answers.filter((a) => a.status === 'error').length,
      rateErrors,
      lost: everyone.filter((a) => a.status !== 'error' && !tasksById.has(a.id)).length,
      doubled: [...tasksById.values()].filter((count) => count > 1).length,
      late: answers.filter((a) => a.lateBy >= 0).length,
      // From the first handoff to the last task's start.
      lastTaskAfterS: (lastStart - firstHandoff) / 1000,
      // The rate is shared: the probes' tasks started meanwhile count with the burst's.
      allowedS: (plane.tasks().filter((task) => task.createdAt <= lastStart).length / TASKS_PER_SECOND) * 1.1,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      probe: {
        p50: percentile(probeLatencies, 0.5),
        p99: percentile(probeLatencies, 0.99),
        statuses: countBy(probeAnswers.map((a) => a.status)),
        slowest: probeAnswers
          .filter((a) => a.latencyMs !== undefined)
          .sort((a, b) => (a.latencyMs ?? 0) - (b.latencyMs ?? 0))
          .slice(-5)
          .map((a) => `${a.latencyMs} (${a.status})`),
        errors: probeAnswers.flatMap((a) => (a.error ? [a.error] : [])),
      },
      callsPerHandoff: fnCalls / n,
      // The machine's share: how busy its cores were, the sandboxes' CPU per invocation, the
      // plane's and S3's, and the worst late timers.
      machine: {
        busy,
        sandboxCpuMsPerInvocation: loads.reduce((sum, l) => sum + l.cpuMs, 0) / n,
        sandboxLoopDelayMaxMs: Math.max(...loads.map((l) => l.loopDelayMaxMs)),
        plane: planeLoad,
        s3: s3Load,
      },
      refused: Object.fromEntries(plane.limiter.refused),
      // What the failed handoffs said, their numbers left out.
      errorKinds: countBy(
        answers.flatMap((a) => (a.error ? [a.error.replace(/\d+/g, 'N').slice(0, 160)] : [])),
      ),
    };
  } finally {
    await plane.stop();
    await s3.stop();
  }
}

/** An option that is a whole number from `min` to `max`; a clear error otherwise. */
function wholeNumber(name: string, text: string, min: number, max = Number.POSITIVE_INFINITY): number {
  const value = Number(text);
  if (Number.isInteger(value) && value >= min && value <= max) return value;
  throw new Error(
    `${name} is a whole number from ${min}${max === Number.POSITIVE_INFINITY ? ' up' : ` to ${max}`}, not ${text}`,
  );
}

const startedIds = (plane: LocalControlPlane) => new Set(plane.tasks().map((task) => String(task.startedBy)));
const errors = (answers: { status: string }[]) => answers.filter((a) => a.status === 'error').length;
if (process.argv.includes('--worker')) {
  process.once('message', async (job) => {
    const go = () =>
      new Promise<number>((resolve) => {
        process.once('message', (message) => resolve((message as { goAt: number }).goAt));
        process.send?.('ready');
      });
    const load = measureLoad();
    const answers = await runWorker(job as WorkerJob, go);
    const spent = load.stop();
    if (process.env.BURST_DEBUG)
      for (const line of callSummary()) console.error(`  worker ${process.pid} ${line}`);
    process.send?.({ answers, load: spent } satisfies WorkerResult, () => {
      if (process.env.BURST_PROFILE) process.exit(0);
    });
  });
} else {
  const { values } = parseArgs({
    // pnpm passes its own `--` on to the script.
    args: process.argv.slice(2).filter((arg) => arg !== '--'),
    options: {
      n: { type: 'string', default: '1000,5000' },
      workers: { type: 'string', default: '4' },
      arrival: { type: 'string', default: 'lambda' },
      probes: { type: 'string', default: '50' },
      nice: { type: 'string', default: '0' },
    },
  });
  const arrival = values.arrival as Arrival;
  if (arrival !== 'lambda' && arrival !== 'instant') throw new Error('--arrival is lambda or instant');
  const nice = wholeNumber('--nice', values.nice, 0, 19);
  const workers = wholeNumber('--workers', values.workers, 1);
  const setup: BurstSetup = { workers, arrival, probes: Number(values.probes), nice };
  console.info(
    `Burst at AWS's rates (limits: 'aws'), ${setup.workers} worker processes at nice ${nice}, arrival ${arrival}, margin ${MARGIN_MS / 1000} s, ${setup.probes} probe sandboxes, Node ${process.version}\n`,
  );
  console.info(
    '| launch queue | N | handed off | queued | HandoffError (by rate) | lost | doubled | late | last task started | allowed (rate + 10 %) | handoff p50 / p99, one sandbox (probes) | handoff p50 / p99, all on this machine | calls per handoff |',
  );
  console.info('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const n of String(values.n).split(',').map(Number)) {
    for (const withQueue of process.env.BURST_ONLY_QUEUE ? [true] : [false, true]) {
      const r = await burst(n, setup, withQueue);
      console.info(
        `| ${withQueue ? 'yes' : 'no (baseline)'} | ${n} | ${r.handedOff} | ${r.queued} | ${r.handoffErrors} (${r.rateErrors}) | ${r.lost} | ${r.doubled} | ${r.late} | ${r.lastTaskAfterS.toFixed(1)} s | ${r.allowedS.toFixed(1)} s | ${r.probe.p50} / ${r.probe.p99} ms | ${r.p50} / ${r.p99} ms | ${r.callsPerHandoff.toFixed(2)} |`,
      );
      console.error(`  refused by the plane's limits: ${JSON.stringify(r.refused)}`);
      console.error(
        `  machine: its ${r.machine.busy.cores} cores busy ${r.machine.busy.busy.map((b) => Math.round(b * 100)).join(' ')} % in each second from the go to the first deadlines; sandboxes' CPU ${r.machine.sandboxCpuMsPerInvocation.toFixed(1)} ms per invocation, their event loops up to ${r.machine.sandboxLoopDelayMaxMs} ms late; plane and launcher ${(r.machine.plane.cpuMs / 1000).toFixed(1)} s CPU, up to ${r.machine.plane.loopDelayMaxMs} ms late; S3 ${(r.machine.s3.cpuMs / 1000).toFixed(1)} s CPU, up to ${r.machine.s3.loopDelayMaxMs} ms late`,
      );
      console.error(
        `  probes: ${JSON.stringify(r.probe.statuses)}, slowest ${r.probe.slowest.join(', ')} ms ${r.probe.errors.slice(0, 3).join('; ')}`,
      );
      console.error(`  errors: ${JSON.stringify(r.errorKinds)}`);
    }
  }
}
