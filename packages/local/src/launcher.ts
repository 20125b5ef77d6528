import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** A started task's process, as the control plane sees it. */
export interface LaunchedTask {
  /** Asks the task to stop (SIGTERM, as ECS does). */
  stop(): void;
}

export interface LaunchCallbacks {
  onLine(stream: 'stdout' | 'stderr', line: string): void;
  onExit(exitCode: number | null, signal: string | null): void;
}

/** Starts the runner for a task. */
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

/** The path of the installed runner's CLI. */
export function runnerCli(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@immortal-lambda/runner/package.json')), 'dist', 'cli.js');
}

/** Runs `immortal-runner` as a local Node process (the default). */
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

/** Runs the runner image with podman on the host network, so loopback endpoints are reachable. */
export class PodmanLauncher implements TaskLauncher {
  readonly kind = 'podman';
  readonly #image: string;

  constructor(image: string) {
    this.#image = image;
  }

  launch(env: Record<string, string>, callbacks: LaunchCallbacks): LaunchedTask {
    const inContainer = Object.entries(env).filter(
      ([key]) =>
        !['PATH', 'HOME', 'FARGATE_FALLBACK_TASK_ROOT', 'FARGATE_FALLBACK_LAYERS_ROOT'].includes(key),
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

/** Starts nothing: tasks stay RUNNING until StopTask. For tests that only count handoffs. */
export class NoLauncher implements TaskLauncher {
  readonly kind = 'none';

  launch(_env: Record<string, string>, callbacks: LaunchCallbacks): LaunchedTask {
    return { stop: () => setImmediate(() => callbacks.onExit(143, 'SIGTERM')) };
  }
}
