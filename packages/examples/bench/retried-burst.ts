// The handoff bursts against a local control plane that throttles a share of RunTask calls and
// fails another share for capacity: 1,000 concurrent invocations handing off at once, and the
// retried-id burst, where every request id is invoked twice (a Lambda retry), sequentially or
// concurrently. Counts what happened to each id. `pnpm --filter
// @immortal-lambda/examples bench` prints it for several seeds; the end-to-end tests assert it.
import { Agent } from 'node:http';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ECSClient } from '@aws-sdk/client-ecs';
import { LocalControlPlane, NoLauncher } from '@immortal-lambda/local';
import { type HandoffReceipt, withFargateFallback } from '@immortal-lambda/middleware';

export interface RetriedBurstOptions {
  ids: number;
  /** `once`: each id invoked once; `sequential`/`concurrent`: twice, as a Lambda retry would. */
  mode: 'once' | 'sequential' | 'concurrent';
  seed: number;
  capacity: number;
  throttle: number;
  /** Whether the plane remembers client tokens whose RunTask answered only failures (ECS does not say). */
  rememberFailedTokens?: boolean;
  timeoutMs?: number;
  marginMs?: number;
}

export interface RetriedBurstCounts {
  ids: number;
  invocations: number;
  handedOff: number;
  handoffErrors: number;
  /** Invocations that answered after their deadline. */
  late: number;
  /** Ids with more than one task left running (a duplicate stopped at once is not counted). */
  doubled: number;
  /** Duplicates that a concurrent attempt started and stopped again at once. */
  duplicatesStopped: number;
  /** Ids whose every attempt failed while a task of theirs runs. */
  orphaned: number;
  /** Handed-off invocations whose receipt names a task other than the id's running one. */
  wrongReceipt: number;
}

/** A small seeded generator, so faults fall the same way for the same seed. */
export function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A Lambda-shaped context for request `id` that times out at `deadline` (epoch ms). */
export function burstContext(id: string, deadline: number) {
  return {
    awsRequestId: id,
    functionName: 'report-job',
    functionVersion: '1',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report-job',
    memoryLimitInMB: '1024',
    logGroupName: '/aws/lambda/report-job',
    logStreamName: 'burst',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

type Outcome = { id: string; receipt?: HandoffReceipt; error?: Error; lateBy: number };

export async function runRetriedBurst(options: RetriedBurstOptions): Promise<RetriedBurstCounts> {
  const timeoutMs = options.timeoutMs ?? 3_000;
  const marginMs = options.marginMs ?? 1_500;
  const plane = new LocalControlPlane({
    launcher: new NoLauncher(),
    random: mulberry32(options.seed),
    rememberFailedTokens: options.rememberFailedTokens ?? false,
  });
  await plane.start();
  try {
    plane.faults = { capacity: options.capacity, throttle: options.throttle, latencyMs: 5 };
    const handler = withFargateFallback(
      (_event: unknown, _context, { signal }) =>
        new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      {
        env: { ...plane.environment(), AWS_LAMBDA_FUNCTION_VERSION: '1' },
        marginMs,
        logger: { info: () => {}, error: () => {} },
        random: mulberry32(options.seed + 1),
        // Each invocation would have its own sandbox and connections: no shared socket pool.
        ecsClient: new ECSClient({
          endpoint: plane.url,
          region: plane.region,
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
          maxAttempts: 1,
          requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 2 * options.ids }) },
        }),
      },
    );
    const invoke = (id: string): Promise<Outcome> => {
      const deadline = Date.now() + timeoutMs;
      const context = burstContext(id, deadline);
      return handler({ id }, context).then(
        (receipt) => ({ id, receipt: receipt as HandoffReceipt, lateBy: Date.now() - deadline }),
        (error: Error) => ({ id, error, lateBy: Date.now() - deadline }),
      );
    };
    const stamp = Date.now().toString(36);
    const ids = Array.from({ length: options.ids }, (_, i) => `retried-${stamp}-${i}`);
    const outcomes = (
      await Promise.all(
        ids.map(async (id) =>
          options.mode === 'once'
            ? [await invoke(id)]
            : options.mode === 'concurrent'
              ? Promise.all([invoke(id), invoke(id)])
              : [await invoke(id), await invoke(id)],
        ),
      )
    ).flat();

    const running = new Map<string, string[]>();
    let duplicatesStopped = 0;
    for (const task of plane.tasks()) {
      const id = String(task.startedBy).replace('immortal-lambda/', '');
      if (task.desiredStatus === 'STOPPED' && /duplicate of/.test(task.stoppedReason ?? '')) {
        duplicatesStopped += 1;
        continue;
      }
      running.set(id, [...(running.get(id) ?? []), task.arn]);
    }
    const byId = new Map<string, Outcome[]>();
    for (const outcome of outcomes) byId.set(outcome.id, [...(byId.get(outcome.id) ?? []), outcome]);
    let orphaned = 0;
    let wrongReceipt = 0;
    for (const [id, list] of byId) {
      const tasks = running.get(id) ?? [];
      if (list.every((o) => o.error) && tasks.length > 0) orphaned += 1;
      for (const o of list) if (o.receipt && !tasks.includes(o.receipt.taskArn)) wrongReceipt += 1;
    }
    return {
      ids: options.ids,
      invocations: outcomes.length,
      handedOff: outcomes.filter((o) => o.receipt).length,
      handoffErrors: outcomes.filter((o) => o.error?.name === 'HandoffError').length,
      late: outcomes.filter((o) => o.lateBy >= 0).length,
      doubled: [...running.values()].filter((tasks) => tasks.length > 1).length,
      duplicatesStopped,
      orphaned,
      wrongReceipt,
    };
  } finally {
    await plane.stop();
  }
}

// Run as a script, not imported (by the tests, or the burst bench): its own path, whole.
const isMain =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) {
  const seeds = (process.env.BURST_SEEDS ?? '1,2,3').split(',').map(Number);
  const header = [
    '| mode | seed | invocations | handed off | HandoffError | late | doubled | duplicates stopped | orphaned | wrong receipt |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ].join('\n');
  const row = (mode: string, seed: number, c: RetriedBurstCounts) =>
    `| ${mode} | ${seed} | ${c.invocations} | ${c.handedOff} | ${c.handoffErrors} | ${c.late} | ${c.doubled} | ${c.duplicatesStopped} | ${c.orphaned} | ${c.wrongReceipt} |`;
  console.log(
    `Handoff burst: 1,000 concurrent long invocations, 30 % of RunTask calls throttled, 20 % short of capacity, Node ${process.version}\n`,
  );
  console.log(header);
  for (const seed of seeds) {
    // One process plays 1,000 sandboxes here, so the margin is wider than one sandbox needs.
    const c = await runRetriedBurst({
      ids: 1_000,
      mode: 'once',
      seed,
      capacity: 0.2,
      throttle: 0.3,
      timeoutMs: 10_000,
      marginMs: 6_000,
    });
    console.log(row('once', seed, c));
  }
  console.log(
    '\nRetried-id burst: 100 request ids, each invoked twice, 20 % capacity failures, 10 % throttling\n',
  );
  console.log(header);
  for (const mode of ['sequential', 'concurrent'] as const) {
    for (const seed of seeds) {
      console.log(
        row(mode, seed, await runRetriedBurst({ ids: 100, mode, seed, capacity: 0.2, throttle: 0.1 })),
      );
    }
  }
  console.log('\nTarget: 0 late, 0 doubled, 0 orphaned, 0 wrong receipts on every seed.');
}
