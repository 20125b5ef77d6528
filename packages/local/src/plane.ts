import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { RequestListener, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONTAINER_NAME, ENV } from '@immortal-lambda/protocol';
import { type AuditedCall, accessDenied, loopbackHosts, roleAccessKey } from './audit.js';
import { LocalPlaneError } from './errors.js';
import { ProcessLauncher } from './launcher.js';
import { EcsApi } from './plane/ecs-api.js';
import { type EventRuleSpec, EventRules } from './plane/event-rules.js';
import { taskStateChange } from './plane/events.js';
import { LambdaApi } from './plane/lambda-api.js';
import { RateLimiter } from './plane/limits.js';
import { Listeners } from './plane/listeners.js';
import {
  type Faults,
  type KnownResources,
  LOCAL_SUBNET,
  type LocalTask,
  type PlaneContext,
  type PlaneOptions,
  type SubnetSpec,
  type TaskDefinition,
} from './plane/model.js';
import { LocalQueues } from './plane/queues.js';
import { type EcsRequest, type Routes, route } from './plane/router.js';
import type { Delivery } from './plane/sinks.js';
import { LocalStreams } from './plane/streams.js';
import { TaskLifecycle } from './plane/tasks.js';
import { XrayDaemon } from './plane/xray.js';
import { FunctionRegistry, type FunctionSpec } from './registry.js';

export type { EventRuleSpec } from './plane/event-rules.js';
export type { TaskStateChangeEvent } from './plane/events.js';
export { AWS_LIMITS, type LimitName, type Limits, type RateLimit, RateLimiter } from './plane/limits.js';
export type { Faults, LocalTask, PlaneOptions, SubnetSpec, TaskDefinition } from './plane/model.js';
export type { EcsRequest } from './plane/router.js';
export type { Delivery } from './plane/sinks.js';

/**
 * The local control plane: the ECS (`RunTask`, `DescribeTasks`, `StopTask`, `ListTasks`) and
 * Lambda (`GetFunction`, `GetLayerVersionByArn`) APIs that immortal-lambda calls, served on
 * loopback in the wire protocols the AWS SDK speaks. `RunTask` starts the runner for real.
 *
 * Events: `task-started` (task), `task-log` ({ task, stream, line }), `task-stopped` (task),
 * `task-state-change` (the "ECS Task State Change" event EventBridge would deliver), `delivery`
 * (a message sent to SQS, SNS, EventBridge or an asynchronous Lambda invocation).
 *
 * @example
 * ```ts
 * import { LocalControlPlane } from '@immortal-lambda/local';
 * const plane = new LocalControlPlane();
 * plane.registerFunction({ name: 'report', folder: 'dist/report', handler: 'index.handler' });
 * const url = await plane.start();
 * process.env.AWS_ENDPOINT_URL_ECS = url;
 * ```
 */
export class LocalControlPlane extends EventEmitter {
  readonly region: string;
  readonly functions: FunctionRegistry;
  faults: Faults = {};
  /** SQS queues (`create`, `send`, `consume` as a mapping, SQS's calls); Kinesis streams, in order. */
  readonly queues: LocalQueues;
  readonly streams: LocalStreams;
  /** AWS's rates, when `limits` applies them: what each refused is in its `refused` counts. */
  readonly limiter: RateLimiter;
  /** Every API call, in order: `ECS.RunTask`, `Lambda.GetFunction`, … */
  readonly calls: string[] = [];
  /** Every ECS request as sent, in order: what a test checks a caller's RunTask parameters by. */
  readonly requests: EcsRequest[] = [];
  /** Every message sent to SQS, SNS, EventBridge or a Lambda function's asynchronous invocation. */
  readonly deliveries: Delivery[] = [];
  /** Every call served, as IAM authorises it: for checking permissions against real policies. */
  readonly audit: AuditedCall[] = [];
  /** The local X-Ray daemon: runner tasks send their segments here (`AWS_XRAY_DAEMON_ADDRESS`). */
  readonly #xray = new XrayDaemon();
  readonly #taskDefinitions = new Map<string, TaskDefinition>();
  readonly #known: KnownResources = {
    clusters: new Set(['default', 'local']),
    subnets: new Set([LOCAL_SUBNET]),
    subnetDetails: new Map(),
    endpoints: [],
  };
  readonly #hanging = new Set<ServerResponse>();
  readonly #options: PlaneOptions;
  readonly #tasks: TaskLifecycle;
  readonly #ecs: EcsApi;
  readonly #lambda: LambdaApi;
  readonly #routes: Routes;
  readonly #rules: EventRules;
  #listeners: Listeners | undefined;
  #url = '';
  #hosts: ReadonlySet<string> = new Set();
  #workDir: string | undefined;

  constructor(options: PlaneOptions = {}) {
    super();
    // Stopping the plane waits on every task still running: one listener each, legitimately.
    this.setMaxListeners(0);
    this.#options = options;
    this.region = options.region ?? 'eu-west-1';
    for (const cluster of options.clusters ?? []) this.#known.clusters.add(cluster);
    for (const subnet of options.subnets ?? []) this.#known.subnets.add(subnet);
    this.functions = new FunctionRegistry(this.region);
    const now = options.now ?? Date.now;
    this.limiter = new RateLimiter(options.limits, now);
    this.queues = new LocalQueues(this.region, now);
    this.streams = new LocalStreams(this.region, now);
    const context: PlaneContext = {
      region: this.region,
      faults: () => this.faults,
      limit: (name) => this.limiter.take(name),
      random: options.random ?? Math.random,
      now,
      record: (action, resource, conditions, accessKeyId) => {
        const call = { action, resource, context: conditions, accessKeyId };
        this.audit.push(call);
        if (options.authorize && !options.authorize(call)) throw accessDenied(call);
      },
    };
    this.#tasks = new TaskLifecycle({
      launcher: options.launcher ?? new ProcessLauncher(),
      now,
      workDir: () => this.#workDir as string,
      // With authorize on, a task signs as its task role (the role's own key), as on ECS.
      awsEnvironment: (task) => ({
        ...this.#awsEnvironment(),
        ...(options.authorize && task.taskRoleArn
          ? {
              AWS_ACCESS_KEY_ID: roleAccessKey(task.taskRoleArn),
              AWS_SECRET_ACCESS_KEY: options.signingSecret ?? 'local',
            }
          : {}),
      }),
      region: this.region,
      emit: (event, payload) =>
        event === 'task-state-change'
          ? this.emit(
              event,
              taskStateChange(payload as LocalTask, this.region, (payload as LocalTask).version),
            )
          : this.emit(event, payload),
      metadataUrl: () => `${this.url}/v4`,
      containerEngine: options.containerEngine ?? 'podman',
      failsToStart: () => {
        if ((this.faults.failToStart ?? 0) <= 0) return false;
        this.faults.failToStart = (this.faults.failToStart ?? 0) - 1;
        return true;
      },
    });
    this.#ecs = new EcsApi(
      context,
      this.#tasks,
      this.#taskDefinitions,
      options.provisioningMs ?? 50,
      this.#known,
      options.rememberFailedTokens,
    );
    this.#lambda = new LambdaApi(context, this.functions, options.codeUrlTtlMs ?? 600_000, () => this.#url);
    this.#rules = new EventRules(this.region);
    this.#routes = {
      ecs: this.#ecs,
      lambda: this.#lambda,
      region: this.region,
      calls: this.calls,
      requests: this.requests,
      faults: () => this.faults,
      hanging: this.#hanging,
      queues: this.queues,
      deliver: (delivery) => {
        if (delivery.service === 'sqs') this.queues.send(delivery.target, delivery.payload);
        this.deliveries.push(delivery);
        this.emit('delivery', delivery);
      },
      task: (id) => this.#tasks.find(id),
      hosts: () => this.#hosts,
      record: (action, resource, accessKeyId) => context.record(action, resource, {}, accessKeyId),
      simulate: options.simulate ?? options.authorize,
      network: this.#known,
      rules: this.#rules,
      signingSecret: options.signingSecret,
    };
    this.registerTaskDefinition({
      family: 'immortal-runner',
      containerName: DEFAULT_CONTAINER_NAME,
      environment: {},
    });
  }

  /** The plane's base URL, once started. */
  get url(): string {
    if (!this.#url) throw new LocalPlaneError('the control plane is not started; call start() first');
    return this.#url;
  }

  registerFunction(spec: FunctionSpec) {
    return this.functions.registerFunction(spec);
  }

  registerLayer(name: string, source: string | Buffer, version?: number): string {
    return this.functions.registerLayer(name, source, version);
  }

  /**
   * Puts a rule on the default event bus, as a deployment made it: ListRules and ListTargetsByRule
   * answer it (the plane does not route events by it).
   *
   * @example
   * ```ts
   * plane.registerRule({ name: 'stopped', eventPattern: { source: ['aws.ecs'] }, targets: [{ id: 'w', arn: watchdogArn }] });
   * ```
   */
  registerRule(rule: EventRuleSpec): void {
    this.#rules.register(rule);
  }

  registerTaskDefinition(definition: TaskDefinition): void {
    this.#taskDefinitions.set(definition.family, definition);
  }

  /**
   * Makes a cluster and subnets exist: ECS calls on any other cluster, and tasks in any other
   * subnet, are refused as ECS refuses them. `default`, `local` and the subnet
   * {@link environment} hands out exist from the start.
   *
   * A subnet given by id reaches the internet through a gateway (public); one given as a
   * {@link SubnetSpec} may be private (`nat`, or `none` with only the VPC's `endpoints`, given by
   * service name), as EC2's DescribeSubnets, DescribeRouteTables and DescribeVpcEndpoints answer.
   *
   * @example
   * ```ts
   * plane.registerNetwork({ cluster: 'jobs', subnets: ['subnet-0aaaaaaaaaaaaaaa1'] });
   * ```
   */
  registerNetwork(network: {
    cluster?: string;
    subnets?: readonly (string | SubnetSpec)[];
    endpoints?: readonly string[];
  }): void {
    if (network.cluster) this.#known.clusters.add(network.cluster);
    for (const subnet of network.subnets ?? []) {
      const spec = typeof subnet === 'string' ? { id: subnet } : subnet;
      this.#known.subnets.add(spec.id);
      this.#known.subnetDetails.set(spec.id, spec);
    }
    for (const serviceName of network.endpoints ?? [])
      this.#known.endpoints.push({ serviceName, vpcId: 'vpc-local' });
  }

  /** Starts serving on loopback. Resolves to the base URL for every `AWS_ENDPOINT_URL_*`. */
  async start(options: { port?: number; host?: string } = {}): Promise<string> {
    const host = options.host ?? '127.0.0.1';
    const serve: RequestListener = (request, response) => {
      route(request, response, this.#routes).catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end(String(error));
      });
    };
    this.#listeners = await Listeners.open(serve, options.port ?? 0, host).catch(
      (error: NodeJS.ErrnoException) => {
        throw error.code === 'EADDRINUSE'
          ? new LocalPlaneError(
              `port ${options.port} on ${host} is in use: stop what listens there, or choose another port (--port)`,
              { cause: error },
            )
          : error;
      },
    );
    const { port } = this.#listeners;
    this.#url = `http://${host}:${port}`;
    this.#hosts = loopbackHosts(port, host);
    this.#workDir = this.#options.workDir ?? mkdtempSync(join(tmpdir(), 'immortal-local-'));
    await this.#xray.start((segment) => this.emit('trace-segment', segment));
    return this.#url;
  }

  /** Stops every running task (SIGTERM), waits for them, and closes the server. */
  async stop(): Promise<void> {
    await this.queues.stop();
    await this.streams.stop();
    const stopping = this.#tasks.all().filter((task) => task.lastStatus !== 'STOPPED');
    for (const task of stopping) this.#tasks.stop(task, 'the local control plane is shutting down');
    await Promise.all(stopping.map((task) => this.waitForTask(task.arn, 10_000).catch(() => undefined)));
    for (const response of this.#hanging) response.destroy();
    await this.#listeners?.close();
    await this.#xray.stop();
    if (!this.#options.workDir && this.#workDir) rmSync(this.#workDir, { recursive: true, force: true });
  }

  /**
   * What to export so that a handler and the SDK use this plane. The credentials are the S3
   * emulator's; the plane itself accepts any.
   */
  environment(
    extra: { cluster?: string; s3Endpoint?: string; bucket?: string; taskDefinition?: string } = {},
  ): Record<string, string> {
    if (extra.cluster) this.#known.clusters.add(extra.cluster);
    return {
      ...this.#awsEnvironment(extra.s3Endpoint),
      [ENV.cluster]: extra.cluster ?? 'local',
      [ENV.taskDefinition]: extra.taskDefinition ?? 'immortal-runner',
      [ENV.subnets]: LOCAL_SUBNET,
      [ENV.securityGroups]: 'sg-0000000000000000a',
      ...(extra.bucket ? { [ENV.payloadBucket]: extra.bucket } : {}),
    };
  }

  /** Region, credentials and endpoints that point the AWS SDK at this plane and its S3. */
  #awsEnvironment(s3Endpoint?: string): Record<string, string> {
    const s3 = s3Endpoint ?? this.#options.s3Endpoint;
    return {
      AWS_REGION: this.region,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: this.#options.signingSecret ?? 'S3RVER',
      AWS_ENDPOINT_URL_ECS: this.url,
      AWS_ENDPOINT_URL_LAMBDA: this.url,
      // Where destinations are sent: the plane records what arrives (plane.deliveries).
      AWS_ENDPOINT_URL_SQS: this.url,
      AWS_ENDPOINT_URL_SNS: this.url,
      AWS_ENDPOINT_URL_EVENTBRIDGE: this.url,
      ...(s3 ? { AWS_ENDPOINT_URL_S3: s3 } : {}),
      ...(this.#xray.address ? { AWS_XRAY_DAEMON_ADDRESS: this.#xray.address } : {}),
    };
  }

  /** The X-Ray segments runner tasks sent to the plane's daemon, in order of arrival. */
  get segments(): Record<string, unknown>[] {
    return this.#xray.segments;
  }

  /**
   * Interrupts a running task the way Fargate Spot does: SIGTERM with stop code
   * `SpotInterruption`, then SIGKILL after the stop timeout (default 120 s, Spot's warning).
   */
  interruptTask(arn: string, options: { stopTimeoutMs?: number } = {}): void {
    this.#tasks.interrupt(this.#taskOrThrow(arn), options.stopTimeoutMs ?? 120_000);
  }

  /** Kills a task's container for its memory: SIGKILL, exit code 137, `OutOfMemoryError`. */
  killTaskForMemory(arn: string): void {
    this.#tasks.killForMemory(this.#taskOrThrow(arn));
  }

  #taskOrThrow(arn: string): LocalTask {
    const task = this.#tasks.find(arn);
    if (!task) throw new LocalPlaneError(`no task ${arn}`);
    return task;
  }

  /** The bodies of the RunTask requests received, in order (retries and refused calls included). */
  runTaskRequests(): Record<string, unknown>[] {
    return this.requests.filter((request) => request.action === 'RunTask').map((request) => request.body);
  }

  /** Forgets the recorded calls and requests and clears the faults, between tests. */
  resetRecords(faults: Faults = {}): void {
    this.faults = { ...faults };
    this.calls.length = 0;
    this.requests.length = 0;
    this.deliveries.length = 0;
    this.audit.length = 0;
    this.#xray.segments.length = 0;
  }

  /** Every task, in the order they were created. */
  tasks(): LocalTask[] {
    return this.#tasks.all();
  }

  task(arn: string): LocalTask | undefined {
    return this.#tasks.find(arn);
  }

  /** Resolves with the task once it is STOPPED. */
  waitForTask(arn: string, timeoutMs = 60_000): Promise<LocalTask> {
    const task = this.#tasks.find(arn);
    if (!task) return Promise.reject(new LocalPlaneError(`no task ${arn}`));
    if (task.lastStatus === 'STOPPED') return Promise.resolve(task);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('task-stopped', onStopped);
        reject(new LocalPlaneError(`task ${arn} did not stop within ${timeoutMs} ms`));
      }, timeoutMs);
      const onStopped = (stopped: LocalTask) => {
        if (stopped.arn !== arn) return;
        clearTimeout(timer);
        this.off('task-stopped', onStopped);
        resolve(stopped);
      };
      this.on('task-stopped', onStopped);
    });
  }
}
