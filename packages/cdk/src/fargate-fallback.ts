import {
  type CapacityOption,
  DEFAULT_CONTAINER_NAME,
  DEFAULT_OUTCOME_PREFIX,
  DEFAULT_PAYLOAD_PREFIX,
  ENV,
  type EnvelopeTransport,
} from '@immortal-lambda/protocol';
import { type Duration, Fn, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { destinationEndpoints, uniqueEndpoints } from './parts/destination-endpoints.js';
import { holdSqsBatches } from './parts/event-sources.js';
import { knownDestinations } from './parts/known-destinations.js';
import { warnWhenMarginCoversTimeout } from './parts/margin.js';
import { type FallbackNetworking, TaskNetwork } from './parts/network.js';
import { expireOnGivenBucket, payloadBucket } from './parts/payload-bucket.js';
import { bucketKeyStatement, RunnerPermissions } from './parts/permissions.js';
import { RunnerTask } from './parts/runner-task.js';
import { memoryCeiling } from './parts/task-size.js';
import { SafetyNet } from './safety-net.js';

export type { FallbackNetworking } from './parts/network.js';
export { runnerImageDirectory } from './parts/runner-task.js';

/**
 * Where spilled envelopes live in the payload bucket; the middleware's default prefix.
 *
 * @example
 * ```ts
 * import { ENVELOPE_PREFIX } from '@immortal-lambda/cdk';
 * bucket.grantRead(auditRole, `${ENVELOPE_PREFIX}*`);
 * ```
 */
export const ENVELOPE_PREFIX = DEFAULT_PAYLOAD_PREFIX;

/**
 * Where outcome records live in the payload bucket: `<prefix><function name>/<request id>/`.
 *
 * @example
 * ```ts
 * import { OUTCOME_PREFIX } from '@immortal-lambda/cdk';
 * bucket.grantRead(statusFunction, `${OUTCOME_PREFIX}${reportJob.functionName}/*`);
 * ```
 */
export const OUTCOME_PREFIX = DEFAULT_OUTCOME_PREFIX;

/**
 * Props of {@link FargateFallback}.
 *
 * @example
 * ```ts
 * import type { FargateFallbackProps } from '@immortal-lambda/cdk';
 * const props: FargateFallbackProps = { function: reportJob, capacity: 'FARGATE_SPOT,FARGATE' };
 * ```
 */
export interface FargateFallbackProps {
  /** The function to attach the fallback to. Its code must be wrapped with `withFargateFallback`. */
  function: lambda.Function;
  /**
   * More layers the task may fetch (lambda:GetLayerVersion). The function's own layers are found
   * without it; a layer added to the function after the fallback fails the synth with a message.
   */
  layers?: lambda.ILayerVersion[];
  /** An existing VPC; default a new one across two availability zones, shaped by `networking`. */
  vpc?: ec2.IVpc;
  /** An existing cluster; default a new one in the VPC. Spot needs its Fargate capacity providers. */
  cluster?: ecs.ICluster;
  /** An existing payload bucket; default a new one (encrypted, TLS only, private, envelopes expiring). */
  bucket?: s3.IBucket;
  /** `public` (default, nothing at rest) or `private` (VPC endpoints). Ignored with `vpc`. */
  networking?: FallbackNetworking;
  /** Subnets for the tasks in a given `vpc`; default its public or private subnets per `networking`. */
  subnets?: ec2.SubnetSelection;
  /** `FARGATE` (default), `FARGATE_SPOT`, or `FARGATE_SPOT,FARGATE` (Spot, then on-demand). */
  capacity?: CapacityOption;
  /**
   * The runner image; default built from `@immortal-lambda/runner`'s Dockerfile as an asset, for
   * the function's architecture, on Lambda's public Node.js base image of the function's runtime.
   */
  runnerImage?: ecs.ContainerImage;
  /**
   * The base image of the default runner image; default `public.ecr.aws/lambda/nodejs:<NN>` of
   * the function's runtime (`public.ecr.aws/lambda/nodejs:22` for a container image function,
   * whose handler runs on its own image's node: the runner image only brings the runner in).
   */
  runnerBaseImage?: string;
  /**
   * For a container image function (`DockerImageFunction`, or any `PackageType: Image`): the image
   * its task runs, which must be the one the function runs. Default: the function's own image
   * asset (`DockerImageCode.fromImageAsset`); pass it for an image from a repository
   * (`ecs.ContainerImage.fromEcrRepository(repository, tagOrDigest)`).
   */
  functionImage?: ecs.ContainerImage;
  /**
   * For a container image function: its handler, as its image's CMD names it (`index.handler`).
   * Lambda's GetFunction returns an image's command only when the function overrides it, so the
   * runner task carries it (`FARGATE_FALLBACK_IMAGE_HANDLER`). Default: the `cmd` the function's
   * image code sets; without either, the synth fails.
   */
  imageHandler?: string;
  /**
   * More interface endpoints for `networking: 'private'`, for the AWS services the handler
   * itself calls (for example `InterfaceVpcEndpointAwsService.SQS`): isolated subnets reach
   * nothing else.
   */
  interfaceEndpoints?: ec2.InterfaceVpcEndpointAwsService[];
  /** Task CPU units (default 1024) and memory in MiB (default: the function's, at least 2048). */
  cpu?: number;
  memoryLimitMiB?: number;
  /** How long before the deadline the handoff starts (default: the middleware's, 10 s). */
  margin?: Duration;
  /**
   * Hand off at most this long after the invocation started (default: only the margin counts).
   * Behind API Gateway, whose integrations time out at 29 s, set it so the 202 arrives in time.
   */
  maxInLambda?: Duration;
  /**
   * Start the runner task this long before the handoff, in standby, so that it resumes the
   * invocation within a second of the handoff (default: off). Pick it from the `timeline` of a
   * cold run's outcome record (handoff to code ready), plus a few seconds; see the middleware's
   * README for the cost.
   */
  prewarm?: Duration;
  /**
   * Continue the invocation's X-Ray trace into the task: adds the X-Ray daemon as a sidecar
   * (`xrayDaemonImage`, default the public daemon image) and lets the task send segments. The
   * runner sends one segment for its leg when the invocation was sampled (default: off).
   */
  tracing?: boolean;
  /** The X-Ray daemon image, with `tracing` (default `public.ecr.aws/xray/aws-xray-daemon:3.x`). */
  xrayDaemonImage?: ecs.ContainerImage;
  /**
   * How the envelope travels: `s3` (default here: always through the encrypted, expiring payload
   * bucket, so the event never appears in DescribeTasks answers or ECS task-state events) or
   * `auto` (in RunTask's container override when it fits).
   */
  envelopeTransport?: EnvelopeTransport;
  /** Retention of the runner's logs (default one month). */
  logRetention?: logs.RetentionDays;
  /**
   * How long envelopes stay in the payload bucket (default 7 days). With a `bucket` of this app,
   * given, it becomes a lifecycle rule of that bucket; with an imported bucket it cannot, and
   * fails the synth (set the rule where the bucket is defined).
   */
  envelopeExpiration?: Duration;
  /** Key prefix of envelopes in the bucket (default `immortal-lambda/envelopes/`); the policy follows it. */
  payloadPrefix?: string;
  /**
   * The safety net (default on), one per cluster, shared by the fallbacks on it: a watchdog on
   * STOPPED runner tasks that relaunches the ones that ended before a result, and, for a function
   * with no on-failure destination, a relaunch function as that destination. `false` leaves this
   * function out of it.
   */
  safetyNet?: boolean;
  /**
   * The launch queue (default on, with the safety net): a handoff whose RunTask meets Fargate's
   * launch rate (about 20 tasks a second per account and Region) or finds no capacity is queued on
   * the safety net's SQS queue and answered at once (`status: 'queued'`); its launcher function
   * starts the task as soon as the rate allows, with the invocation's own client token. Lambda's
   * pollers keep long-polling the queue while it is empty, and SQS bills those polls as requests:
   * `false` leaves the function without it (a burst past the launch rate then retries RunTask until
   * the deadline, and fails loudly where it cannot).
   */
  launchQueue?: boolean;
  /**
   * Hold a handed-off SQS batch in its queue until the runner has finished it (default true); each
   * SQS mapping of the function must report batch item failures. `false`: Lambda deletes it at once.
   */
  holdSqsBatches?: boolean;
  /**
   * Keep each Kinesis or DynamoDB shard in order across a handoff (default false); each stream
   * mapping must report batch item failures, not bisect, and retry without limits.
   */
  ordered?: boolean;
  /** Attempts at one invocation the watchdog makes, the first included (default 3). */
  maxAttempts?: number;
  /**
   * The most memory (MiB) the watchdog may relaunch a task with after it ran out of memory (exit
   * 137, `OutOfMemoryError`): each such relaunch doubles the memory up to this, with the CPU that
   * size needs (default: twice the task's memory). At the task's own memory, running out of memory
   * is the invocation's result instead: never the same death twice.
   */
  maxMemoryLimitMiB?: number;
  /** How long outcome records stay in the payload bucket (default 30 days); with `bucket`, as `envelopeExpiration`. */
  outcomeExpiration?: Duration;
}

/**
 * Attaches the Fargate fallback to a Lambda function: the ECS cluster, the runner's Fargate task
 * definition, its log group, the payload bucket, least-privilege permissions for both sides, and
 * the function's `FARGATE_FALLBACK_*` environment.
 *
 * The task runs with the function's own role, trusted by both Lambda and ECS tasks, so the
 * handler has exactly the same permissions in both places and they cannot drift apart.
 *
 * @example
 * ```ts
 * import { FargateFallback } from '@immortal-lambda/cdk';
 * const reportJob = new NodejsFunction(this, 'Report', { entry: 'src/report.ts', timeout: Duration.minutes(15) });
 * new FargateFallback(this, 'ReportFallback', { function: reportJob, capacity: 'FARGATE_SPOT,FARGATE' });
 * ```
 */
export class FargateFallback extends Construct {
  readonly vpc: ec2.IVpc;
  readonly cluster: ecs.ICluster;
  readonly bucket: s3.IBucket;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly securityGroup: ec2.SecurityGroup;
  readonly logGroup: logs.LogGroup;
  /** The role the task runs with: the function's own. */
  readonly taskRole: iam.Role;
  /** The cluster's safety net (its watchdog and relaunch function), serving this function unless `safetyNet: false`. */
  readonly safetyNet: SafetyNet | undefined;

  /**
   * Composes the parts: the task role, the network, the cluster, the payload bucket, the runner's
   * task definition, the permissions, the function's environment and the safety net. Each part
   * creates its resources in this construct's scope, so that their logical ids stay those the
   * construct has always deployed (a nested construct would rename them, and CloudFormation would
   * replace the bucket and the VPC).
   */
  constructor(scope: Construct, id: string, props: FargateFallbackProps) {
    super(scope, id);
    const fn = props.function;
    const payloadPrefix = props.payloadPrefix ?? ENVELOPE_PREFIX;
    const capacity = props.capacity ?? 'FARGATE';
    this.taskRole = this.#sharedRole(fn);
    const network = new TaskNetwork(this, {
      vpc: props.vpc,
      networking: props.networking ?? 'public',
      subnets: props.subnets,
      // What the function's destinations need too: the runner sends its outcomes there.
      interfaceEndpoints: uniqueEndpoints([...(props.interfaceEndpoints ?? []), ...destinationEndpoints(fn)]),
      tracing: props.tracing,
    });
    refuseUnreachableDaemon(network, props);
    this.vpc = network.vpc;
    this.cluster =
      props.cluster ??
      new ecs.Cluster(this, 'Cluster', {
        vpc: this.vpc,
        enableFargateCapacityProviders: capacity !== 'FARGATE',
      });
    this.bucket = props.bucket ?? payloadBucket(this, { ...props, payloadPrefix });
    if (props.bucket) expireOnGivenBucket(this, props.bucket, { ...props, payloadPrefix });
    const task = new RunnerTask(this, { ...props, taskRole: this.taskRole });
    this.taskDefinition = task.taskDefinition;
    this.logGroup = task.logGroup;
    this.securityGroup = network.securityGroup;
    const permissions = new RunnerPermissions(this, {
      function: fn,
      taskRole: this.taskRole,
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      bucket: this.bucket,
      bucketKey: props.bucket?.encryptionKey,
      payloadPrefix,
      layers: props.layers ?? [],
      tracing: props.tracing ?? false,
    });
    holdSqsBatches(this, {
      function: fn,
      policy: permissions.policy,
      bucket: this.bucket,
      hold: props.holdSqsBatches !== false,
      ordered: props.ordered === true,
    });
    const placement = this.#placementEnvironment(network, capacity, props);
    for (const [name, value] of Object.entries({ ...placement, ...timingEnvironment(props) })) {
      fn.addEnvironment(name, value);
    }
    this.safetyNet =
      props.safetyNet === false
        ? undefined
        : this.#safetyNet(props, permissions, memoryCeiling(task.size, props.maxMemoryLimitMiB));
    // The destinations as deployed: the runner need not ask Lambda for them after every run.
    task.runner.addEnvironment(ENV.destinations, knownDestinations(fn));
    warnWhenMarginCoversTimeout(this, fn, props.margin);
  }

  /**
   * The function's own role, which the task runs with too: Lambda's permissions are the task's,
   * so they cannot drift apart. ECS tasks of this account may assume it.
   */
  #sharedRole(fn: lambda.Function): iam.Role {
    if (!(fn.role instanceof iam.Role)) {
      throw new Error(
        `FargateFallback: the function ${fn.node.path} must have a role created in this app (an iam.Role), so that ECS tasks can be allowed to assume it`,
      );
    }
    const stack = Stack.of(this);
    fn.role.assumeRolePolicy?.addStatements(
      new iam.PolicyStatement({
        actions: ['sts:AssumeRole'],
        principals: [new iam.ServicePrincipal('ecs-tasks.amazonaws.com')],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'ecs', resource: '*' }) },
        },
      }),
    );
    return fn.role;
  }

  /**
   * Where and how runner tasks start (`FARGATE_FALLBACK_*`): what the function and the safety net's
   * functions both need. The family: RunTask starts its latest active revision.
   */
  #placementEnvironment(
    network: TaskNetwork,
    capacity: CapacityOption,
    props: FargateFallbackProps,
  ): Record<string, string> {
    return {
      [ENV.cluster]: this.cluster.clusterName,
      [ENV.taskDefinition]: this.taskDefinition.family,
      [ENV.containerName]: DEFAULT_CONTAINER_NAME,
      [ENV.subnets]: Fn.join(',', network.subnets.subnetIds),
      [ENV.securityGroups]: this.securityGroup.securityGroupId,
      [ENV.assignPublicIp]: String(network.assignPublicIp),
      [ENV.capacity]: capacity,
      [ENV.payloadBucket]: this.bucket.bucketName,
      [ENV.envelopeTransport]: props.envelopeTransport ?? 's3',
      ...(props.payloadPrefix ? { [ENV.payloadPrefix]: props.payloadPrefix } : {}),
    };
  }

  /**
   * The cluster's safety net, shared with the other fallbacks on it, serving this function too:
   * with the function's statements to start, find and stop its runner tasks, and to read and write
   * its envelopes and records (listed by prefix). The limits it relaunches with are the function's
   * settings, read with the rest of its placement.
   */
  #safetyNet(props: FargateFallbackProps, permissions: RunnerPermissions, maxMemoryMiB: number): SafetyNet {
    const fn = props.function;
    fn.addEnvironment(ENV.maxAttempts, String(props.maxAttempts ?? 3));
    fn.addEnvironment(ENV.maxMemoryMiB, String(maxMemoryMiB));
    const bucketKey = props.bucket?.encryptionKey;
    const recordStatements = [
      new iam.PolicyStatement({
        sid: 'ReadAndWriteItsEnvelopesAndOutcomes',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [
          this.bucket.arnForObjects(permissions.envelopes),
          this.bucket.arnForObjects(permissions.outcomes),
        ],
      }),
      new iam.PolicyStatement({
        sid: 'ListItsOutcomes',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [permissions.outcomes] } },
      }),
      ...(bucketKey ? [bucketKeyStatement(bucketKey)] : []),
    ];
    const safetyNet = SafetyNet.forCluster(this, {
      cluster: this.cluster,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    });
    if (props.launchQueue !== false) safetyNet.launchQueueFor(fn);
    safetyNet.serve({
      function: fn,
      scope: this,
      runTaskStatements: permissions.runTaskStatements,
      recordStatements,
      family: this.taskDefinition.family,
      functionPolicy: permissions.policy,
      acknowledge: (construct) => permissions.acknowledgeOn(construct),
    });
    return safetyNet;
  }
}

/**
 * The X-Ray daemon's default image is on ECR Public, which no VPC endpoint reaches: tasks in
 * isolated subnets could not pull it, and the task would never start. Refused at synth.
 */
function refuseUnreachableDaemon(network: TaskNetwork, props: FargateFallbackProps): void {
  if (!props.tracing || props.xrayDaemonImage || !network.isolated) return;
  throw new Error(
    `FargateFallback: tracing in isolated subnets needs the X-Ray daemon image from a registry a VPC endpoint reaches: copy public.ecr.aws/xray/aws-xray-daemon:3.x into a private ECR repository and pass it as xrayDaemonImage (ecs.ContainerImage.fromEcrRepository(repository, '3.x')); ECR Public has no VPC endpoint`,
  );
}

/** When the function hands off (`FARGATE_FALLBACK_*` of the margin, the cap in Lambda, pre-warm), where set. */
function timingEnvironment(props: FargateFallbackProps): Record<string, string> {
  return {
    ...(props.margin ? { [ENV.marginMs]: String(props.margin.toMilliseconds()) } : {}),
    ...(props.maxInLambda ? { [ENV.maxInLambdaMs]: String(props.maxInLambda.toMilliseconds()) } : {}),
    ...(props.prewarm ? { [ENV.prewarmMs]: String(props.prewarm.toMilliseconds()) } : {}),
  };
}
