import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ENV } from '@immortal-lambda/protocol';

/**
 * A started task's process, as the control plane sees it.
 *
 * @example
 * ```ts
 * import type { LaunchedTask } from '@immortal-lambda/local';
 * const stopAll = (tasks: LaunchedTask[]) => tasks.forEach((task) => task.stop());
 * ```
 */
export interface LaunchedTask {
  /** Asks the task to stop (SIGTERM, as ECS does). */
  stop(): void;
}

/**
 * What a launcher reports back: each output line and the exit.
 *
 * @example
 * ```ts
 * import type { LaunchCallbacks } from '@immortal-lambda/local';
 * const callbacks: LaunchCallbacks = { onLine: (_s, line) => console.log(line), onExit: (code) => console.log(code) };
 * ```
 */
export interface LaunchCallbacks {
  onLine(stream: 'stdout' | 'stderr', line: string): void;
  onExit(exitCode: number | null, signal: string | null): void;
}

/**
 * Starts the runner for a task.
 *
 * @example
 * ```ts
 * import { LocalControlPlane, type TaskLauncher } from '@immortal-lambda/local';
 * const launcher: TaskLauncher = new ProcessLauncher();
 * const plane = new LocalControlPlane({ launcher });
 * ```
 */
export interface TaskLauncher {
  readonly kind: string;
  launch(env: Record<string, string>, callbacks: LaunchCallbacks): LaunchedTask;
}

function wire(child: ChildProcess, callbacks: LaunchCallbacks): LaunchedTask {
  for (const stream of ['stdout', 'stderr'] as const) {
    let pending = '';
    child[stream]?.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        callbacks.onLine(stream, pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
    });
    child[stream]?.on('end', () => {
      if (pending) callbacks.onLine(stream, pending);
      pending = '';
    });
  }
  child.on('error', (error) => {
    callbacks.onLine('stderr', `the task could not be started: ${error.message}`);
  });
  child.on('close', (code, signal) => callbacks.onExit(code, signal));
  return { stop: () => child.kill('SIGTERM') };
}

/**
 * The path of the installed runner's CLI.
 *
 * @example
 * ```ts
 * import { runnerCli } from '@immortal-lambda/local';
 * spawn(process.execPath, [runnerCli()], { env });
 * ```
 */
export function runnerCli(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@immortal-lambda/runner/package.json')), 'dist', 'cli.js');
}

/**
 * Runs `immortal-runner` as a local Node process (the default).
 *
 * @example
 * ```ts
 * import { LocalControlPlane, ProcessLauncher } from '@immortal-lambda/local';
 * const plane = new LocalControlPlane({ launcher: new ProcessLauncher({ node: '/usr/local/bin/node22' }) });
 * ```
 */
export class ProcessLauncher implements TaskLauncher {
  readonly kind = 'process';
  readonly #cli: string;
  readonly #node: string;

  constructor(options: { cli?: string; node?: string } = {}) {
    this.#cli = options.cli ?? runnerCli();
    this.#node = options.node ?? process.execPath;
  }

  launch(env: Record<string, string>, callbacks: LaunchCallbacks): LaunchedTask {
    return wire(spawn(this.#node, [this.#cli], { env, stdio: ['ignore', 'pipe', 'pipe'] }), callbacks);
  }
}

/**
 * Runs the runner image with podman on the host network, so loopback endpoints are reachable.
 *
 * @example
 * ```ts
 * import { LocalControlPlane, PodmanLauncher } from '@immortal-lambda/local';
 * const plane = new LocalControlPlane({ launcher: new PodmanLauncher('immortal-runner:local') });
 * ```
 */
export class PodmanLauncher implements TaskLauncher {
  readonly kind = 'podman';
  readonly #image: string;

  constructor(image: string) {
    this.#image = image;
  }

  launch(env: Record<string, string>, callbacks: LaunchCallbacks): LaunchedTask {
    const inContainer = Object.entries(env).filter(
      ([key]) => !['PATH', 'HOME', ENV.taskRoot, ENV.layersRoot].includes(key),
    );
    const args = [
      'run',
      '--rm',
      '--network',
      'host',
      ...inContainer.flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      this.#image,
    ];
    return wire(spawn('podman', args, { stdio: ['ignore', 'pipe', 'pipe'] }), callbacks);
  }
}

/**
 * Starts nothing: tasks stay RUNNING until StopTask. For tests that only count handoffs.
 *
 * @example
 * ```ts
 * import { LocalControlPlane, NoLauncher } from '@immortal-lambda/local';
 * const plane = new LocalControlPlane({ launcher: new NoLauncher() });
 * ```
 */
export class NoLauncher implements TaskLauncher {
  readonly kind = 'none';

  launch(_env: Record<string, string>, callbacks: LaunchCallbacks): LaunchedTask {
    return { stop: () => setImmediate(() => callbacks.onExit(143, 'SIGTERM')) };
  }
}
