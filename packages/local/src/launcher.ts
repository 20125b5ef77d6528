import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV, IMAGE_TASK } from '@immortal-lambda/protocol';
import { LocalPlaneError } from './errors.js';

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
  /** Ends the task at once (SIGKILL, as ECS does after the stop timeout or for memory). */
  kill(): void;
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
  /**
   * The container could not be started after all (its command does not exist or cannot run), as
   * ECS reports `CannotStartContainerError`: the reason. `onExit` still follows.
   */
  onStartFailure?(reason: string): void;
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
  return { stop: () => child.kill('SIGTERM'), kill: () => child.kill('SIGKILL') };
}

/**
 * The path of the installed runner's CLI: `@immortal-lambda/runner` as resolved from each of
 * `searchFrom` in turn; by default the current project, then this package (the runner is an
 * optional peer of this package).
 *
 * @throws {@link LocalPlaneError} when neither finds it.
 * @example
 * ```ts
 * import { runnerCli } from '@immortal-lambda/local';
 * spawn(process.execPath, [runnerCli()], { env });
 * ```
 */
export function runnerCli(
  searchFrom: readonly string[] = [process.cwd(), dirname(fileURLToPath(import.meta.url))],
): string {
  for (const folder of searchFrom) {
    try {
      const manifest = createRequire(join(folder, 'package.json')).resolve(
        '@immortal-lambda/runner/package.json',
      );
      return join(dirname(manifest), 'dist', 'cli.js');
    } catch {
      // Not resolvable from this folder; try the next.
    }
  }
  throw new LocalPlaneError(
    `@immortal-lambda/runner is not installed where ${searchFrom.join(' or ')} can find it: ` +
      "install it (npm install --save-dev @immortal-lambda/runner), or pass the CLI's path: new ProcessLauncher({ cli })",
  );
}

/**
 * Runs `immortal-runner` as a local Node process (the default). The runner's CLI is the one
 * given, or the installed `@immortal-lambda/runner` found when the first task starts.
 *
 * @example
 * ```ts
 * import { LocalControlPlane, ProcessLauncher } from '@immortal-lambda/local';
 * const plane = new LocalControlPlane({ launcher: new ProcessLauncher({ cli: 'node_modules/@immortal-lambda/runner/dist/cli.js' }) });
 * ```
 */
export class ProcessLauncher implements TaskLauncher {
  readonly kind = 'process';
  #cli: string | undefined;
  readonly #node: string;

  constructor(options: { cli?: string; node?: string } = {}) {
    this.#cli = options.cli;
    this.#node = options.node ?? process.execPath;
  }

  launch(env: Record<string, string>, callbacks: LaunchCallbacks): LaunchedTask {
    this.#cli ??= runnerCli();
    if (!existsSync(this.#cli)) {
      throw new LocalPlaneError(
        `the runner CLI ${this.#cli} does not exist; build or install @immortal-lambda/runner`,
      );
    }
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
    const name = `immortal-task-${randomUUID()}`;
    const args = [...taskContainer(name), ...environmentArgs(env), this.#image];
    const task = wire(spawn('podman', args, { stdio: ['ignore', 'pipe', 'pipe'] }), callbacks);
    return { stop: task.stop, kill: () => killContainer('podman', name, task) };
  }
}

/**
 * SIGKILL for a container: `podman kill` ends the container itself (killing only the `podman run`
 * client would leave it running); when that fails (not created yet), the client is killed.
 */
function killContainer(podman: string, name: string, client: LaunchedTask): void {
  const killer = spawn(podman, ['kill', '--signal', 'KILL', name], { stdio: 'ignore' });
  killer.on('error', () => client.kill());
  killer.on('close', (code) => {
    if (code !== 0) client.kill();
  });
}

/** What the container engine prints when a container's command cannot be started. */
const CANNOT_START = /executable file .*not found|exec format error|OCI runtime|no such file or directory/i;

/**
 * The variables a task container gets from the plane, as `-e` arguments: not the host's PATH,
 * HOME or local roots (the image has its own).
 */
function environmentArgs(env: Record<string, string>): string[] {
  return Object.entries(env)
    .filter(([key]) => !['PATH', 'HOME', ENV.taskRoot, ENV.layersRoot].includes(key))
    .flatMap(([key, value]) => ['-e', `${key}=${value}`]);
}

/** `podman run` for a task's container: removed when it ends, named (to kill it), host network (loopback endpoints). */
function taskContainer(name: string): string[] {
  return ['run', '--rm', '--name', name, '--network', 'host'];
}

/**
 * Runs a container image function's task as ECS runs the construct's task definition for it: an
 * install container from the runner image copies the runner into a volume the two containers
 * share, then the function's own image runs with its entry point replaced by the runner on that
 * volume, on the image's own `node` (podman, host network). An image whose `node` cannot be
 * started is reported as ECS does: `CannotStartContainerError`, no exit code.
 *
 * @example
 * ```ts
 * import { FunctionImageLauncher } from '@immortal-lambda/local';
 * const launcher = new FunctionImageLauncher({ functionImage: 'localhost/transcode:1', runnerImage: 'immortal-runner:local' });
 * ```
 */
export class FunctionImageLauncher implements TaskLauncher {
  readonly kind = 'podman-image';
  readonly #functionImage: string;
  readonly #runnerImage: string;
  readonly #podman: string;

  constructor(options: { functionImage: string; runnerImage: string; podman?: string }) {
    this.#functionImage = options.functionImage;
    this.#runnerImage = options.runnerImage;
    this.#podman = options.podman ?? 'podman';
  }

  launch(env: Record<string, string>, callbacks: LaunchCallbacks): LaunchedTask {
    const id = randomUUID();
    const volume = `${IMAGE_TASK.volume}-${id}`;
    const name = `immortal-task-${id}`;
    let container: LaunchedTask | undefined;
    let stopped: 'stop' | 'kill' | undefined;
    const podman = (args: string[]) =>
      new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = spawn(this.#podman, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk;
        });
        child.stderr.on('data', (chunk: Buffer) => {
          output += chunk;
        });
        child.on('error', (error) => resolve({ code: null, output: error.message }));
        child.on('close', (code) => resolve({ code, output: output.trim() }));
      });
    const finish = async (code: number | null, signal: string | null) => {
      await podman(['volume', 'rm', '--force', volume]);
      callbacks.onExit(code, signal);
    };
    const start = async () => {
      const created = await podman(['volume', 'create', volume]);
      if (created.code !== 0) {
        callbacks.onStartFailure?.(
          `CannotStartContainerError: ${this.#podman} could not create the task's volume (${created.output}): container image functions run through podman locally; install it (Debian: apt-get install podman runc)`,
        );
        callbacks.onExit(null, null);
        return;
      }
      const installed = await podman([
        'run',
        '--rm',
        '--user',
        IMAGE_TASK.installUser,
        '-v',
        `${volume}:${IMAGE_TASK.mount}`,
        '--entrypoint',
        IMAGE_TASK.installEntryPoint[0],
        this.#runnerImage,
        ...IMAGE_TASK.installCommand,
      ]);
      if (installed.code !== 0) {
        callbacks.onStartFailure?.(
          `CannotStartContainerError: the ${IMAGE_TASK.installContainer} container (${this.#runnerImage}) could not copy the runner into the task's volume: ${installed.output}`,
        );
        await finish(null, null);
        return;
      }
      if (stopped !== undefined) {
        await finish(null, stopped === 'kill' ? 'SIGKILL' : 'SIGTERM');
        return;
      }
      const [node, ...runner] = IMAGE_TASK.entryPoint;
      const args = [
        ...taskContainer(name),
        '-v',
        `${volume}:${IMAGE_TASK.mount}:ro`,
        '--entrypoint',
        node,
        ...environmentArgs(env),
        this.#functionImage,
        ...runner,
      ];
      let lastError = '';
      container = wire(spawn(this.#podman, args, { stdio: ['ignore', 'pipe', 'pipe'] }), {
        onLine: (stream, line) => {
          if (stream === 'stderr') lastError = line;
          callbacks.onLine(stream, line);
        },
        onExit: (code, signal) => {
          // 126 and 127: the engine could not run the entry point (no `node`, or not for this CPU).
          if ((code === 126 || code === 127) && CANNOT_START.test(lastError)) {
            callbacks.onStartFailure?.(`CannotStartContainerError: ${lastError}`);
            void finish(null, null);
            return;
          }
          void finish(code, signal);
        },
      });
      if (stopped === 'kill') killContainer(this.#podman, name, container);
      else if (stopped === 'stop') container.stop();
    };
    void start();
    return {
      stop: () => {
        stopped ??= 'stop';
        container?.stop();
      },
      kill: () => {
        stopped = 'kill';
        if (container) killContainer(this.#podman, name, container);
      },
    };
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
    return {
      stop: () => setImmediate(() => callbacks.onExit(143, 'SIGTERM')),
      kill: () => setImmediate(() => callbacks.onExit(137, 'SIGKILL')),
    };
  }
}
