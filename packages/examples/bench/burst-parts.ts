// The parts of `burst.ts` that are not the burst itself: when Lambda can start each invocation,
// the probe sandboxes, and the figures.
import { execFile } from 'node:child_process';
import { cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const PROBE = fileURLToPath(new URL('./sandbox-probe.mjs', import.meta.url));

/** `lambda`: as fast as Lambda adds execution environments to one function; `instant`: all at once. */
export type Arrival = 'lambda' | 'instant';

/** Lambda's concurrency scaling per function: 1,000 execution environments, refilled over 10 s. */
const LAMBDA_SCALING = { burst: 1_000, perSecond: 100 };

/** When the k-th invocation of the burst starts, in ms after the first. */
export function arrivalOffset(k: number, arrival: Arrival): number {
  if (arrival === 'instant' || k < LAMBDA_SCALING.burst) return 0;
  return Math.ceil(((k - LAMBDA_SCALING.burst + 1) * 1_000) / LAMBDA_SCALING.perSecond);
}

export interface ProbeAnswer {
  id: string;
  status: 'handed-off' | 'queued' | 'error';
  latencyMs?: number;
  error?: string;
}

/** How many probe sandboxes run at once, each lane one after another, their handoffs staggered. */
export const PROBE_LANES = 4;
/** When a probe's handoff comes, after its process starts (`sandbox-probe.mjs`). */
const PROBE_HANDOFF_IN_MS = 4_000;

/**
 * `count` sandboxes, each a fresh process running one invocation (`sandbox-probe.mjs`), in
 * {@link PROBE_LANES} lanes started a quarter of a probe apart: about one handoff a second, so
 * that 50 probes fall within the launcher's drain of a 1,000 burst (about 50 s) instead of
 * mostly after it.
 */
export async function runProbes(
  count: number,
  stamp: string,
  env: Record<string, string>,
): Promise<ProbeAnswer[]> {
  const probeEnv: Record<string, string | undefined> = { ...process.env, ...env };
  // Lambda has no NODE_EXTRA_CA_CERTS; these machines do, and it slows every Node start.
  delete probeEnv.NODE_EXTRA_CA_CERTS;
  const answers: ProbeAnswer[] = [];
  const lane = async (first: number) => {
    await new Promise((resolve) => setTimeout(resolve, (first * PROBE_HANDOFF_IN_MS) / PROBE_LANES));
    for (let k = first; k < count; k += PROBE_LANES) {
      const { stdout } = await execFileAsync(process.execPath, [PROBE, `probe-${stamp}-${k}`], {
        env: probeEnv,
      });
      answers.push(JSON.parse(stdout.trim().split('\n').at(-1) as string) as ProbeAnswer);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PROBE_LANES, count) }, (_, first) => lane(first)));
  return answers;
}

export const sortedLatencies = (answers: { status: string; latencyMs?: number }[]) =>
  answers
    .flatMap((a) => (a.status !== 'error' && a.latencyMs !== undefined ? [a.latencyMs] : []))
    .sort((a, b) => a - b);
export const countBy = (values: string[]) =>
  Object.fromEntries([...new Set(values)].map((value) => [value, values.filter((v) => v === value).length]));
export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;

/** What a process of the burst spent: its CPU, and how late its event loop ran at worst. */
export interface ProcessLoad {
  cpuMs: number;
  loopDelayMaxMs: number;
}

/**
 * Measures a process's load from now until `stop()`: CPU time, and the worst delay of its event
 * loop (a timer firing late: the process did not get a core, or was busy).
 */
export function measureLoad(): { stop: () => ProcessLoad } {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const before = process.cpuUsage();
  return {
    stop: () => {
      loop.disable();
      const cpu = process.cpuUsage(before);
      return {
        cpuMs: Math.round((cpu.user + cpu.system) / 1000),
        loopDelayMaxMs: Math.round(loop.max / 1e6),
      };
    },
  };
}

/** How many cores the machine has, and the share of them busy in each second (see {@link machineBusy}). */
export interface MachineBusy {
  cores: number;
  busy: number[];
}

/**
 * How busy this machine's cores were in each second from `fromMs` (epoch ms) for `seconds`, all
 * processes counted: the share of the cores' time not idle, 0 to 1. Seconds near 1 are seconds
 * in which the run measured the machine as much as the library (see the header of `burst.ts`).
 */
export async function machineBusy(fromMs: number, seconds: number): Promise<MachineBusy> {
  const at = async (ms: number) => {
    await new Promise((resolve) => setTimeout(resolve, ms - Date.now()));
    return cpus().map(({ times }) => ({
      idle: times.idle,
      all: Object.values(times).reduce((a, b) => a + b, 0),
    }));
  };
  const busy: number[] = [];
  let before = await at(fromMs);
  for (let second = 1; second <= seconds; second += 1) {
    const after = await at(fromMs + second * 1_000);
    const idle = after.reduce((sum, core, i) => sum + core.idle - (before[i]?.idle ?? 0), 0);
    const all = after.reduce((sum, core, i) => sum + core.all - (before[i]?.all ?? 0), 0);
    busy.push(all > 0 ? 1 - idle / all : 0);
    before = after;
  }
  return { cores: before.length, busy };
}

/** Each SDK call's time and outcome, by command (`BURST_DEBUG`). */
const calls = new Map<string, { ms: number[]; errors: Record<string, number> }>();

/** Times each call a client sends (see {@link callSummary}). */
export function timeCalls(client: { send: (...args: never[]) => Promise<unknown> }): void {
  const send = client.send.bind(client);
  client.send = (async (...args: never[]) => {
    const name = (args[0] as unknown as object).constructor.name;
    const entry = calls.get(name) ?? { ms: [], errors: {} };
    calls.set(name, entry);
    const began = Date.now();
    try {
      return await send(...args);
    } catch (error) {
      const kind = (error as Error).name;
      entry.errors[kind] = (entry.errors[kind] ?? 0) + 1;
      throw error;
    } finally {
      entry.ms.push(Date.now() - began);
    }
  }) as typeof client.send;
}

/** One line per command timed by {@link timeCalls}: calls, p50 / p99 / max time, errors by name. */
export const callSummary = (): string[] =>
  [...calls].map(([name, { ms, errors }]) => {
    const sorted = [...ms].sort((a, b) => a - b);
    return `${name}: ${ms.length} calls, p50 ${percentile(sorted, 0.5)} p99 ${percentile(sorted, 0.99)} max ${sorted.at(-1)} ms, errors ${JSON.stringify(errors)}`;
  });
