import type { AuditedCall } from '../audit.js';
import type { TaskLauncher } from '../launcher.js';
import type { LimitName, Limits } from './limits.js';

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
  /** Answer exactly the next N RunTask calls 200 with a capacity failure and no task (counted down). */
  capacityNext?: number;
  /** Delay before every ECS answer. */
  latencyMs?: number;
  /** Never answer RunTask. */
  hang?: boolean;
  /**
   * Share of Lambda API calls (GetFunction, GetLayerVersionByArn) answered 429
   * TooManyRequestsException, as Lambda's per-account control-plane rates do under a burst.
   */
  lambdaThrottle?: number;
  /** Answer exactly the next N Lambda API calls with TooManyRequestsException (counted down). */
  lambdaThrottleNext?: number;
  /** Answer GetFunction with AccessDeniedException, as for a role without lambda:GetFunction. */
  lambdaDenied?: boolean;
  /** Answer exactly the next N RunTask calls with ThrottlingException (counted down). */
  throttleNext?: number;
  /** The next N tasks fail to start (TaskFailedToStart, ResourceInitializationError), counted down. */
  failToStart?: number;
  /** Answer RunTask 200 with this failure (`MISSING`, `RESOURCE:MEMORY`, …) and no task. */
  failureReason?: string;
  /**
   * How code downloads misbehave: `expired` and `denied` answer 403, `truncate-once` and
   * `server-error-once` break the first download of each URL, `truncate-always` every one.
   */
  download?: 'expired' | 'denied' | 'truncate-once' | 'truncate-always' | 'server-error-once';
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
  /**
   * For a container image function: its local image and the runner image brought in beside it.
   * Tasks of this definition run through podman as on ECS (see `FunctionImageLauncher`) whatever
   * launcher the plane has.
   */
  image?: { function: string; runner: string };
  /** The task's size: CPU units and MiB (default 1024 and 2048), a pair Fargate runs. */
  cpu?: number;
  memory?: number;
  /** Its `runtimePlatform.cpuArchitecture` (default `X86_64`), as DescribeTaskDefinition reports it. */
  cpuArchitecture?: 'X86_64' | 'ARM64';
  /**
   * Let RunTask's overrides set variables that change how the task's processes start
   * (`NODE_OPTIONS`, `LD_PRELOAD`, …). Off by default: the plane runs tasks as local processes,
   * and such a variable would run what a request names on this machine.
   */
  allowProcessOverrides?: boolean;
}

export type TaskStatus = 'PROVISIONING' | 'PENDING' | 'RUNNING' | 'DEPROVISIONING' | 'STOPPED';

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
  /** The task definition's family. */
  family: string;
  /** An image function's task: the images its task definition names (see {@link TaskDefinition}). */
  image: TaskDefinition['image'];
  containerName: string;
  /** The task definition's task role: whose credentials the task's code signs with. */
  taskRoleArn: string | undefined;
  lastStatus: TaskStatus;
  desiredStatus: 'RUNNING' | 'STOPPED';
  startedBy: string | undefined;
  tags: { key: string; value: string }[];
  environment: Record<string, string>;
  /** RunTask's overrides as given (what DescribeTasks and task events carry). */
  overrides: {
    cpu?: string;
    memory?: string;
    containerOverrides: { name: string; environment?: { name: string; value: string }[] }[];
  };
  /** The size the task runs with (CPU units, MiB): its overrides', else its definition's. */
  cpu: number;
  memory: number;
  capacityProvider: 'FARGATE' | 'FARGATE_SPOT';
  clientToken: string | undefined;
  exitCode: number | undefined;
  stoppedReason: string | undefined;
  stopCode: string | undefined;
  /** Why the container stopped, as ECS reports it (`OutOfMemoryError: …`). */
  containerReason: string | undefined;
  /** Changes of state so far (the `version` of its events). */
  version: number;
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
  /** The container engine that runs container image functions' tasks (default `podman`). */
  containerEngine?: string;
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
  /**
   * Decides each ECS, Lambda and IAM call as IAM would for the credentials that signed it (the
   * call's `accessKeyId`): a call it denies is answered `AccessDeniedException`, as the service
   * answers it (ECS 400, Lambda 403), before anything is done. Default: every call allowed.
   */
  authorize?: (call: AuditedCall) => boolean;
  /**
   * Decides IAM's SimulatePrincipalPolicy for a role, call by call (the call's `accessKeyId` is
   * {@link roleAccessKey} of the role simulated). Default: `authorize`; neither, every call allowed.
   */
  simulate?: (call: AuditedCall) => boolean;
  /** Clusters RunTask, ListTasks, DescribeTasks and StopTask accept, beside `default` and `local`. */
  clusters?: readonly string[];
  /** Subnets RunTask accepts, beside the one {@link LocalControlPlane.environment} hands out. */
  subnets?: readonly string[];
  /**
   * The secret of every key the plane hands out (its `environment()`, its tasks' credentials).
   * Given, every request must carry a valid Signature Version 4 signature made with it, as AWS
   * requires one: a web page, which cannot know it, is refused whatever it sends. Only code
   * downloads and the task metadata endpoint are served unsigned, as AWS serves them. The
   * `immortal-local` CLI draws one at random per run. Default none: signatures are not checked.
   */
  signingSecret?: string;
  /**
   * The rates applied: `'aws'` answers as AWS does when its documented rates are spent (Fargate
   * launches, RunTask, ListTasks and DescribeTasks, Lambda's GetFunction and other control-plane
   * calls; see {@link AWS_LIMITS}), with `ThrottlingException` from ECS and
   * `TooManyRequestsException` from Lambda. Default `'none'`.
   */
  limits?: Limits;
  /**
   * Whether a client token whose RunTask answered only `failures[]` is remembered: the same
   * parameters get the same failures again, other parameters `ConflictException` naming no task.
   * ECS's documentation does not say which it does (its idempotency page speaks of requests that
   * succeeded), so code must be right either way and tests run both. Default false: forgotten.
   */
  rememberFailedTokens?: boolean;
}

/**
 * The clusters and subnets that exist: ECS refuses a call on any other cluster
 * (`ClusterNotFoundException`) and a task in any other subnet (EC2's `InvalidSubnetID.NotFound`,
 * inside an `InvalidParameterException`).
 */
export interface KnownResources {
  clusters: Set<string>;
  subnets: Set<string>;
  /** How each subnet reaches the internet, and its VPC (EC2's Describe* answers); default public. */
  subnetDetails: Map<string, SubnetSpec>;
  /** The interface and gateway endpoints of each VPC, by service name. */
  endpoints: { serviceName: string; vpcId: string }[];
}

/**
 * A subnet of the local network, as EC2 would describe it: its VPC and its way out (`public`: a
 * route to an internet gateway; `nat`: to a NAT gateway; `none`: only the VPC's endpoints).
 *
 * @example
 * ```ts
 * plane.registerNetwork({ subnets: [{ id: 'subnet-0aaaaaaaaaaaaaaa1', internet: 'none' }], endpoints: ['com.amazonaws.eu-west-1.s3'] });
 * ```
 */
export interface SubnetSpec {
  id: string;
  /** Default `vpc-local`. */
  vpcId?: string;
  /** Default `public`. */
  internet?: 'public' | 'nat' | 'none';
}

/** The subnet {@link LocalControlPlane.environment} hands out. */
export const LOCAL_SUBNET = 'subnet-0000000000000000a';

/** A task's wire shape, as DescribeTasks, RunTask and StopTask answer it. */
export function describeTask(task: LocalTask) {
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
        ...(task.containerReason ? { reason: task.containerReason } : {}),
      },
    ],
    overrides: task.overrides,
    cpu: String(task.cpu),
    memory: String(task.memory),
  };
}

/** The cluster name of a RunTask/ListTasks `cluster` (a name or an ARN; `default` when absent). */
export function clusterName(value: unknown): string {
  const cluster = typeof value === 'string' && value ? value : 'default';
  return /:cluster\/(.+)$/.exec(cluster)?.[1] ?? cluster;
}

/** What the plane's parts share: where they are, their time and chance, and the records. */
export interface PlaneContext {
  region: string;
  faults: () => Faults;
  random: () => number;
  now: () => number;
  /** Takes a token of one of AWS's rates (see {@link RateLimiter}): false when it is spent. */
  limit: (name: LimitName) => boolean;
  /** Notes a call as IAM authorises it. */
  record: (
    action: string,
    resource: string,
    context: Record<string, string>,
    accessKeyId: string | undefined,
  ) => void;
}
