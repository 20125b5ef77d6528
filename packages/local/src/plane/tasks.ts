import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ENV } from '@immortal-lambda/protocol';
import { FunctionImageLauncher, type LaunchedTask, type TaskLauncher } from '../launcher.js';
import type { LocalTask } from './model.js';

/** How the task lifecycle reaches the rest of the plane. */
export interface TaskLifecycleDependencies {
  launcher: TaskLauncher;
  now: () => number;
  /** Where task roots are made (known once the plane has started). */
  workDir: () => string;
  /** The AWS environment every task gets: region, credentials, endpoints. */
  /** Region, endpoints and the credentials the task's code signs with. */
  awsEnvironment: (task: LocalTask) => Record<string, string>;
  region: string;
  emit: (event: 'task-started' | 'task-log' | 'task-stopped' | 'task-state-change', payload: unknown) => void;
  /** The base URL of the plane's task metadata endpoint (`ECS_CONTAINER_METADATA_URI_V4` = base/id). */
  metadataUrl: () => string;
  /** Counts a task start against the `failToStart` fault; true when this one must fail. */
  failsToStart: () => boolean;
  /** The container engine for image functions' tasks (podman or a stand-in). */
  containerEngine: string;
}

/** How a container ended, as ECS reports it: its exit code, or 128 + the signal that killed it. */
function exitCodeOf(code: number | null, signal: string | null): number | undefined {
  if (code !== null) return code;
  if (signal === 'SIGKILL') return 137;
  if (signal === 'SIGTERM') return 143;
  return undefined;
}

/**
 * The local ECS's tasks and their lifecycle: PROVISIONING, then PENDING and RUNNING once the
 * launcher has started the runner, then STOPPED with the container's exit code and the reason.
 */
export class TaskLifecycle {
  readonly #tasks = new Map<string, LocalTask>();
  readonly #running = new Map<string, LaunchedTask>();
  readonly #deps: TaskLifecycleDependencies;

  constructor(deps: TaskLifecycleDependencies) {
    this.#deps = deps;
  }

  add(task: LocalTask): void {
    this.#tasks.set(task.arn, task);
  }

  /** A task by ARN or id. */
  find(ref: string): LocalTask | undefined {
    return this.#tasks.get(ref) ?? [...this.#tasks.values()].find((task) => task.id === ref);
  }

  all(): LocalTask[] {
    return [...this.#tasks.values()];
  }

  /** Starts the runner for a task (after its provisioning delay), unless it was stopped meanwhile. */
  launch(task: LocalTask): void {
    if (task.desiredStatus === 'STOPPED') {
      this.#markStopped(task, undefined);
      return;
    }
    task.lastStatus = 'PENDING';
    if (this.#deps.failsToStart()) {
      this.#failToStart(
        task,
        'ResourceInitializationError: unable to pull secrets or registry auth: the local control plane was told to fail this start (failToStart)',
      );
      return;
    }
    const root = join(this.#deps.workDir(), task.id);
    mkdirSync(root, { recursive: true });
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...this.#deps.awsEnvironment(task),
      AWS_DEFAULT_REGION: this.#deps.region,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      [ENV.taskRoot]: join(root, 'task'),
      [ENV.layersRoot]: join(root, 'opt'),
      ECS_CONTAINER_METADATA_URI_V4: `${this.#deps.metadataUrl()}/${task.id}`,
      ...task.environment,
    };
    const { image } = task;
    const launcher = image
      ? new FunctionImageLauncher({
          functionImage: image.function,
          runnerImage: image.runner,
          podman: this.#deps.containerEngine,
        })
      : this.#deps.launcher;
    let launched: LaunchedTask;
    let cannotStart: string | undefined;
    try {
      launched = launcher.launch(env, {
        onLine: (stream, line) => this.#deps.emit('task-log', { task, stream, line }),
        onStartFailure: (reason) => {
          cannotStart = reason;
        },
        onExit: (code, signal) => {
          this.#running.delete(task.arn);
          if (cannotStart !== undefined) {
            task.containerReason = cannotStart;
            this.#failToStart(task, cannotStart);
          } else {
            this.#markStopped(task, exitCodeOf(code, signal));
          }
          rmSync(root, { recursive: true, force: true });
        },
      });
    } catch (error) {
      rmSync(root, { recursive: true, force: true });
      this.#failToStart(task, `CannotStartContainerError: ${(error as Error).message}`);
      return;
    }
    this.#running.set(task.arn, launched);
    task.lastStatus = 'RUNNING';
    task.startedAt = this.#deps.now();
    this.#deps.emit('task-started', task);
    this.#changed(task);
  }

  /** As ECS reports a task whose container never started: stopped, no exit code, the reason. */
  #failToStart(task: LocalTask, reason: string): void {
    task.stopCode = 'TaskFailedToStart';
    task.stoppedReason = reason;
    this.#deps.emit('task-log', { task, stream: 'stderr', line: reason });
    this.#markStopped(task, undefined);
  }

  /**
   * Interrupts a task the way Fargate Spot does: SIGTERM with stop code `SpotInterruption`, then
   * SIGKILL if it is still running after the stop timeout.
   */
  interrupt(task: LocalTask, stopTimeoutMs: number): void {
    if (task.lastStatus === 'STOPPED') return;
    task.stopCode = 'SpotInterruption';
    task.stoppedReason = 'Your Spot Task was interrupted.';
    this.#terminate(task, stopTimeoutMs);
  }

  /** Kills a task's container for its memory, as ECS does: SIGKILL, exit 137, `OutOfMemoryError`. */
  killForMemory(task: LocalTask): void {
    if (task.lastStatus === 'STOPPED') return;
    task.stopCode = 'EssentialContainerExited';
    task.stoppedReason = 'Essential container in task exited';
    task.containerReason = 'OutOfMemoryError: Container killed due to memory usage';
    task.desiredStatus = 'STOPPED';
    const running = this.#running.get(task.arn);
    if (running) running.kill();
    else this.#markStopped(task, 137);
  }

  /** SIGTERM, then SIGKILL after the stop timeout, as ECS stops a container. */
  #terminate(task: LocalTask, stopTimeoutMs: number): void {
    task.desiredStatus = 'STOPPED';
    const running = this.#running.get(task.arn);
    if (!running) return;
    task.lastStatus = 'DEPROVISIONING';
    running.stop();
    const timer = setTimeout(() => {
      if (this.#running.has(task.arn)) running.kill();
    }, stopTimeoutMs);
    timer.unref();
  }

  /** Emits the task's state-change event. */
  #changed(task: LocalTask): void {
    task.version += 1;
    this.#deps.emit('task-state-change', task);
  }

  /** Asks a task to stop (SIGTERM to its runner), as StopTask does. */
  stop(task: LocalTask, reason: string): void {
    if (task.lastStatus === 'STOPPED') return;
    task.desiredStatus = 'STOPPED';
    task.stopCode = 'UserInitiated';
    task.stoppedReason = reason;
    this.#terminate(task, 30_000);
  }

  #markStopped(task: LocalTask, exitCode: number | undefined): void {
    task.lastStatus = 'STOPPED';
    task.desiredStatus = 'STOPPED';
    task.exitCode = exitCode;
    task.stoppedAt = this.#deps.now();
    task.stopCode ??= 'EssentialContainerExited';
    task.stoppedReason ??= 'Essential container in task exited';
    this.#deps.emit('task-stopped', task);
    this.#changed(task);
  }
}
