import { watch } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Dashboard, startDashboard } from './dashboard.js';
import { DevSession } from './dev/session.js';
import { Timeline } from './dev/timeline.js';

/**
 * Options of {@link runDev}: one handler file, one event, a Lambda timeout.
 *
 * @example
 * ```ts
 * import type { DevOptions } from '@immortal-lambda/local';
 * const options: DevOptions = { handlerFile: 'src/report.ts', eventFile: 'event.json', timeoutMs: 30_000, watch: false };
 * ```
 */
export interface DevOptions {
  handlerFile: string;
  eventFile: string;
  timeoutMs: number;
  /** The handler's export (default `handler`). */
  exportName?: string;
  /** FARGATE_FALLBACK_MARGIN_MS for the run (default: a fifth of the timeout, at least 1 s). */
  marginMs?: number;
  /** Variables of the function's configuration, as Lambda would set them. */
  environment?: Record<string, string>;
  /** Layer folders (each holding what Lambda puts under /opt: nodejs/node_modules, …), in order. */
  layers?: string[];
  /** Modules left out of the bundle (those a layer provides), as esbuild's `external`. */
  external?: string[];
  /** Rebuild and run again when a file beside the handler changes. */
  watch: boolean;
  /** The runner CLI (default: the installed @immortal-lambda/runner). */
  runner?: string;
  /** Where the timeline goes (default stdout). */
  write?: (text: string) => void;
  /** Serve the dashboard on this loopback port (0: any), with a button to invoke again. */
  ui?: number;
  /**
   * Run the handler this many times, each handed off at a random point, and report the work
   * outside `step()` that ran in both legs (files written, calls made) and the checkpoints the
   * runner recorded again: exit code 1 when there is any.
   */
  chaos?: number;
}

/**
 * The dev loop for a user's own handler: bundles it with esbuild (source maps on, so stack traces
 * name the TypeScript source), registers it with a local control plane, invokes it under a
 * harness that enforces the Lambda timeout, and prints both legs as one timeline: the Lambda
 * leg, the handoff, the runner's leg, the end. With `watch`, every save runs it again. Resolves
 * with the exit code of the last run (0: completed in Lambda or on "Fargate").
 *
 * @example
 * ```ts
 * import { runDev } from '@immortal-lambda/local';
 * process.exitCode = await runDev({ handlerFile: 'src/report.ts', eventFile: 'event.json', timeoutMs: 3_000, watch: false });
 * ```
 */
export async function runDev(options: DevOptions): Promise<number> {
  const timeline = new Timeline(options.write ?? ((text: string) => process.stdout.write(text)));
  const session = await DevSession.open(options, timeline);
  if (options.chaos !== undefined) {
    const code = session.report(await session.runChaos(options.chaos));
    await session.close();
    return code;
  }
  const dashboard =
    options.ui === undefined ? undefined : await serveDashboard(session, timeline, options.ui);
  const code = session.report(await session.runOnce());
  if (!options.watch && !dashboard) {
    await session.close();
    return code;
  }
  return keepRunning(session, timeline, options, dashboard, code);
}

/** The dashboard, with a button that runs the same event through the handler as built last, one run at a time. */
async function serveDashboard(session: DevSession, timeline: Timeline, port: number): Promise<Dashboard> {
  let queue = Promise.resolve();
  const dashboard = await startDashboard(session.plane, {
    port,
    s3: session.s3,
    invokeAgain: async () => {
      queue = queue.then(async () => {
        session.report(await session.runOnce());
      });
      await queue;
    },
  });
  session.onLambdaLine = (requestId, line) => dashboard.lambdaLine(requestId, line);
  timeline.line('dev', `dashboard on ${dashboard.url}`);
  return dashboard;
}

/**
 * Watches the handler's folder (with `watch`) and runs again after each change, until SIGINT or
 * SIGTERM; resolves with the exit code of the last run.
 */
function keepRunning(
  session: DevSession,
  timeline: Timeline,
  options: DevOptions,
  dashboard: Dashboard | undefined,
  first: number,
): Promise<number> {
  let code = first;
  return new Promise<number>((resolveDone) => {
    let timer: NodeJS.Timeout | undefined;
    let running = Promise.resolve();
    const watcher = options.watch
      ? watch(dirname(resolve(options.handlerFile)), { recursive: true }, (_type, file) => {
          if (!file || String(file).includes('node_modules')) return;
          clearTimeout(timer);
          timer = setTimeout(() => {
            running = running.then(async () => {
              timeline.write(`\n— ${file} changed: building and running again\n`);
              code = session.report(await session.runOnce());
            });
          }, 100);
        })
      : undefined;
    const stop = async () => {
      watcher?.close();
      await dashboard?.close();
      await running;
      await session.close();
      resolveDone(code);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
