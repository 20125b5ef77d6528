import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONTAINER_NAME, ENV } from '@immortal-lambda/protocol';
import { type AuditedCall, accessKeyOf } from './audit.js';
import { LocalPlaneError } from './errors.js';
import { ProcessLauncher } from './launcher.js';
import { EcsApi } from './plane/ecs-api.js';
import { taskStateChange } from './plane/events.js';
import { answerEcs, answerLambda, ECS_TARGET, notServed, readBody } from './plane/http.js';
import { LambdaApi } from './plane/lambda-api.js';
import type { Faults, LocalTask, PlaneContext, PlaneOptions, TaskDefinition } from './plane/model.js';
import {
  answerEvents,
  answerSns,
  answerSqs,
  type Delivery,
  EVENTS_TARGET,
  SQS_TARGET,
} from './plane/sinks.js';
import { TaskLifecycle } from './plane/tasks.js';
import { XrayDaemon } from './plane/xray.js';
import { FunctionRegistry, type FunctionSpec } from './registry.js';

export type { TaskStateChangeEvent } from './plane/events.js';
export type { Faults, LocalTask, PlaneOptions, TaskDefinition } from './plane/model.js';
export type { Delivery } from './plane/sinks.js';

/**
 * An ECS request as the plane received it.
 *
 * @example
 * ```ts
 * import type { EcsRequest } from '@immortal-lambda/local';
 * const runTasks = (requests: EcsRequest[]) => requests.filter((r) => r.action === 'RunTask').map((r) => r.body);
 * ```
 */
export interface EcsRequest {
  action: string;
  body: Record<string, unknown>;
}

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
  readonly #hanging = new Set<ServerResponse>();
  readonly #options: PlaneOptions;
  readonly #tasks: TaskLifecycle;
  readonly #ecs: EcsApi;
  readonly #lambda: LambdaApi;
  #server: Server | undefined;
  #url = '';
  #workDir: string | undefined;

  constructor(options: PlaneOptions = {}) {
    super();
    // Stopping the plane waits on every task still running: one listener each, legitimately.
    this.setMaxListeners(0);
    this.#options = options;
    this.region = options.region ?? 'eu-west-1';
    this.functions = new FunctionRegistry(this.region);
    const now = options.now ?? Date.now;
    const context: PlaneContext = {
      region: this.region,
      faults: () => this.faults,
      random: options.random ?? Math.random,
      now,
      record: (action, resource, conditions, accessKeyId) =>
        this.audit.push({ action, resource, context: conditions, accessKeyId }),
    };
    this.#tasks = new TaskLifecycle({
      launcher: options.launcher ?? new ProcessLauncher(),
      now,
      workDir: () => this.#workDir as string,
      awsEnvironment: () => this.#awsEnvironment(),
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
    this.#ecs = new EcsApi(context, this.#tasks, this.#taskDefinitions, options.provisioningMs ?? 50);
    this.#lambda = new LambdaApi(context, this.functions, options.codeUrlTtlMs ?? 600_000, () => this.#url);
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

  registerTaskDefinition(definition: TaskDefinition): void {
    this.#taskDefinitions.set(definition.family, definition);
  }

  /** Starts serving on loopback. Resolves to the base URL for every `AWS_ENDPOINT_URL_*`. */
  async start(options: { port?: number; host?: string } = {}): Promise<string> {
    const server = createServer((request, response) => {
      this.#dispatch(request, response).catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end(String(error));
      });
    });
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? new LocalPlaneError(
                `port ${options.port} on ${host} is in use: stop what listens there, or choose another port (--port)`,
                { cause: error },
              )
            : error,
        ),
      );
      server.listen(options.port ?? 0, host, () => resolve());
    });
    this.#server = server;
    this.#url = `http://${host}:${(server.address() as AddressInfo).port}`;
    this.#workDir = this.#options.workDir ?? mkdtempSync(join(tmpdir(), 'immortal-local-'));
    await this.#xray.start((segment) => this.emit('trace-segment', segment));
    return this.#url;
  }

  /** Stops every running task (SIGTERM), waits for them, and closes the server. */
  async stop(): Promise<void> {
    const stopping = this.#tasks.all().filter((task) => task.lastStatus !== 'STOPPED');
    for (const task of stopping) this.#tasks.stop(task, 'the local control plane is shutting down');
    await Promise.all(stopping.map((task) => this.waitForTask(task.arn, 10_000).catch(() => undefined)));
    for (const response of this.#hanging) response.destroy();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
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
    return {
      ...this.#awsEnvironment(extra.s3Endpoint),
      [ENV.cluster]: extra.cluster ?? 'local',
      [ENV.taskDefinition]: extra.taskDefinition ?? 'immortal-runner',
      [ENV.subnets]: 'subnet-0000000000000000a',
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
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
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

  #deliver(delivery: Delivery): void {
    this.deliveries.push(delivery);
    this.emit('delivery', delivery);
  }

  /** The ECS task metadata endpoint's `task` document, which the runner reads its task ARN from. */
  #serveMetadata(id: string, response: ServerResponse): void {
    const task = this.#tasks.find(id);
    if (!task) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        Cluster: task.clusterArn,
        TaskARN: task.arn,
        Family: task.family,
        DesiredStatus: task.desiredStatus,
        KnownStatus: task.lastStatus,
        LaunchType: 'FARGATE',
        CapacityProviderName: task.capacityProvider,
        AvailabilityZone: `${this.region}a`,
      }),
    );
  }

  /** Routes a request to the ECS or Lambda API, or to a code download. */
  async #dispatch(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://local');
    const target = String(request.headers['x-amz-target'] ?? '');
    const accessKeyId = accessKeyOf(request);
    if (request.method === 'POST' && target.startsWith(ECS_TARGET)) {
      const action = target.slice(ECS_TARGET.length);
      const text = await readBody(request);
      this.calls.push(`ECS.${action}`);
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      this.requests.push({ action, body });
      this.#ecs.audit(action, body, accessKeyId);
      if (this.faults.latencyMs) await new Promise((resolve) => setTimeout(resolve, this.faults.latencyMs));
      if (action === 'RunTask' && this.faults.hang) {
        this.#hanging.add(response);
        response.on('close', () => this.#hanging.delete(response));
        return;
      }
      answerEcs(response, () => this.#ecs.answer(action, body));
      return;
    }
    if (request.method === 'POST' && target.startsWith(SQS_TARGET)) {
      const body = JSON.parse((await readBody(request)) || '{}') as Record<string, unknown>;
      this.calls.push(`SQS.${target.slice(SQS_TARGET.length)}`);
      return answerSqs(target.slice(SQS_TARGET.length), body, (d) => this.#deliver(d), response);
    }
    if (request.method === 'POST' && target.startsWith(EVENTS_TARGET)) {
      const body = JSON.parse((await readBody(request)) || '{}') as Record<string, unknown>;
      this.calls.push(`EventBridge.${target.slice(EVENTS_TARGET.length)}`);
      return answerEvents(target.slice(EVENTS_TARGET.length), body, (d) => this.#deliver(d), response);
    }
    if (request.method === 'POST' && url.pathname === '/' && !target) {
      const form = new URLSearchParams(await readBody(request));
      this.calls.push(`SNS.${form.get('Action')}`);
      return answerSns(form, (d) => this.#deliver(d), response);
    }
    const invoke = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(url.pathname);
    if (request.method === 'POST' && invoke?.[1]) {
      const payload = await readBody(request);
      this.calls.push('Lambda.Invoke');
      return answerLambda(
        response,
        () => {
          this.#lambda.invoke(decodeURIComponent(invoke[1] as string), request.headers, accessKeyId);
          this.#deliver({ service: 'lambda', target: decodeURIComponent(invoke[1] as string), payload });
          return {};
        },
        202,
      );
    }
    if (request.method === 'GET') {
      const metadata = /^\/v4\/([0-9a-f]+)\/task$/.exec(url.pathname);
      if (metadata?.[1]) return this.#serveMetadata(metadata[1], response);
      const invokeConfig = /^\/2019-09-25\/functions\/([^/]+)\/event-invoke-config$/.exec(url.pathname);
      if (invokeConfig?.[1]) {
        this.calls.push('Lambda.GetFunctionEventInvokeConfig');
        return answerLambda(response, () =>
          this.#lambda.eventInvokeConfig(decodeURIComponent(invokeConfig[1] as string), url, accessKeyId),
        );
      }
      const fn = /^\/2015-03-31\/functions\/([^/]+)$/.exec(url.pathname);
      if (fn?.[1]) {
        this.calls.push('Lambda.GetFunction');
        return answerLambda(response, () =>
          this.#lambda.getFunction(decodeURIComponent(fn[1] as string), url, accessKeyId),
        );
      }
      if (url.pathname === '/2018-10-31/layers' && url.searchParams.get('find') === 'LayerVersion') {
        this.calls.push('Lambda.GetLayerVersionByArn');
        return answerLambda(response, () =>
          this.#lambda.getLayer(url.searchParams.get('Arn') ?? '', accessKeyId),
        );
      }
      const code = /^\/code\/([0-9a-f]+)$/.exec(url.pathname);
      if (code?.[1]) return this.#lambda.serveCode(code[1], response);
    }
    notServed(response, request.method, url.pathname);
  }
}
