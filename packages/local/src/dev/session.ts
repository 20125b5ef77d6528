import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Module } from 'node:module';
import { basename, delimiter, dirname, extname, join, resolve } from 'node:path';
import { ENV } from '@immortal-lambda/protocol';
import type { DevOptions } from '../dev.js';
import { ProcessLauncher } from '../launcher.js';
import type { LocalTask } from '../plane/model.js';
import { LocalControlPlane } from '../plane.js';
import { type LocalS3, startS3 } from '../s3.js';
import { bundle } from './bundle.js';
import { describeFinding, doneTwice, gather, readChaosLog } from './chaos.js';
import { runLambdaLeg } from './lambda-leg.js';
import type { Timeline } from './timeline.js';

/** How one run of the dev loop ended, and a line that says so. */
/** The Lambda timeout of a chaos run: Lambda's longest, so that only the chaos point hands off. */
const CHAOS_TIMEOUT_MS = 900_000;

/** How a run ended; the request id and whether it was handed off, once it was invoked. */
export type DevRun = { ok: boolean; summary: string; requestId?: string; handedOffAt?: number };

/**
 * One dev loop: the handler's name and build folder, a local control plane and S3 emulator,
 * the layers registered (and on NODE_PATH for the Lambda leg), and the runs. Each run reads as
 * build → register → event → Lambda leg → runner leg.
 */
export class DevSession {
  readonly plane: LocalControlPlane;
  readonly s3: LocalS3;
  readonly #options: DevOptions;
  readonly #timeline: Timeline;
  readonly #handlerFile: string;
  readonly #name: string;
  readonly #outDir: string;
  readonly #layerArns: string[];
  /** Told each line of the Lambda leg with its request id (the dashboard shows both legs). */
  onLambdaLine: ((requestId: string, line: string) => void) | undefined;

  private constructor(options: DevOptions, timeline: Timeline, plane: LocalControlPlane, s3: LocalS3) {
    this.#options = options;
    this.#timeline = timeline;
    this.plane = plane;
    this.s3 = s3;
    this.#handlerFile = resolve(options.handlerFile);
    // `src/report/index.ts` is the function `report`; `src/report.ts` too.
    const stem = basename(this.#handlerFile, extname(this.#handlerFile));
    this.#name =
      (stem === 'index' ? basename(dirname(this.#handlerFile)) : stem).replace(/[^A-Za-z0-9_-]/g, '-') ||
      'handler';
    // Beside the project's node_modules, so that the bundle resolves what it leaves external.
    this.#outDir = join(process.cwd(), 'node_modules', '.cache', 'immortal-local', this.#name);
    mkdirSync(this.#outDir, { recursive: true });
    this.#layerArns = (options.layers ?? []).map((folder, index) =>
      plane.registerLayer(`${this.#name}-layer-${index + 1}`, resolve(folder)),
    );
  }

  /** Starts the S3 emulator and the plane, puts the layers on NODE_PATH and follows the tasks on the timeline. */
  static async open(options: DevOptions, timeline: Timeline): Promise<DevSession> {
    process.setSourceMapsEnabled(true);
    const s3 = await startS3({ bucket: 'immortal-dev' });
    const plane = new LocalControlPlane({
      s3Endpoint: s3.endpoint,
      // The leg in Lambda and the runner get it in their environment; nothing else can sign.
      signingSecret: randomBytes(24).toString('base64url'),
      launcher: new ProcessLauncher(options.runner ? { cli: options.runner } : {}),
      provisioningMs: 50,
    });
    await plane.start();
    layersOnNodePath(options.layers ?? []);
    const session = new DevSession(options, timeline, plane, s3);
    const { line } = timeline;
    plane.on('task-started', (task: LocalTask) =>
      line('ecs', `task ${task.id.slice(0, 8)} RUNNING: the runner started`),
    );
    plane.on('task-log', ({ line: text }: { line: string }) => timeline.describe('runner', text));
    plane.on('task-stopped', (task: LocalTask) =>
      line(
        'ecs',
        `task ${task.id.slice(0, 8)} STOPPED: exit code ${task.exitCode ?? 'none'} (${task.stoppedReason})`,
      ),
    );
    return session;
  }

  /** FARGATE_FALLBACK_MARGIN_MS of the runs: as given, else a fifth of the timeout, at least 1 s. */
  get marginMs(): number {
    return this.#options.marginMs ?? Math.max(1_000, Math.round(this.#options.timeoutMs / 5));
  }

  /** Builds and registers the handler, then invokes it with the event: both legs on the timeline. */
  async runOnce(): Promise<DevRun> {
    const prepared = await this.#prepare();
    if ('failed' in prepared) return prepared.failed;
    return this.#invoke(prepared.fn, prepared.event);
  }

  /**
   * `--chaos <runs>`: builds once with the effect recorder in both legs, runs the handler once in
   * Lambda to learn how long it works, then `runs` times, each handed off at a random point of
   * that time, and reports the work outside `step()` that ran in both legs and the checkpoints the
   * runner recorded again.
   */
  async runChaos(runs: number, random: () => number = Math.random): Promise<DevRun> {
    const { line } = this.#timeline;
    const recorder = new URL('./chaos-recorder.js', import.meta.url);
    const log = join(this.#outDir, '..', 'chaos.jsonl');
    const { installChaosRecorder } = (await import(recorder.href)) as typeof import('./chaos-recorder.js');
    installChaosRecorder(log);
    const prepared = await this.#prepare({
      NODE_OPTIONS: `--enable-source-maps --import=${recorder.href}`,
      IMMORTAL_CHAOS_LOG: log,
    });
    if ('failed' in prepared) return prepared.failed;
    const started = Date.now();
    const first = await this.#invoke(prepared.fn, prepared.event);
    // The Lambda leg's time: until the handoff's receipt, or the end of a run that finished there.
    const workMs = Math.max(2, (first.handedOffAt ?? Date.now()) - started);
    line(
      'chaos',
      `the handler worked ${workMs} ms in Lambda; now ${runs} runs, each handed off at a random point of it`,
    );
    const findings: Parameters<typeof gather>[0] = [];
    let handedOff = 0;
    for (let run = 1; run <= runs; run++) {
      // Spread over the work: run k of n hands off at a random point of the k-th n-th of its
      // first 80 % (after that, a run may well finish in Lambda).
      const atMs = Math.max(1, Math.floor((workMs * 0.8 * (run - 1 + random())) / runs));
      line('chaos', `run ${run}/${runs}: handing off ${atMs} ms in`);
      const invokedAt = Date.now();
      // Under Lambda's longest timeout, so that the point asked for, not the margin, hands it off.
      const done = await this.#invoke(
        prepared.fn,
        prepared.event,
        { [ENV.maxInLambdaMs]: String(atMs) },
        CHAOS_TIMEOUT_MS,
      );
      if (!done.requestId) continue;
      if (done.handedOffAt) handedOff += 1;
      const found = done.handedOffAt
        ? doneTwice(readChaosLog(log).get(done.requestId) ?? [], {
            handoffBeganAt: invokedAt + atMs,
            handedOffAt: done.handedOffAt,
          })
        : [];
      findings.push(found);
      for (const finding of found) line('chaos', `  found: ${finding.kind} ${finding.target}`);
    }
    const gathered = gather(findings);
    for (const finding of gathered) line('chaos', describeFinding(finding));
    const summary = `${runs} chaos runs, ${handedOff} handed off: ${
      gathered.length === 0
        ? 'no work outside step() ran in both legs'
        : `${gathered.length} thing${gathered.length === 1 ? '' : 's'} done in both legs`
    }`;
    return { ok: first.ok && gathered.length === 0, summary };
  }

  /** Builds and registers the handler (with `environment` besides its own) and reads the event. */
  async #prepare(
    environment: Record<string, string> = {},
  ): Promise<{ fn: { version: string; arn: string }; event: unknown } | { failed: DevRun }> {
    const { line } = this.#timeline;
    const options = this.#options;
    this.#timeline.restart();
    const built = await bundle(this.#handlerFile, this.#outDir, options.external ?? []);
    if (!built.ok) {
      line('build', `esbuild could not bundle ${options.handlerFile}:\n${built.errors}`);
      return { failed: { ok: false, summary: 'the handler did not build' } };
    }
    line('build', `bundled ${options.handlerFile} (${(built.bytes / 1024).toFixed(1)} KB, source maps on)`);
    if (built.exports && !built.exports.includes(this.#exportName)) {
      line(
        'build',
        `${options.handlerFile} has no export named ${this.#exportName}: it exports ${built.exports.join(', ')}; name one with --export`,
      );
      return { failed: { ok: false, summary: `no export named ${this.#exportName}` } };
    }
    const fn = this.#register(environment);
    try {
      return { fn, event: JSON.parse(await readFile(options.eventFile, 'utf8')) };
    } catch (error) {
      line('dev', `the event file ${options.eventFile} is not JSON: ${(error as Error).message}`);
      return { failed: { ok: false, summary: 'no event' } };
    }
  }

  /** The run's line, and its exit code (0: completed in Lambda or on "Fargate"). */
  report(run: DevRun): number {
    this.#timeline.line(
      'dev',
      `${run.ok ? 'OK' : 'FAILED'}: ${run.summary}${this.#options.watch ? ' — watching for changes (Ctrl+C stops)' : ''}`,
    );
    return run.ok ? 0 : 1;
  }

  async close(): Promise<void> {
    await this.plane.stop();
    await this.s3.stop();
  }

  /**
   * The function as built last, with its layers. Stack traces in the runner name the TypeScript
   * source too: NODE_OPTIONS acts from the start of the handler's process, as on Lambda.
   */
  #register(environment: Record<string, string>) {
    const options = this.#options;
    return this.plane.registerFunction({
      name: this.#name,
      folder: this.#outDir,
      layers: this.#layerArns,
      handler: `index.${this.#exportName}`,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...options.environment, ...environment },
      timeout: Math.ceil(options.timeoutMs / 1000),
    });
  }

  get #exportName(): string {
    return this.#options.exportName ?? 'handler';
  }

  /** The Lambda leg, then, when it handed off, the runner leg until its task stops. */
  async #invoke(
    fn: { version: string; arn: string },
    event: unknown,
    extra: Record<string, string> = {},
    timeoutMs = this.#options.timeoutMs,
  ): Promise<DevRun> {
    const { line } = this.#timeline;
    const options = this.#options;
    let requestId = '';
    line(
      'lambda',
      `invoking ${this.#name} with a ${timeoutMs / 1000} s timeout, handoff margin ${this.marginMs / 1000} s`,
    );
    const end = await runLambdaLeg({
      name: this.#name,
      outDir: this.#outDir,
      exportName: this.#exportName,
      event,
      timeoutMs,
      environment: {
        ...this.plane.environment({ s3Endpoint: this.s3.endpoint, bucket: this.s3.bucket }),
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        AWS_LAMBDA_FUNCTION_NAME: this.#name,
        AWS_LAMBDA_FUNCTION_VERSION: fn.version,
        _HANDLER: `index.${this.#exportName}`,
        [ENV.marginMs]: String(this.marginMs),
        ...options.environment,
        ...extra,
      },
      fn,
      timeline: this.#timeline,
      captureStdout: !options.write,
      onLine: this.onLambdaLine,
      onRequestId: (id) => {
        requestId = id;
        line('lambda', `invocation ${requestId.slice(0, 8)} started`);
      },
    });
    if (!end.ok) {
      const { failure } = end;
      line(
        'lambda',
        `the invocation failed in Lambda: ${failure.errorType ?? 'Error'}: ${failure.errorMessage ?? failure.message}`,
      );
      for (const frame of failure.stackTrace ?? []) this.#timeline.write(`              ${frame}\n`);
      return { ok: false, summary: 'failed in Lambda', requestId };
    }
    // On Lambda the sandbox freezes once the receipt is returned: what the leg does after, it did late.
    const handedOffAt = Date.now();
    const receipt = end.result as { status?: string; taskArn?: string } | undefined;
    if (receipt?.status !== 'handed-off' || !receipt.taskArn) {
      line('lambda', `finished in Lambda: ${JSON.stringify(end.result)}`);
      return { ok: true, summary: 'completed in Lambda', requestId };
    }
    line('lambda', `returned the handoff receipt: task ${receipt.taskArn.split('/').pop()?.slice(0, 8)}`);
    const task = await this.plane.waitForTask(receipt.taskArn, 24 * 3_600_000);
    const handed = { requestId, handedOffAt };
    return task.exitCode === 0
      ? {
          ok: true,
          summary: `handed off and completed by the runner (request ${requestId.slice(0, 8)})`,
          ...handed,
        }
      : {
          ok: false,
          summary: `the runner exited ${task.exitCode} (request ${requestId.slice(0, 8)})`,
          ...handed,
        };
  }
}

/** The Lambda leg runs in this process: its layers resolve as under /opt on Lambda (NODE_PATH). */
function layersOnNodePath(layers: readonly string[]): void {
  const major = process.versions.node.split('.')[0];
  const paths = layers.flatMap((folder) => [
    join(resolve(folder), 'nodejs', `node${major}`, 'node_modules'),
    join(resolve(folder), 'nodejs', 'node_modules'),
  ]);
  if (paths.length === 0) return;
  process.env.NODE_PATH = [...paths, ...(process.env.NODE_PATH ? [process.env.NODE_PATH] : [])].join(
    delimiter,
  );
  (Module as unknown as { _initPaths: () => void })._initPaths();
}
