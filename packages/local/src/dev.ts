import { mkdirSync, watch, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Module } from 'node:module';
import { basename, delimiter, dirname, extname, join, resolve } from 'node:path';
import { ENV } from '@immortal-lambda/protocol';
import { type Dashboard, startDashboard } from './dashboard.js';
import { LocalPlaneError } from './errors.js';
import { ProcessLauncher } from './launcher.js';
import type { LocalTask } from './plane/model.js';
import { LocalControlPlane } from './plane.js';
import { type LocalS3, startS3 } from './s3.js';

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
}

type Run = { ok: boolean; summary: string };

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
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  const handlerFile = resolve(options.handlerFile);
  // `src/report/index.ts` is the function `report`; `src/report.ts` too.
  const stem = basename(handlerFile, extname(handlerFile));
  const name =
    (stem === 'index' ? basename(dirname(handlerFile)) : stem).replace(/[^A-Za-z0-9_-]/g, '-') || 'handler';
  const exportName = options.exportName ?? 'handler';
  const marginMs = options.marginMs ?? Math.max(1_000, Math.round(options.timeoutMs / 5));
  // Beside the project's node_modules, so that the bundle resolves what it leaves external.
  const outDir = join(process.cwd(), 'node_modules', '.cache', 'immortal-local', name);
  mkdirSync(outDir, { recursive: true });
  process.setSourceMapsEnabled(true);

  let started = performance.now();
  const line = (who: string, text: string) =>
    write(`${((performance.now() - started) / 1000).toFixed(3).padStart(8)}s  ${who.padEnd(7)}  ${text}\n`);

  const s3: LocalS3 = await startS3({ bucket: 'immortal-dev' });
  const plane = new LocalControlPlane({
    s3Endpoint: s3.endpoint,
    launcher: new ProcessLauncher(options.runner ? { cli: options.runner } : {}),
    provisioningMs: 50,
  });
  await plane.start();
  let dashboard: Dashboard | undefined;
  // The Lambda leg runs in this process: its layers resolve as under /opt on Lambda (NODE_PATH).
  const major = process.versions.node.split('.')[0];
  const layerPaths = (options.layers ?? []).flatMap((folder) => [
    join(resolve(folder), 'nodejs', `node${major}`, 'node_modules'),
    join(resolve(folder), 'nodejs', 'node_modules'),
  ]);
  if (layerPaths.length > 0) {
    process.env.NODE_PATH = [...layerPaths, ...(process.env.NODE_PATH ? [process.env.NODE_PATH] : [])].join(
      delimiter,
    );
    (Module as unknown as { _initPaths: () => void })._initPaths();
  }
  const layerArns = (options.layers ?? []).map((folder, index) =>
    plane.registerLayer(`${name}-layer-${index + 1}`, resolve(folder)),
  );
  let requestId = '';
  plane.on('task-started', (task: LocalTask) =>
    line('ecs', `task ${task.id.slice(0, 8)} RUNNING: the runner started`),
  );
  plane.on('task-log', ({ line: text }: { line: string }) => describe(line, 'runner', text));
  plane.on('task-stopped', (task: LocalTask) =>
    line(
      'ecs',
      `task ${task.id.slice(0, 8)} STOPPED: exit code ${task.exitCode ?? 'none'} (${task.stoppedReason})`,
    ),
  );

  const runOnce = async (): Promise<Run> => {
    started = performance.now();
    const built = await bundle(handlerFile, outDir, options.external ?? []);
    if (!built.ok) {
      line('build', `esbuild could not bundle ${options.handlerFile}:\n${built.errors}`);
      return { ok: false, summary: 'the handler did not build' };
    }
    line('build', `bundled ${options.handlerFile} (${(built.bytes / 1024).toFixed(1)} KB, source maps on)`);
    const fn = plane.registerFunction({
      name,
      folder: outDir,
      layers: layerArns,
      handler: `index.${exportName}`,
      // Stack traces in the runner name the TypeScript source too: NODE_OPTIONS acts from the
      // start of the handler's process, as on Lambda.
      environment: { NODE_OPTIONS: '--enable-source-maps', ...options.environment },
      timeout: Math.ceil(options.timeoutMs / 1000),
    });
    let event: unknown;
    try {
      event = JSON.parse(await readFile(options.eventFile, 'utf8'));
    } catch (error) {
      line('dev', `the event file ${options.eventFile} is not JSON: ${(error as Error).message}`);
      return { ok: false, summary: 'no event' };
    }
    const { default: lambdaLocal } = await import('lambda-local');
    lambdaLocal.setLogger({ log: () => undefined, transports: [] } as never);
    const patched = ['log', 'info', 'warn', 'error'] as const;
    const saved = patched.map((method) => console[method]);
    for (const method of patched)
      console[method] = (...args: unknown[]) => describe(line, 'lambda', args.join(' '));
    const stdoutWrite = process.stdout.write;
    if (!options.write) {
      // The wrapper's metric lines go straight to stdout, as Lambda needs them: shown in the timeline.
      process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
        const text = String(chunk);
        if (text.startsWith('{') && text.includes('"_aws"')) {
          describe(line, 'lambda', text.trim());
          return true;
        }
        return (stdoutWrite as (...args: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
      }) as typeof process.stdout.write;
    }
    requestId = '';
    line(
      'lambda',
      `invoking ${name} with a ${options.timeoutMs / 1000} s timeout, handoff margin ${marginMs / 1000} s`,
    );
    let result: unknown;
    try {
      result = await lambdaLocal.execute({
        event: event as Record<string, unknown>,
        lambdaPath: join(outDir, 'index.js'),
        lambdaHandler: exportName,
        timeoutMs: options.timeoutMs,
        verboseLevel: 3,
        environment: {
          ...plane.environment({ s3Endpoint: s3.endpoint, bucket: s3.bucket }),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          AWS_LAMBDA_FUNCTION_NAME: name,
          AWS_LAMBDA_FUNCTION_VERSION: fn.version,
          _HANDLER: `index.${exportName}`,
          [ENV.marginMs]: String(marginMs),
          ...options.environment,
        },
        contextOverwrite: (context: Record<string, unknown>) => {
          context.functionName = name;
          context.functionVersion = fn.version;
          context.invokedFunctionArn = `${fn.arn}:${fn.version}`;
          requestId = String(context.awsRequestId);
          line('lambda', `invocation ${requestId.slice(0, 8)} started`);
        },
      });
    } catch (error) {
      const failure = error as {
        errorType?: string;
        errorMessage?: string;
        stackTrace?: string[];
        message?: string;
      };
      line(
        'lambda',
        `the invocation failed in Lambda: ${failure.errorType ?? 'Error'}: ${failure.errorMessage ?? failure.message}`,
      );
      for (const frame of failure.stackTrace ?? []) write(`              ${frame}\n`);
      return { ok: false, summary: 'failed in Lambda' };
    } finally {
      patched.forEach((method, index) => {
        console[method] = saved[index] as (typeof console)[typeof method];
      });
      process.stdout.write = stdoutWrite;
    }
    const receipt = result as { status?: string; taskArn?: string } | undefined;
    if (receipt?.status !== 'handed-off' || !receipt.taskArn) {
      line('lambda', `finished in Lambda: ${JSON.stringify(result)}`);
      return { ok: true, summary: 'completed in Lambda' };
    }
    line('lambda', `returned the handoff receipt: task ${receipt.taskArn.split('/').pop()?.slice(0, 8)}`);
    const task = await plane.waitForTask(receipt.taskArn, 24 * 3_600_000);
    return task.exitCode === 0
      ? { ok: true, summary: `handed off and completed by the runner (request ${requestId.slice(0, 8)})` }
      : { ok: false, summary: `the runner exited ${task.exitCode} (request ${requestId.slice(0, 8)})` };
  };

  const report = (run: Run) => {
    line(
      'dev',
      `${run.ok ? 'OK' : 'FAILED'}: ${run.summary}${options.watch ? ' — watching for changes (Ctrl+C stops)' : ''}`,
    );
    return run.ok ? 0 : 1;
  };
  let queue = Promise.resolve();
  if (options.ui !== undefined) {
    dashboard = await startDashboard(plane, {
      port: options.ui,
      s3,
      // The same event, the same handler as built last: one run at a time.
      invokeAgain: async () => {
        queue = queue.then(async () => {
          report(await runOnce());
        });
        await queue;
      },
    });
    line('dev', `dashboard on ${dashboard.url}`);
  }
  let code = report(await runOnce());
  if (!options.watch && options.ui === undefined) {
    await plane.stop();
    await s3.stop();
    return code;
  }
  return new Promise<number>((resolveDone) => {
    let timer: NodeJS.Timeout | undefined;
    let running = Promise.resolve();
    const watcher = options.watch
      ? watch(dirname(handlerFile), { recursive: true }, (_type, file) => {
          if (!file || String(file).includes('node_modules')) return;
          clearTimeout(timer);
          timer = setTimeout(() => {
            running = running.then(async () => {
              write(`\n— ${file} changed: building and running again\n`);
              code = report(await runOnce());
            });
          }, 100);
        })
      : undefined;
    const stop = async () => {
      watcher?.close();
      await dashboard?.close();
      await running;
      await plane.stop();
      await s3.stop();
      resolveDone(code);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/** Bundles the handler into `outDir/index.js` (CommonJS, inline source maps), or says why not. */
async function bundle(
  handlerFile: string,
  outDir: string,
  external: string[],
): Promise<{ ok: true; bytes: number } | { ok: false; errors: string }> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    throw new LocalPlaneError(
      'the dev loop bundles with esbuild: install it next to your handler (npm i -D esbuild)',
      {
        cause: error,
      },
    );
  }
  try {
    const result = await esbuild.build({
      entryPoints: [handlerFile],
      outfile: join(outDir, 'index.js'),
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      sourcemap: 'inline',
      external,
      logLevel: 'silent',
      metafile: true,
    });
    writeFileSync(join(outDir, 'package.json'), '{ "type": "commonjs" }\n');
    const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
    return { ok: true, bytes };
  } catch (error) {
    const errors =
      (error as { errors?: { text: string; location?: { file: string; line: number } }[] }).errors ?? [];
    return {
      ok: false,
      errors: errors
        .map((e) => `  ${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`)
        .join('\n'),
    };
  }
}

/** One log line as a timeline entry: a JSON record by its message and what matters in it. */
function describe(line: (who: string, text: string) => void, who: string, text: string): void {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(text) as Record<string, unknown>;
  } catch {
    for (const part of text.split('\n')) line(who, part);
    return;
  }
  const aws = record._aws as { CloudWatchMetrics?: { Metrics: { Name: string }[] }[] } | undefined;
  if (aws?.CloudWatchMetrics) {
    const names =
      aws.CloudWatchMetrics[0]?.Metrics.map((metric) => `${metric.Name} ${record[metric.Name]}`) ?? [];
    line('metrics', names.join(', '));
    return;
  }
  const error = record.error as { name?: string; message?: string; stack?: string } | undefined;
  const detail = ['outcome', 'exitCode', 'taskArn', 'handler', 'durationMs']
    .filter((key) => record[key] !== undefined)
    .map((key) => `${key} ${String(record[key])}`)
    .join(', ');
  line(who, `${String(record.message ?? text)}${detail ? ` (${detail})` : ''}`);
  if (error?.stack) for (const frame of error.stack.split('\n')) line(who, `  ${frame}`);
  else if (error?.message) line(who, `  ${error.name ?? 'Error'}: ${error.message}`);
}
