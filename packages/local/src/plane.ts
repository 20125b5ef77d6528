import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CLIENT_TOKEN_PATTERN,
  DEFAULT_CONTAINER_NAME,
  ENV,
  MAX_TASK_TAGS,
  RUN_TASK_OVERRIDES_LIMIT,
  STARTED_BY_PATTERN,
} from '@immortal-lambda/protocol';
import { type AuditedCall, accessKeyOf } from './audit.js';
import { ApiError, LocalPlaneError } from './errors.js';
import { type LaunchedTask, ProcessLauncher, type TaskLauncher } from './launcher.js';
import { ACCOUNT, FunctionRegistry, type FunctionSpec } from './registry.js';

/**
 * Fault knobs, settable at any time (per test). Shares are probabilities from 0 to 1.
 *
 * @example
 * ```ts
 * import type { Faults } from '@immortal-lambda/local';
 * plane.faults = { throttle: 0.3, capacity: 0.1, latencyMs: 50 } satisfies Faults;
 * ```
 */
export interface Faults {
  /** Share of RunTask calls answered with ThrottlingException. */
  throttle?: number;
  /** Share of RunTask calls answered 200 with a capacity failure and no task. */
  capacity?: number;
  /** Delay before every ECS answer. */
  latencyMs?: number;
  /** Never answer RunTask. */
  hang?: boolean;
  /**
   * Share of Lambda API calls (GetFunction, GetLayerVersionByArn) answered 429
   * TooManyRequestsException, as Lambda's per-account control-plane rates do under a burst.
   */
  lambdaThrottle?: number;
}

/**
 * A task definition of the local ECS: the runner's container name and environment.
 *
 * @example
 * ```ts
 * plane.registerTaskDefinition({ family: 'runner-24h', containerName: 'runner', environment: { FARGATE_FALLBACK_MAX_RUNTIME_MS: '86400000' } });
 * ```
 */
export interface TaskDefinition {
  family: string;
  containerName: string;
  environment: Record<string, string>;
  /** The task and execution roles RunTask passes (recorded as iam:PassRole calls). */
  taskRoleArn?: string;
  executionRoleArn?: string;
}

type TaskStatus = 'PROVISIONING' | 'PENDING' | 'RUNNING' | 'DEPROVISIONING' | 'STOPPED';

/**
 * A task as the local ECS keeps it.
 *
 * @example
 * ```ts
 * import type { LocalTask } from '@immortal-lambda/local';
 * const failed = (tasks: LocalTask[]) => tasks.filter((task) => task.exitCode !== 0);
 * ```
 */
export interface LocalTask {
  id: string;
  arn: string;
  cluster: string;
  clusterArn: string;
  taskDefinitionArn: string;
  containerName: string;
  lastStatus: TaskStatus;
  desiredStatus: 'RUNNING' | 'STOPPED';
  startedBy: string | undefined;
  tags: { key: string; value: string }[];
  environment: Record<string, string>;
  capacityProvider: 'FARGATE' | 'FARGATE_SPOT';
  clientToken: string | undefined;
  exitCode: number | undefined;
  stoppedReason: string | undefined;
  stopCode: string | undefined;
  createdAt: number;
  startedAt: number | undefined;
  stoppedAt: number | undefined;
}

/**
 * Options of {@link LocalControlPlane}.
 *
 * @example
 * ```ts
 * import { LocalControlPlane, type PlaneOptions } from '@immortal-lambda/local';
 * const options: PlaneOptions = { region: 'us-east-1', provisioningMs: 500 };
 * const plane = new LocalControlPlane(options);
 * ```
 */
export interface PlaneOptions {
  region?: string;
  /** How tasks run: a local process (default), the runner image under podman, or nothing. */
  launcher?: TaskLauncher;
  /** The S3 endpoint handed to tasks (spilled envelopes). */
  s3Endpoint?: string;
  /** Where task roots are made; default a new temporary folder, removed on stop. */
  workDir?: string;
  /** How long code URLs stay valid (default 10 minutes, as on Lambda). */
  codeUrlTtlMs?: number;
  /** How long a task stays PROVISIONING before its runner starts (default 50 ms). */
  provisioningMs?: number;
  random?: () => number;
  now?: () => number;
}

const ECS_TARGET = 'AmazonEC2ContainerServiceV20141113.';

/**
 * The local control plane: the ECS (`RunTask`, `DescribeTasks`, `StopTask`, `ListTasks`) and
 * Lambda (`GetFunction`, `GetLayerVersionByArn`) APIs that immortal-lambda calls, served on
 * loopback in the wire protocols the AWS SDK speaks. `RunTask` starts the runner for real.
 *
 * Events: `task-started` (task), `task-log` ({ task, stream, line }), `task-stopped` (task).
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
  /** Every call served, as IAM authorises it: for checking permissions against real policies. */
  readonly audit: AuditedCall[] = [];
  readonly #launcher: TaskLauncher;
  readonly #tasks = new Map<string, LocalTask>();
  readonly #running = new Map<string, LaunchedTask>();
  readonly #tokens = new Map<string, { fingerprint: string; taskArn: string }>();
  readonly #taskDefinitions = new Map<string, TaskDefinition>();
  readonly #codeUrls = new Map<string, { zip: Buffer; issuedAt: number }>();
  readonly #hanging = new Set<ServerResponse>();
  readonly #options: PlaneOptions;
  readonly #random: () => number;
  readonly #now: () => number;
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
    this.#launcher = options.launcher ?? new ProcessLauncher();
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
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

  registerLayer(name: string, folder: string): string {
    return this.functions.registerLayer(name, folder);
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
    return this.#url;
  }

  /** Stops every running task (SIGTERM), waits for them, and closes the server. */
  async stop(): Promise<void> {
    const stopping = [...this.#tasks.values()].filter((task) => task.lastStatus !== 'STOPPED');
    for (const task of stopping) this.#stopTask(task, 'the local control plane is shutting down');
    await Promise.all(stopping.map((task) => this.waitForTask(task.arn, 10_000).catch(() => undefined)));
    for (const response of this.#hanging) response.destroy();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    if (!this.#options.workDir && this.#workDir) rmSync(this.#workDir, { recursive: true, force: true });
  }

  /**
   * What to export so that a handler and the SDK use this plane. The credentials are the S3
   * emulator's; the plane itself accepts any.
   */
  environment(
    extra: { cluster?: string; s3Endpoint?: string; bucket?: string } = {},
  ): Record<string, string> {
    return {
      ...this.#awsEnvironment(extra.s3Endpoint),
      [ENV.cluster]: extra.cluster ?? 'local',
      [ENV.taskDefinition]: 'immortal-runner',
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
      ...(s3 ? { AWS_ENDPOINT_URL_S3: s3 } : {}),
    };
  }

  /** Every task, in the order they were created. */
  tasks(): LocalTask[] {
    return [...this.#tasks.values()];
  }

  task(arn: string): LocalTask | undefined {
    return this.#tasks.get(arn);
  }

  /** Resolves with the task once it is STOPPED. */
  waitForTask(arn: string, timeoutMs = 60_000): Promise<LocalTask> {
    const task = this.#tasks.get(arn);
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

  async #dispatch(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://local');
    const target = String(request.headers['x-amz-target'] ?? '');
    if (request.method === 'POST' && target.startsWith(ECS_TARGET)) {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      await this.#ecs(
        target.slice(ECS_TARGET.length),
        Buffer.concat(chunks).toString('utf8'),
        response,
        accessKeyOf(request),
      );
      return;
    }
    if (request.method === 'GET') {
      const fn = /^\/2015-03-31\/functions\/([^/]+)$/.exec(url.pathname);
      if (fn?.[1])
        return this.#lambda('GetFunction', response, () => {
          const name = decodeURIComponent(fn[1] as string);
          const qualifier = url.searchParams.get('Qualifier');
          const arn = name.startsWith('arn:')
            ? name
            : `arn:aws:lambda:${this.region}:${ACCOUNT}:function:${name}`;
          this.#record(
            'lambda:GetFunction',
            qualifier ? `${arn}:${qualifier}` : arn,
            {},
            accessKeyOf(request),
          );
          return this.#getFunction(name, url);
        });
      if (url.pathname === '/2018-10-31/layers' && url.searchParams.get('find') === 'LayerVersion') {
        return this.#lambda('GetLayerVersionByArn', response, () => {
          const arn = url.searchParams.get('Arn') ?? '';
          this.#record('lambda:GetLayerVersion', arn, {}, accessKeyOf(request));
          return this.#getLayer(arn);
        });
      }
      const code = /^\/code\/([0-9a-f]+)$/.exec(url.pathname);
      if (code?.[1]) return this.#serveCode(code[1], response);
    }
    response.writeHead(404, {
      'content-type': 'application/json',
      'x-amzn-errortype': 'UnknownOperationException',
    });
    response.end(
      JSON.stringify({ message: `the local control plane does not serve ${request.method} ${url.pathname}` }),
    );
  }

  // ---- Lambda ---------------------------------------------------------------------------

  #lambda(action: string, response: ServerResponse, answer: () => unknown): void {
    this.calls.push(`Lambda.${action}`);
    try {
      const share = this.faults.lambdaThrottle ?? 0;
      if (share > 0 && this.#random() < share) {
        throw new ApiError('TooManyRequestsException', 'Rate exceeded', 429);
      }
      const body = answer();
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    } catch (error) {
      const api = error instanceof ApiError ? error : new ApiError('ServiceException', String(error), 500);
      response.writeHead(api.status, { 'content-type': 'application/json', 'x-amzn-errortype': api.type });
      response.end(JSON.stringify({ Type: 'User', Message: api.message, message: api.message }));
    }
  }

  #offerCode(zip: Buffer): string {
    const token = randomBytes(16).toString('hex');
    this.#codeUrls.set(token, { zip, issuedAt: this.#now() });
    const ttl = Math.round((this.#options.codeUrlTtlMs ?? 600_000) / 1000);
    return `${this.#url}/code/${token}?X-Amz-Expires=${ttl}`;
  }

  #getFunction(name: string, url: URL) {
    const qualifier = url.searchParams.get('Qualifier') ?? undefined;
    const fn = this.functions.findFunction(name, qualifier);
    if (!fn) {
      throw new ApiError(
        'ResourceNotFoundException',
        `Function not found: arn:aws:lambda:${this.region}:${ACCOUNT}:function:${name}${qualifier ? `:${qualifier}` : ''}`,
        404,
      );
    }
    return {
      Configuration: {
        FunctionName: fn.name,
        FunctionArn: `${fn.arn}:${fn.version}`,
        Runtime: fn.runtime,
        Handler: fn.handler,
        CodeSize: fn.zip.length,
        CodeSha256: fn.sha256,
        Timeout: fn.timeout,
        MemorySize: fn.memorySize,
        Version: fn.version,
        PackageType: 'Zip',
        Environment: { Variables: fn.environment },
        Layers: fn.layers.map((arn) => ({
          Arn: arn,
          CodeSize: this.functions.findLayer(arn)?.zip.length ?? 0,
        })),
      },
      Code: { RepositoryType: 'S3', Location: this.#offerCode(fn.zip) },
    };
  }

  #getLayer(arn: string) {
    const layer = this.functions.findLayer(arn);
    if (!layer) throw new ApiError('ResourceNotFoundException', `Layer version ${arn} does not exist`, 404);
    return {
      LayerVersionArn: arn,
      Content: { Location: this.#offerCode(layer.zip), CodeSha256: layer.sha256, CodeSize: layer.zip.length },
    };
  }

  #serveCode(token: string, response: ServerResponse): void {
    const offered = this.#codeUrls.get(token);
    const expired = offered && this.#now() - offered.issuedAt > (this.#options.codeUrlTtlMs ?? 600_000);
    if (!offered || expired) {
      response.writeHead(403, { 'content-type': 'application/xml' });
      response.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${
          offered ? 'Request has expired' : 'Access Denied'
        }</Message></Error>`,
      );
      return;
    }
    response.writeHead(200, {
      'content-type': 'application/zip',
      'content-length': String(offered.zip.length),
    });
    response.end(offered.zip);
  }

  // ---- audit -----------------------------------------------------------------------------

  #record(
    action: string,
    resource: string,
    context: Record<string, string>,
    accessKeyId: string | undefined,
  ) {
    this.audit.push({ action, resource, context, accessKeyId });
  }

  /** Records an ECS call as IAM authorises it, before it is answered (AWS authorises first). */
  #auditEcs(action: string, body: Record<string, unknown>, accessKeyId: string | undefined) {
    const cluster = this.#clusterName(body.cluster);
    const onCluster = { 'ecs:cluster': `arn:aws:ecs:${this.region}:${ACCOUNT}:cluster/${cluster}` };
    const taskArn = (ref: string) =>
      ref.startsWith('arn:') ? ref : `arn:aws:ecs:${this.region}:${ACCOUNT}:task/${cluster}/${ref}`;
    switch (action) {
      case 'RunTask': {
        const family = /(?:task-definition\/)?([A-Za-z0-9_-]+)(?::(\d+))?$/.exec(
          String(body.taskDefinition ?? ''),
        );
        const definition = family?.[1] ? this.#taskDefinitions.get(family[1]) : undefined;
        this.#record(
          'ecs:RunTask',
          `arn:aws:ecs:${this.region}:${ACCOUNT}:task-definition/${family?.[1] ?? ''}:${family?.[2] ?? '1'}`,
          onCluster,
          accessKeyId,
        );
        if (Array.isArray(body.tags) && body.tags.length > 0) {
          this.#record('ecs:TagResource', taskArn('*'), { 'ecs:CreateAction': 'RunTask' }, accessKeyId);
        }
        for (const role of [definition?.taskRoleArn, definition?.executionRoleArn]) {
          if (role)
            this.#record(
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
        this.#record('ecs:ListTasks', '*', onCluster, accessKeyId);
        return;
      case 'DescribeTasks':
        for (const ref of (body.tasks as string[] | undefined) ?? [])
          this.#record('ecs:DescribeTasks', taskArn(ref), onCluster, accessKeyId);
        return;
      case 'StopTask':
        this.#record('ecs:StopTask', taskArn(String(body.task ?? '')), onCluster, accessKeyId);
        return;
      default:
    }
  }

  // ---- ECS ------------------------------------------------------------------------------

  async #ecs(action: string, text: string, response: ServerResponse, accessKeyId?: string): Promise<void> {
    this.calls.push(`ECS.${action}`);
    const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    this.#auditEcs(action, body, accessKeyId);
    if (this.faults.latencyMs) await new Promise((resolve) => setTimeout(resolve, this.faults.latencyMs));
    if (action === 'RunTask' && this.faults.hang) {
      this.#hanging.add(response);
      response.on('close', () => this.#hanging.delete(response));
      return;
    }
    let answer: unknown;
    try {
      switch (action) {
        case 'RunTask':
          answer = this.#runTask(body);
          break;
        case 'DescribeTasks':
          answer = this.#describeTasks(body);
          break;
        case 'StopTask':
          answer = this.#stopTaskCall(body);
          break;
        case 'ListTasks':
          answer = this.#listTasks(body);
          break;
        default:
          throw new ApiError(
            'UnknownOperationException',
            `the local control plane does not serve ECS ${action}`,
          );
      }
    } catch (error) {
      const api = error instanceof ApiError ? error : new ApiError('ServerException', String(error), 500);
      response.writeHead(api.status, {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-errortype': api.type,
      });
      response.end(JSON.stringify({ __type: api.type, message: api.message, ...api.fields }));
      return;
    }
    response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
    response.end(JSON.stringify(answer));
  }

  #clusterName(value: unknown): string {
    const cluster = typeof value === 'string' && value ? value : 'default';
    return /:cluster\/(.+)$/.exec(cluster)?.[1] ?? cluster;
  }

  #runTask(body: Record<string, unknown>) {
    if ((this.faults.throttle ?? 0) > 0 && this.#random() < (this.faults.throttle ?? 0)) {
      throw new ApiError('ThrottlingException', 'Rate exceeded');
    }
    const cluster = this.#clusterName(body.cluster);
    const family = /(?:task-definition\/)?([A-Za-z0-9_-]+)(?::\d+)?$/.exec(
      String(body.taskDefinition ?? ''),
    )?.[1];
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
    if (!network?.awsvpcConfiguration?.subnets?.length) {
      throw new ApiError(
        'InvalidParameterException',
        "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
      );
    }
    const overrides = body.overrides as
      | { containerOverrides?: { name?: string; environment?: { name: string; value: string }[] }[] }
      | undefined;
    if (overrides && JSON.stringify(overrides).length > RUN_TASK_OVERRIDES_LIMIT) {
      throw new ApiError(
        'InvalidParameterException',
        `Container Overrides length must be at most ${RUN_TASK_OVERRIDES_LIMIT}`,
      );
    }
    for (const override of overrides?.containerOverrides ?? []) {
      if (override.name !== definition.containerName) {
        throw new ApiError(
          'InvalidParameterException',
          `Override for container named ${override.name} is not a container in the TaskDefinition.`,
        );
      }
    }
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
    if (tags.length > MAX_TASK_TAGS)
      throw new ApiError('InvalidParameterException', 'a task may have at most 50 tags');
    const { clientToken: _token, ...rest } = body;
    const fingerprint = createHash('sha256').update(JSON.stringify(rest)).digest('hex');
    const key = `${cluster}|${clientToken}`;
    if (clientToken !== undefined) {
      const seen = this.#tokens.get(key);
      if (seen && seen.fingerprint !== fingerprint) {
        // As ECS does, the exception names the task the token already started.
        throw new ApiError(
          'ConflictException',
          `The clientToken ${clientToken} was used with different parameters.`,
          400,
          { resourceIds: [seen.taskArn] },
        );
      }
      if (seen) return { tasks: [this.#describe(this.#tasks.get(seen.taskArn) as LocalTask)], failures: [] };
    }
    if ((this.faults.capacity ?? 0) > 0 && this.#random() < (this.faults.capacity ?? 0)) {
      return {
        tasks: [],
        failures: [
          {
            arn: `arn:aws:ecs:${this.region}:${ACCOUNT}:cluster/${cluster}`,
            reason:
              'Capacity is unavailable at this time. Please try again later or in a different availability zone',
          },
        ],
      };
    }
    const environment: Record<string, string> = { ...definition.environment };
    for (const override of overrides?.containerOverrides ?? []) {
      for (const variable of override.environment ?? []) environment[variable.name] = variable.value;
    }
    const id = randomBytes(16).toString('hex');
    const task: LocalTask = {
      id,
      arn: `arn:aws:ecs:${this.region}:${ACCOUNT}:task/${cluster}/${id}`,
      cluster,
      clusterArn: `arn:aws:ecs:${this.region}:${ACCOUNT}:cluster/${cluster}`,
      taskDefinitionArn: `arn:aws:ecs:${this.region}:${ACCOUNT}:task-definition/${definition.family}:1`,
      containerName: definition.containerName,
      lastStatus: 'PROVISIONING',
      desiredStatus: 'RUNNING',
      startedBy,
      tags,
      environment,
      capacityProvider: provider,
      clientToken,
      exitCode: undefined,
      stoppedReason: undefined,
      stopCode: undefined,
      createdAt: this.#now(),
      startedAt: undefined,
      stoppedAt: undefined,
    };
    this.#tasks.set(task.arn, task);
    if (clientToken !== undefined) this.#tokens.set(key, { fingerprint, taskArn: task.arn });
    setTimeout(() => this.#launch(task), this.#options.provisioningMs ?? 50);
    return { tasks: [this.#describe(task)], failures: [] };
  }

  #launch(task: LocalTask): void {
    if (task.desiredStatus === 'STOPPED') {
      this.#markStopped(task, undefined);
      return;
    }
    task.lastStatus = 'PENDING';
    const root = join(this.#workDir as string, task.id);
    mkdirSync(root, { recursive: true });
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...this.#awsEnvironment(),
      AWS_DEFAULT_REGION: this.region,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      [ENV.taskRoot]: join(root, 'task'),
      [ENV.layersRoot]: join(root, 'opt'),
      ...task.environment,
    };
    const launched = this.#launcher.launch(env, {
      onLine: (stream, line) => this.emit('task-log', { task, stream, line }),
      onExit: (exitCode) => {
        this.#running.delete(task.arn);
        this.#markStopped(task, exitCode ?? undefined);
        rmSync(root, { recursive: true, force: true });
      },
    });
    this.#running.set(task.arn, launched);
    task.lastStatus = 'RUNNING';
    task.startedAt = this.#now();
    this.emit('task-started', task);
  }

  #markStopped(task: LocalTask, exitCode: number | undefined): void {
    task.lastStatus = 'STOPPED';
    task.desiredStatus = 'STOPPED';
    task.exitCode = exitCode;
    task.stoppedAt = this.#now();
    task.stopCode ??= 'EssentialContainerExited';
    task.stoppedReason ??= 'Essential container in task exited';
    this.emit('task-stopped', task);
  }

  #stopTask(task: LocalTask, reason: string): void {
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

  #stopTaskCall(body: Record<string, unknown>) {
    const arn = String(body.task ?? '');
    const task = this.#tasks.get(arn) ?? [...this.#tasks.values()].find((t) => t.id === arn);
    if (!task) throw new ApiError('InvalidParameterException', `The referenced task was not found: ${arn}`);
    this.#stopTask(task, String(body.reason ?? 'Task stopped by user'));
    return { task: this.#describe(task) };
  }

  #describeTasks(body: Record<string, unknown>) {
    const tasks: unknown[] = [];
    const failures: unknown[] = [];
    for (const ref of (body.tasks as string[] | undefined) ?? []) {
      const task = this.#tasks.get(ref) ?? [...this.#tasks.values()].find((t) => t.id === ref);
      if (task) tasks.push(this.#describe(task));
      else failures.push({ arn: ref, reason: 'MISSING' });
    }
    return { tasks, failures };
  }

  #listTasks(body: Record<string, unknown>) {
    const cluster = this.#clusterName(body.cluster);
    const desired = String(body.desiredStatus ?? 'RUNNING');
    const taskArns = [...this.#tasks.values()]
      .filter((task) => task.cluster === cluster)
      .filter((task) => body.startedBy === undefined || task.startedBy === body.startedBy)
      .filter((task) =>
        desired === 'STOPPED' ? task.lastStatus === 'STOPPED' : task.lastStatus !== 'STOPPED',
      )
      .map((task) => task.arn);
    return { taskArns };
  }

  #describe(task: LocalTask) {
    const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);
    return {
      taskArn: task.arn,
      clusterArn: task.clusterArn,
      taskDefinitionArn: task.taskDefinitionArn,
      lastStatus: task.lastStatus,
      desiredStatus: task.desiredStatus,
      launchType: 'FARGATE',
      capacityProviderName: task.capacityProvider,
      startedBy: task.startedBy,
      tags: task.tags,
      createdAt: seconds(task.createdAt),
      startedAt: seconds(task.startedAt),
      stoppedAt: seconds(task.stoppedAt),
      stopCode: task.lastStatus === 'STOPPED' ? task.stopCode : undefined,
      stoppedReason: task.lastStatus === 'STOPPED' ? task.stoppedReason : undefined,
      containers: [
        {
          name: task.containerName,
          lastStatus:
            task.lastStatus === 'STOPPED' ? 'STOPPED' : task.lastStatus === 'RUNNING' ? 'RUNNING' : 'PENDING',
          exitCode: task.exitCode,
        },
      ],
      overrides: { containerOverrides: [{ name: task.containerName }] },
    };
  }
}
