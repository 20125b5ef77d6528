import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ENV } from '@immortal-lambda/protocol';
import type { LaunchedTask, TaskLauncher } from '../launcher.js';
import type { LocalTask } from './model.js';

/** How the task lifecycle reaches the rest of the plane. */
export interface TaskLifecycleDependencies {
  launcher: TaskLauncher;
  now: () => number;
  /** Where task roots are made (known once the plane has started). */
  workDir: () => string;
  /** The AWS environment every task gets: region, credentials, endpoints. */
  awsEnvironment: () => Record<string, string>;
  region: string;
  emit: (event: 'task-started' | 'task-log' | 'task-stopped', payload: unknown) => void;
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
    const root = join(this.#deps.workDir(), task.id);
    mkdirSync(root, { recursive: true });
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...this.#deps.awsEnvironment(),
      AWS_DEFAULT_REGION: this.#deps.region,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      [ENV.taskRoot]: join(root, 'task'),
      [ENV.layersRoot]: join(root, 'opt'),
      ...task.environment,
    };
    let launched: LaunchedTask;
    try {
      launched = this.#deps.launcher.launch(env, {
        onLine: (stream, line) => this.#deps.emit('task-log', { task, stream, line }),
        onExit: (exitCode) => {
          this.#running.delete(task.arn);
          this.#markStopped(task, exitCode ?? undefined);
          rmSync(root, { recursive: true, force: true });
        },
      });
    } catch (error) {
      // As ECS reports a task whose container never started: stopped, no exit code, the reason.
      rmSync(root, { recursive: true, force: true });
      task.stopCode = 'TaskFailedToStart';
      task.stoppedReason = `CannotStartContainerError: ${(error as Error).message}`;
      this.#deps.emit('task-log', { task, stream: 'stderr', line: task.stoppedReason });
      this.#markStopped(task, undefined);
      return;
    }
    this.#running.set(task.arn, launched);
    task.lastStatus = 'RUNNING';
    task.startedAt = this.#deps.now();
    this.#deps.emit('task-started', task);
  }

  /** Asks a task to stop (SIGTERM to its runner), as StopTask does. */
  stop(task: LocalTask, reason: string): void {
    if (task.lastStatus === 'STOPPED') return;
    task.desiredStatus = 'STOPPED';
    task.stopCode = 'UserInitiated';
    task.stoppedReason = reason;
    const running = this.#running.get(task.arn);
    if (running) {
      task.lastStatus = 'DEPROVISIONING';
      running.stop();
    }
  }

  #markStopped(task: LocalTask, exitCode: number | undefined): void {
    task.lastStatus = 'STOPPED';
    task.desiredStatus = 'STOPPED';
    task.exitCode = exitCode;
    task.stoppedAt = this.#deps.now();
    task.stopCode ??= 'EssentialContainerExited';
    task.stoppedReason ??= 'Essential container in task exited';
    this.#deps.emit('task-stopped', task);
  }
}
