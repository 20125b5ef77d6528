import { randomBytes } from 'node:crypto';
import { CLIENT_TOKEN_PATTERN, STARTED_BY_PATTERN } from '@immortal-lambda/protocol';
import { ApiError } from '../errors.js';
import { ACCOUNT } from '../registry.js';
import { ClientTokens } from './client-tokens.js';
import { describeClusters, describeTaskDefinition } from './ecs-reads.js';
import {
  clusterName,
  describeTask,
  type KnownResources,
  type LocalTask,
  type PlaneContext,
  type TaskDefinition,
} from './model.js';
import { checkOverrides, checkTags, taskSize } from './run-task-checks.js';
import type { TaskLifecycle } from './tasks.js';

/**
 * The ECS API of the local plane: RunTask (with ECS's validation, client-token semantics and the
 * capacity and throttling faults), DescribeTasks, StopTask and ListTasks, each recorded as IAM
 * authorises it.
 */
export class EcsApi {
  readonly #ctx: PlaneContext;
  readonly #tasks: TaskLifecycle;
  readonly #taskDefinitions: Map<string, TaskDefinition>;
  readonly #tokens: ClientTokens;
  readonly #provisioningMs: number;
  readonly #known: KnownResources;

  constructor(
    ctx: PlaneContext,
    tasks: TaskLifecycle,
    taskDefinitions: Map<string, TaskDefinition>,
    provisioningMs: number,
    known: KnownResources,
    rememberFailures = false,
  ) {
    this.#tokens = new ClientTokens(rememberFailures);
    this.#ctx = ctx;
    this.#tasks = tasks;
    this.#taskDefinitions = taskDefinitions;
    this.#provisioningMs = provisioningMs;
    this.#known = known;
  }

  /** Answers one ECS action, or throws the {@link ApiError} ECS would answer. */
  answer(action: string, body: Record<string, unknown>): unknown {
    // The reads that take no cluster, or report a missing one as a failure.
    if (action === 'DescribeClusters') return describeClusters(body, this.#known, (r) => this.#arn(r));
    if (action === 'DescribeTaskDefinition')
      return describeTaskDefinition(
        taskDefinitionOf(body.taskDefinition).family,
        this.#taskDefinitions,
        (r) => this.#arn(r),
      );
    // "ClusterNotFoundException: The specified cluster wasn't found." (ECS API reference, common to
    // every action that takes a cluster).
    if (!this.#known.clusters.has(clusterName(body.cluster)))
      throw new ApiError('ClusterNotFoundException', 'Cluster not found.');
    this.#rate(action);
    switch (action) {
      case 'RunTask':
        return this.runTask(body);
      case 'DescribeTasks':
        return this.describeTasks(body);
      case 'StopTask':
        return this.stopTask(body);
      case 'ListTasks':
        return this.listTasks(body);
      default:
        throw new ApiError(
          'UnknownOperationException',
          `the local control plane does not serve ECS ${action}`,
        );
    }
  }

  /** ECS's API rates, with the limits on: `ThrottlingException`, "Rate exceeded", as ECS answers. */
  #rate(action: string): void {
    const rate =
      action === 'RunTask' ? 'runTask' : /^(ListTasks|DescribeTasks)$/.test(action) ? 'taskReads' : undefined;
    if (rate && !this.#ctx.limit(rate)) throw new ApiError('ThrottlingException', 'Rate exceeded');
  }

  /** An ECS ARN of this plane's region and account: `cluster/…`, `task/…`, `task-definition/…`. */
  #arn(resource: string): string {
    return `arn:aws:ecs:${this.#ctx.region}:${ACCOUNT}:${resource}`;
  }

  /**
   * The condition keys of a call on an existing task: its cluster and its tags
   * (`aws:ResourceTag/<key>`), which IAM evaluates for a call on a tagged task.
   */
  #onTask(onCluster: Record<string, string>, ref: string): Record<string, string> {
    const task = this.#tasks.find(ref);
    const tags = (task?.tags ?? []).map(({ key, value }) => [`aws:ResourceTag/${key}`, value]);
    return { ...onCluster, ...Object.fromEntries(tags) };
  }

  /** Records an ECS call as IAM authorises it, before it is answered (AWS authorises first). */
  audit(action: string, body: Record<string, unknown>, accessKeyId: string | undefined) {
    const cluster = clusterName(body.cluster);
    const onCluster = { 'ecs:cluster': this.#arn(`cluster/${cluster}`) };
    const taskArn = (ref: string) => (ref.startsWith('arn:') ? ref : this.#arn(`task/${cluster}/${ref}`));
    switch (action) {
      case 'RunTask': {
        const { family, revision } = taskDefinitionOf(body.taskDefinition);
        const definition = family ? this.#taskDefinitions.get(family) : undefined;
        this.#ctx.record(
          'ecs:RunTask',
          this.#arn(`task-definition/${family ?? ''}:${revision ?? '1'}`),
          onCluster,
          accessKeyId,
        );
        if (Array.isArray(body.tags) && body.tags.length > 0) {
          this.#ctx.record('ecs:TagResource', taskArn('*'), { 'ecs:CreateAction': 'RunTask' }, accessKeyId);
        }
        for (const role of [definition?.taskRoleArn, definition?.executionRoleArn]) {
          if (role)
            this.#ctx.record(
              'iam:PassRole',
              role,
              { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' },
              accessKeyId,
            );
        }
        return;
      }
      case 'ListTasks':
        // Without a container instance, AWS authorises ListTasks on "*".
        this.#ctx.record('ecs:ListTasks', '*', onCluster, accessKeyId);
        return;
      case 'DescribeTasks':
        for (const ref of (body.tasks as string[] | undefined) ?? [])
          this.#ctx.record('ecs:DescribeTasks', taskArn(ref), this.#onTask(onCluster, ref), accessKeyId);
        return;
      case 'StopTask': {
        const ref = String(body.task ?? '');
        this.#ctx.record('ecs:StopTask', taskArn(ref), this.#onTask(onCluster, ref), accessKeyId);
        return;
      }
      default:
    }
  }

  /**
   * RunTask as ECS answers it: throttling (the faults), the request checked as ECS checks it, a
   * client token already used (the first task, or ConflictException with other parameters),
   * a capacity failure (a 200 answer with `failures[]` and no task), or a new task, launched
   * after the provisioning time.
   */
  runTask(body: Record<string, unknown>) {
    this.#throttle();
    const request = this.#checkRunTask(body);
    const { cluster } = request;
    const token = this.#tokens.check(cluster, body);
    if (token.earlier && 'taskArn' in token.earlier)
      return { tasks: [describeTask(this.#tasks.find(token.earlier.taskArn) as LocalTask)], failures: [] };
    if (token.earlier) return { tasks: [], failures: token.earlier.failures };
    const shortage = this.#capacityShortage();
    // A 200 answer with a failure and no task, as ECS gives when it cannot place one.
    if (shortage) {
      const failures = [{ arn: this.#arn(`cluster/${cluster}`), reason: shortage }];
      this.#tokens.failed(token.key, token.fingerprint, failures);
      return { tasks: [], failures };
    }
    // Fargate's launch rate, per capacity provider: spent, the launch is throttled.
    if (!this.#ctx.limit(request.provider === 'FARGATE_SPOT' ? 'fargateSpotLaunches' : 'fargateLaunches'))
      throw new ApiError('ThrottlingException', 'Rate exceeded');
    const task = this.#createTask(request);
    this.#tasks.add(task);
    this.#tokens.started(token.key, token.fingerprint, task.arn);
    setTimeout(() => this.#tasks.launch(task), this.#provisioningMs);
    return { tasks: [describeTask(task)], failures: [] };
  }

  /** The throttling faults: the next calls, or a share of them, answered ThrottlingException. */
  #throttle(): void {
    const faults = this.#ctx.faults();
    if ((faults.throttleNext ?? 0) > 0) {
      faults.throttleNext = (faults.throttleNext ?? 0) - 1;
      throw new ApiError('ThrottlingException', 'Rate exceeded');
    }
    if ((faults.throttle ?? 0) > 0 && this.#ctx.random() < (faults.throttle ?? 0)) {
      throw new ApiError('ThrottlingException', 'Rate exceeded');
    }
  }

  /** The capacity faults: why no task can be placed now, or undefined. */
  #capacityShortage(): string | undefined {
    const faults = this.#ctx.faults();
    if (faults.failureReason) return faults.failureReason;
    const next = (faults.capacityNext ?? 0) > 0;
    if (next) faults.capacityNext = (faults.capacityNext ?? 0) - 1;
    if (next || ((faults.capacity ?? 0) > 0 && this.#ctx.random() < (faults.capacity ?? 0))) {
      return 'Capacity is unavailable at this time. Please try again later or in a different availability zone';
    }
    return undefined;
  }

  /** The RunTask request, checked as ECS checks it: each refusal as ECS answers it. */
  #checkRunTask(body: Record<string, unknown>): RunTaskRequest {
    const cluster = clusterName(body.cluster);
    const { family } = taskDefinitionOf(body.taskDefinition);
    const definition = family ? this.#taskDefinitions.get(family) : undefined;
    if (!definition)
      throw new ApiError('ClientException', `TaskDefinition not found: ${String(body.taskDefinition)}`);
    const strategy = body.capacityProviderStrategy as { capacityProvider: string }[] | undefined;
    if (body.launchType && strategy?.length) {
      throw new ApiError(
        'InvalidParameterException',
        'Specifying both a launch type and capacity provider strategy is not supported.',
      );
    }
    const provider = strategy?.[0]?.capacityProvider ?? String(body.launchType ?? 'FARGATE');
    if (provider !== 'FARGATE' && provider !== 'FARGATE_SPOT') {
      throw new ApiError(
        'InvalidParameterException',
        `the local control plane runs Fargate tasks only, not ${provider}`,
      );
    }
    const network = body.networkConfiguration as { awsvpcConfiguration?: { subnets?: string[] } } | undefined;
    const subnets = network?.awsvpcConfiguration?.subnets ?? [];
    if (subnets.length === 0) {
      throw new ApiError(
        'InvalidParameterException',
        "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
      );
    }
    const unknown = subnets.filter((subnet) => !this.#known.subnets.has(subnet));
    if (unknown.length > 0) {
      // As ECS passes on EC2's answer for a subnet that does not exist.
      throw new ApiError(
        'InvalidParameterException',
        `Error retrieving subnet information for [${unknown.join(', ')}]: The subnet ID '${unknown[0]}' does not exist (ErrorCode: InvalidSubnetID.NotFound)`,
      );
    }
    const overrides = checkOverrides(body.overrides as RunTaskRequest['overrides'], definition);
    const size = taskSize(overrides, definition);
    const clientToken = body.clientToken as string | undefined;
    if (clientToken !== undefined && !CLIENT_TOKEN_PATTERN.test(clientToken)) {
      throw new ApiError('InvalidParameterException', 'clientToken must be at most 64 ASCII characters');
    }
    const startedBy = body.startedBy as string | undefined;
    if (startedBy !== undefined && !STARTED_BY_PATTERN.test(startedBy)) {
      throw new ApiError(
        'InvalidParameterException',
        'startedBy may hold up to 128 letters, numbers, hyphens, forward slashes and underscores',
      );
    }
    const tags = (body.tags as { key: string; value: string }[] | undefined) ?? [];
    checkTags(tags);
    return { cluster, definition, provider, overrides, clientToken, startedBy, tags, size };
  }

  /** A new task of the request, PROVISIONING, its environment the definition's with the overrides'. */
  #createTask(request: RunTaskRequest): LocalTask {
    const { cluster, definition, overrides } = request;
    const environment: Record<string, string> = { ...definition.environment };
    for (const override of overrides?.containerOverrides ?? []) {
      for (const variable of override.environment ?? []) environment[variable.name] = variable.value;
    }
    const id = randomBytes(16).toString('hex');
    return {
      id,
      arn: this.#arn(`task/${cluster}/${id}`),
      cluster,
      clusterArn: this.#arn(`cluster/${cluster}`),
      taskDefinitionArn: this.#arn(`task-definition/${definition.family}:1`),
      family: definition.family,
      image: definition.image,
      containerName: definition.containerName,
      taskRoleArn: definition.taskRoleArn,
      lastStatus: 'PROVISIONING',
      desiredStatus: 'RUNNING',
      startedBy: request.startedBy,
      tags: request.tags,
      environment,
      cpu: request.size.cpu,
      memory: request.size.memory,
      overrides: {
        ...(overrides?.cpu ? { cpu: overrides.cpu } : {}),
        ...(overrides?.memory ? { memory: overrides.memory } : {}),
        containerOverrides: (overrides?.containerOverrides ?? []).map((override) => ({
          name: String(override.name),
          ...(override.environment ? { environment: override.environment } : {}),
        })),
      },
      capacityProvider: request.provider,
      clientToken: request.clientToken,
      exitCode: undefined,
      stoppedReason: undefined,
      stopCode: undefined,
      containerReason: undefined,
      version: 1,
      createdAt: this.#ctx.now(),
      startedAt: undefined,
      stoppedAt: undefined,
    };
  }

  stopTask(body: Record<string, unknown>) {
    const arn = String(body.task ?? '');
    const task = this.#tasks.find(arn);
    if (!task) throw new ApiError('InvalidParameterException', `The referenced task was not found: ${arn}`);
    this.#tasks.stop(task, String(body.reason ?? 'Task stopped by user'));
    return { task: describeTask(task) };
  }

  describeTasks(body: Record<string, unknown>) {
    const tasks: unknown[] = [];
    const failures: unknown[] = [];
    for (const ref of (body.tasks as string[] | undefined) ?? []) {
      const task = this.#tasks.find(ref);
      if (task) tasks.push(describeTask(task));
      else failures.push({ arn: ref, reason: 'MISSING' });
    }
    return { tasks, failures };
  }

  /**
   * ListTasks as ECS answers it: by desired status (RUNNING unless asked for STOPPED, which ECS
   * keeps listing for a while after a task stopped), startedBy and family, in the cluster.
   */
  listTasks(body: Record<string, unknown>) {
    // ListTasks API reference, startedBy: "When you specify startedBy as the filter, it must be the
    // only filter that you use."
    const others = LIST_TASKS_FILTERS.filter((name) => body[name] !== undefined);
    if (body.startedBy !== undefined && others.length > 0) {
      throw new ApiError(
        'InvalidParameterException',
        `When you specify startedBy as the filter, it must be the only filter that you use (also given: ${others.join(', ')}).`,
      );
    }
    const cluster = clusterName(body.cluster);
    const desired = String(body.desiredStatus ?? 'RUNNING');
    const taskArns = this.#tasks
      .all()
      .filter((task) => task.cluster === cluster)
      .filter((task) => body.startedBy === undefined || task.startedBy === body.startedBy)
      .filter((task) => body.family === undefined || task.family === body.family)
      .filter((task) => task.desiredStatus === (desired === 'STOPPED' ? 'STOPPED' : 'RUNNING'))
      .map((task) => task.arn);
    return { taskArns };
  }
}

/** The family and revision a RunTask `taskDefinition` names (family, family:revision or ARN). */
export function taskDefinitionOf(value: unknown): {
  family: string | undefined;
  revision: string | undefined;
} {
  const match = /(?:task-definition\/)?([A-Za-z0-9_-]+)(?::(\d+))?$/.exec(String(value ?? ''));
  return { family: match?.[1], revision: match?.[2] };
}

/** The filters of ListTasks besides startedBy (the cluster is where it looks, not a filter). */
const LIST_TASKS_FILTERS = [
  'containerInstance',
  'family',
  'serviceName',
  'desiredStatus',
  'launchType',
] as const;

/** A RunTask request once checked. */
export interface RunTaskRequest {
  cluster: string;
  definition: TaskDefinition;
  provider: 'FARGATE' | 'FARGATE_SPOT';
  overrides:
    | {
        cpu?: string;
        memory?: string;
        containerOverrides?: { name?: string; environment?: { name: string; value: string }[] }[];
      }
    | undefined;
  clientToken: string | undefined;
  startedBy: string | undefined;
  tags: { key: string; value: string }[];
  size: { cpu: number; memory: number };
}
