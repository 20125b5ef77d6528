import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import {
  type CapacityOption,
  DEFAULT_CONTAINER_NAME,
  DEFAULT_OUTCOME_PREFIX,
  DEFAULT_PAYLOAD_PREFIX,
  ENV,
  type EnvelopeTransport,
  IMAGE_TASK,
  runtimeNodeMajor,
} from '@immortal-lambda/protocol';
import { ArnFormat, Duration, Fn, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { SafetyNet } from './safety-net.js';

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
 * How the runner task reaches the Lambda API, S3, ECR and CloudWatch Logs.
 *
 * @example
 * ```ts
 * new FargateFallback(this, 'Fallback', { function: fn, networking: 'private' });
 * ```
 *
 * - `public` (default): public subnets, a public IP per task, no NAT gateway: nothing to pay at
 *   rest; tasks have no inbound rules.
 * - `private`: isolated subnets with VPC endpoints (ECR API and Docker, CloudWatch Logs, Lambda as
 *   interface endpoints, S3 as a gateway endpoint): no internet path, but interface endpoints
 *   are billed per hour and per AZ.
 */
export type FallbackNetworking = 'public' | 'private';

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
  /** How long envelopes stay in the payload bucket (default 7 days). */
  envelopeExpiration?: Duration;
  /** Key prefix of envelopes in the bucket (default `immortal-lambda/envelopes/`); the policy follows it. */
  payloadPrefix?: string;
  /**
   * The safety net (default on): a watchdog on STOPPED runner tasks that relaunches the ones that
   * ended before a result, and, when the function has no on-failure destination, a relaunch
   * function as that destination. `false` deploys neither.
   */
  safetyNet?: boolean;
  /** Attempts at one invocation the watchdog makes, the first included (default 3). */
  maxAttempts?: number;
  /** How long outcome records stay in the payload bucket (default 30 days). */
  outcomeExpiration?: Duration;
}

/** The public X-Ray daemon image the `tracing` sidecar runs by default. */
const XRAY_DAEMON_IMAGE = 'public.ecr.aws/xray/aws-xray-daemon:3.x';

/**
 * The folder of the installed runner package: its Dockerfile and build are the image's context.
 *
 * @example
 * ```ts
 * import { runnerImageDirectory } from '@immortal-lambda/cdk';
 * const image = ecs.ContainerImage.fromAsset(runnerImageDirectory(), { exclude: ['node_modules'] });
 * ```
 */
export function runnerImageDirectory(): string {
  return dirname(createRequire(import.meta.url).resolve('@immortal-lambda/runner/package.json'));
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
  /** The watchdog and the relaunch function, unless `safetyNet: false`. */
  readonly safetyNet: SafetyNet | undefined;

  constructor(scope: Construct, id: string, props: FargateFallbackProps) {
    super(scope, id);
    const fn = props.function;
    const arm = fn.architecture.name === 'arm64';
    const payloadPrefix = props.payloadPrefix ?? ENVELOPE_PREFIX;
    const stack = Stack.of(this);
    const networking = props.networking ?? 'public';
    const capacity = props.capacity ?? 'FARGATE';

    if (!(fn.role instanceof iam.Role)) {
      throw new Error(
        `FargateFallback: the function ${fn.node.path} must have a role created in this app (an iam.Role), so that ECS tasks can be allowed to assume it`,
      );
    }
    this.taskRole = fn.role;
    // The same role in both places: Lambda's permissions are the task's.
    this.taskRole.assumeRolePolicy?.addStatements(
      new iam.PolicyStatement({
        actions: ['sts:AssumeRole'],
        principals: [new iam.ServicePrincipal('ecs-tasks.amazonaws.com')],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'ecs', resource: '*' }) },
        },
      }),
    );

    this.vpc = props.vpc ?? this.#createVpc(networking, props.interfaceEndpoints ?? []);
    this.cluster =
      props.cluster ??
      new ecs.Cluster(this, 'Cluster', {
        vpc: this.vpc,
        enableFargateCapacityProviders: capacity !== 'FARGATE',
      });
    this.bucket =
      props.bucket ??
      new s3.Bucket(this, 'Payloads', {
        encryption: s3.BucketEncryption.S3_MANAGED,
        enforceSSL: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycleRules: [
          { prefix: payloadPrefix, expiration: props.envelopeExpiration ?? Duration.days(7) },
          { prefix: OUTCOME_PREFIX, expiration: props.outcomeExpiration ?? Duration.days(30) },
          { abortIncompleteMultipartUploadAfter: Duration.days(1) },
        ],
        removalPolicy: RemovalPolicy.DESTROY,
        autoDeleteObjects: true,
      });

    this.logGroup = new logs.LogGroup(this, 'RunnerLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'RunnerTask', {
      cpu: props.cpu ?? 1024,
      memoryLimitMiB: props.memoryLimitMiB ?? Math.max(2048, nextFargateMemory(fn)),
      // The function's architecture: its code (native modules included) was built for it. Fargate
      // Spot runs X86_64 and, on platform version 1.4.0 (the latest), ARM64 Linux tasks.
      runtimePlatform: {
        cpuArchitecture: arm ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      taskRole: this.taskRole,
    });
    const logging = (streamPrefix: string) =>
      ecs.LogDrivers.awsLogs({ streamPrefix, logGroup: this.logGroup });
    const image = isImageFunction(fn);
    const runnerImage =
      props.runnerImage ??
      ecs.ContainerImage.fromAsset(runnerImageDirectory(), {
        file: 'Dockerfile',
        exclude: ['node_modules', 'src', 'tests', 'bench', 'container', '*.map', '*.tgz'],
        // Built for the task's architecture whatever machine runs the synth.
        platform: arm ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
        buildArgs: {
          BASE_IMAGE: props.runnerBaseImage ?? (image ? IMAGE_FUNCTION_RUNNER_BASE : lambdaBaseImage(fn)),
        },
      });
    if (!image && props.functionImage) {
      throw new Error(
        `FargateFallback: functionImage is for container image functions, and ${fn.node.path} is a zip function: its runner fetches the code; leave functionImage out`,
      );
    }
    // A zip function's task runs the runner image; an image function's runs its own image, with
    // the runner brought in beside it and run by the image's own node (the image is not rebuilt).
    const install = image
      ? this.#runnerInstall(runnerImage, logging(IMAGE_TASK.installContainer))
      : undefined;
    const runner = this.taskDefinition.addContainer(DEFAULT_CONTAINER_NAME, {
      containerName: DEFAULT_CONTAINER_NAME,
      image: image ? (props.functionImage ?? functionImageAsset(fn)) : runnerImage,
      ...(image ? { entryPoint: [...IMAGE_TASK.entryPoint] } : {}),
      logging: logging(DEFAULT_CONTAINER_NAME),
      stopTimeout: Duration.seconds(120),
      environment: { [ENV.stopGraceMs]: '110000' },
    });
    if (install) {
      // The function's container starts once the runner is in place, and reads it only.
      runner.addMountPoints({
        sourceVolume: IMAGE_TASK.volume,
        containerPath: IMAGE_TASK.mount,
        readOnly: true,
      });
      runner.addContainerDependencies({
        container: install,
        condition: ecs.ContainerDependencyCondition.SUCCESS,
      });
    }

    if (props.tracing) {
      // The X-Ray daemon beside the runner: the runner's leg joins the invocation's trace.
      this.taskDefinition.addContainer('xray-daemon', {
        containerName: 'xray-daemon',
        image: props.xrayDaemonImage ?? ecs.ContainerImage.fromRegistry(XRAY_DAEMON_IMAGE),
        essential: false,
        cpu: 32,
        memoryReservationMiB: 64,
        portMappings: [{ containerPort: 2000, protocol: ecs.Protocol.UDP }],
        logging: logging('xray-daemon'),
      });
      runner.addEnvironment('AWS_XRAY_DAEMON_ADDRESS', '127.0.0.1:2000');
    }

    this.securityGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: this.vpc,
      description: 'immortal-lambda runner tasks: no inbound, outbound to AWS APIs',
      allowAllOutbound: true,
    });

    const subnetType =
      props.subnets?.subnetType ??
      (networking === 'public' ? ec2.SubnetType.PUBLIC : ec2.SubnetType.PRIVATE_ISOLATED);
    const subnets = this.vpc.selectSubnets(props.subnets ?? { subnetType });
    // A public IP exactly when the selected subnets are public (a given VPC's included): tasks in
    // public subnets reach AWS only through it, tasks in private ones cannot have one.
    const assignPublicIp = subnets.hasPublic;
    const executionRole = this.taskDefinition.obtainExecutionRole();
    const taskArns = stack.formatArn({
      service: 'ecs',
      resource: 'task',
      resourceName: `${this.cluster.clusterName}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const onCluster = { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } };

    // A policy of its own rather than the role's default one: its statements name the function,
    // and the function itself waits for the default policy, which would make a cycle.
    const policy = new iam.Policy(this, 'Permissions', { roles: [this.taskRole] });
    // The function: start its task definition on its cluster, tag and stop those tasks only.
    // Every revision of the family: a deployment that registers a new revision must not deny
    // the one that invocations already running were configured with.
    const revisions = stack.formatArn({
      service: 'ecs',
      resource: 'task-definition',
      resourceName: `${this.taskDefinition.family}:*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const runTaskStatements = [
      new iam.PolicyStatement({
        sid: 'RunTheRunnerTask',
        actions: ['ecs:RunTask'],
        resources: [revisions],
        conditions: onCluster,
      }),
      new iam.PolicyStatement({
        sid: 'TagRunnerTasksAtLaunch',
        actions: ['ecs:TagResource'],
        resources: [taskArns],
        conditions: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
      }),
      new iam.PolicyStatement({
        sid: 'StopOrDescribeRunnerTasks',
        actions: ['ecs:StopTask', 'ecs:DescribeTasks'],
        resources: [taskArns],
        conditions: onCluster,
      }),
      // ListTasks without a container instance is authorised on "*"; the condition keeps it to
      // this cluster. A retried invocation finds the task an earlier attempt started with it.
      new iam.PolicyStatement({
        sid: 'FindRunnerTasks',
        actions: ['ecs:ListTasks'],
        resources: ['*'],
        conditions: onCluster,
      }),
      new iam.PolicyStatement({
        sid: 'PassTheTaskRoles',
        actions: ['iam:PassRole'],
        resources: [this.taskRole.roleArn, executionRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    ];
    policy.addStatements(...runTaskStatements);
    const envelopes = `${payloadPrefix}${fn.functionName}/*`;
    const outcomes = `${OUTCOME_PREFIX}${fn.functionName}/*`;
    policy.addStatements(
      new iam.PolicyStatement({
        sid: 'WriteItsEnvelopes',
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(envelopes)],
      }),
    );
    // The wrapper records the handoff, the runner each attempt, under the function's own prefix;
    // the runner sends the final outcome to the function's async destinations.
    policy.addStatements(
      new iam.PolicyStatement({
        sid: 'RecordItsOutcomes',
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(outcomes)],
      }),
      new iam.PolicyStatement({
        sid: 'FindItsDestinations',
        actions: ['lambda:GetFunctionEventInvokeConfig'],
        resources: [fn.functionArn, `${fn.functionArn}:*`],
      }),
    );

    // The task (same role): fetch this function's code and layers, read its envelopes.
    policy.addStatements(
      new iam.PolicyStatement({
        sid: 'FetchItsOwnCode',
        actions: ['lambda:GetFunction'],
        resources: [fn.functionArn, `${fn.functionArn}:*`],
      }),
    );
    // The function's layers as they are now, and any given; one added later fails the synth.
    const cfnFunction = fn.node.defaultChild as lambda.CfnFunction;
    const functionLayers = () => (stack.resolve(cfnFunction.layers) as unknown[] | undefined) ?? [];
    const layers = new Map<string, string>();
    for (const arn of [...(props.layers ?? []).map((layer) => layer.layerVersionArn), ...functionLayers()])
      layers.set(JSON.stringify(stack.resolve(arn)), Token.asString(arn));
    if (layers.size > 0) {
      policy.addStatements(
        new iam.PolicyStatement({
          sid: 'FetchItsLayers',
          actions: ['lambda:GetLayerVersion'],
          resources: [...layers.values()],
        }),
      );
    }
    this.node.addValidation({
      validate: () => {
        const missing = functionLayers().filter((arn) => !layers.has(JSON.stringify(arn)));
        return missing.length === 0
          ? []
          : [
              `${fn.node.path} has ${missing.length} layer(s) added after its FargateFallback (${missing
                .map((arn) => JSON.stringify(arn))
                .join(
                  ', ',
                )}): the runner task could not fetch them. Add the layers before creating the FargateFallback, or pass them as its \`layers\` prop.`,
            ];
      },
    });
    // A customer managed key on the function's environment: GetFunction returns the variables
    // only to a caller that may decrypt them.
    const environmentKey = stack.resolve(cfnFunction.kmsKeyArn) as unknown;
    if (environmentKey !== undefined) {
      policy.addStatements(
        new iam.PolicyStatement({
          sid: 'DecryptItsEnvironment',
          actions: ['kms:Decrypt'],
          resources: [Token.asString(environmentKey)],
        }),
      );
    }
    // A given bucket encrypted with a customer managed key: writing and reading envelopes use it.
    const bucketKey = props.bucket?.encryptionKey;
    if (bucketKey) {
      policy.addStatements(
        new iam.PolicyStatement({
          sid: 'UseThePayloadBucketKey',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [bucketKey.keyArn],
        }),
      );
    }
    policy.addStatements(
      new iam.PolicyStatement({
        sid: 'ReadItsEnvelopes',
        actions: ['s3:GetObject'],
        resources: [this.bucket.arnForObjects(envelopes)],
      }),
      // The runner reads the journal a relaunch resumes from, and a pre-warmed task the envelope
      // or cancel marker at its resume location, beside the outcome records.
      new iam.PolicyStatement({
        sid: 'ReadItsJournalAndResumeLocation',
        actions: ['s3:GetObject'],
        resources: [
          this.bucket.arnForObjects(`${OUTCOME_PREFIX}${fn.functionName}/*/journal.json`),
          this.bucket.arnForObjects(`${OUTCOME_PREFIX}${fn.functionName}/*/resume.json`),
        ],
      }),
    );

    // The wildcards above cannot be narrower; say why, for policy checks such as cdk-nag. The
    // safety net's functions share some of them, with the same reasons.
    const wildcards: [string, string][] = [];
    const wildcard = (resource: string, reason: string) => {
      wildcards.push([resource, reason]);
      Validations.of(policy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${renderForFindings(stack, resource)}]`,
        reason,
      });
    };
    Validations.of(executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken, which pulling the runner image needs, has no resource to name.',
    });
    wildcard(
      revisions,
      'RunTask starts the latest revision of the runner family; earlier revisions stay allowed for invocations configured before a deployment.',
    );
    wildcard(
      taskArns,
      'Task ids are only known once RunTask returns; the statement is limited to tasks of this cluster.',
    );
    if (props.tracing) {
      policy.addStatements(
        new iam.PolicyStatement({
          sid: 'SendTraceSegments',
          actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
          resources: ['*'],
        }),
      );
    }
    wildcard(
      '*',
      `ecs:ListTasks without a container instance is authorised on "*" only; the ecs:cluster condition limits it to this cluster.${
        props.tracing ? ' X-Ray segments and telemetry have no resource to name.' : ''
      }`,
    );
    wildcard(
      this.bucket.arnForObjects(envelopes),
      "Envelopes are named by request id under this function's own prefix.",
    );
    wildcard(
      `${fn.functionArn}:*`,
      'The runner fetches the exact version that handed off; versions are published after deployment.',
    );
    wildcard(
      this.bucket.arnForObjects(outcomes),
      "Outcome records are named by request id under this function's own prefix.",
    );
    for (const entry of ['journal', 'resume']) {
      wildcard(
        this.bucket.arnForObjects(`${OUTCOME_PREFIX}${fn.functionName}/*/${entry}.json`),
        `The ${entry} object of each invocation sits in the folder named by its request id, under this function's own prefix.`,
      );
    }

    fn.addEnvironment(ENV.cluster, this.cluster.clusterName);
    // The family: RunTask starts its latest active revision.
    fn.addEnvironment(ENV.taskDefinition, this.taskDefinition.family);
    fn.addEnvironment(ENV.containerName, DEFAULT_CONTAINER_NAME);
    fn.addEnvironment(ENV.subnets, Fn.join(',', subnets.subnetIds));
    fn.addEnvironment(ENV.securityGroups, this.securityGroup.securityGroupId);
    fn.addEnvironment(ENV.assignPublicIp, String(assignPublicIp));
    fn.addEnvironment(ENV.capacity, capacity);
    fn.addEnvironment(ENV.payloadBucket, this.bucket.bucketName);
    if (props.margin) fn.addEnvironment(ENV.marginMs, String(props.margin.toMilliseconds()));
    if (props.maxInLambda) fn.addEnvironment(ENV.maxInLambdaMs, String(props.maxInLambda.toMilliseconds()));
    if (props.prewarm) fn.addEnvironment(ENV.prewarmMs, String(props.prewarm.toMilliseconds()));
    fn.addEnvironment(ENV.envelopeTransport, props.envelopeTransport ?? 's3');
    if (props.payloadPrefix) fn.addEnvironment(ENV.payloadPrefix, props.payloadPrefix);

    if (props.safetyNet === false) {
      this.safetyNet = undefined;
      return;
    }
    const recordStatements = [
      new iam.PolicyStatement({
        sid: 'ReadAndWriteItsEnvelopesAndOutcomes',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [this.bucket.arnForObjects(envelopes), this.bucket.arnForObjects(outcomes)],
      }),
      new iam.PolicyStatement({
        sid: 'ListItsOutcomes',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [outcomes] } },
      }),
      ...(bucketKey
        ? [
            new iam.PolicyStatement({
              sid: 'UseThePayloadBucketKey',
              actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
              resources: [bucketKey.keyArn],
            }),
          ]
        : []),
    ];
    this.safetyNet = new SafetyNet(this, 'SafetyNet', {
      function: fn,
      environment: {
        [ENV.cluster]: this.cluster.clusterName,
        [ENV.taskDefinition]: this.taskDefinition.family,
        [ENV.containerName]: DEFAULT_CONTAINER_NAME,
        [ENV.subnets]: Fn.join(',', subnets.subnetIds),
        [ENV.securityGroups]: this.securityGroup.securityGroupId,
        [ENV.assignPublicIp]: String(assignPublicIp),
        [ENV.capacity]: capacity,
        [ENV.payloadBucket]: this.bucket.bucketName,
        [ENV.envelopeTransport]: props.envelopeTransport ?? 's3',
        ...(props.payloadPrefix ? { [ENV.payloadPrefix]: props.payloadPrefix } : {}),
      },
      runTaskStatements,
      recordStatements,
      maxAttempts: props.maxAttempts ?? 3,
      clusterArn: this.cluster.clusterArn,
      family: this.taskDefinition.family,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      functionPolicy: policy,
    });
    for (const created of [this.safetyNet.watchdog, this.safetyNet.relaunch]) {
      if (!created) continue;
      for (const [resource, reason] of wildcards) {
        Validations.of(created).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${renderForFindings(stack, resource)}]`,
          reason,
        });
      }
    }
  }

  /**
   * An image function's task: the volume its containers share, and the install container that
   * copies the runner from the runner image into it (as root, the volume's owner) and exits.
   */
  #runnerInstall(runnerImage: ecs.ContainerImage, logging: ecs.LogDriver): ecs.ContainerDefinition {
    this.taskDefinition.addVolume({ name: IMAGE_TASK.volume });
    const install = this.taskDefinition.addContainer(IMAGE_TASK.installContainer, {
      containerName: IMAGE_TASK.installContainer,
      image: runnerImage,
      essential: false,
      user: IMAGE_TASK.installUser,
      entryPoint: [...IMAGE_TASK.installEntryPoint],
      command: [...IMAGE_TASK.installCommand],
      logging,
    });
    install.addMountPoints({
      sourceVolume: IMAGE_TASK.volume,
      containerPath: IMAGE_TASK.mount,
      readOnly: false,
    });
    return install;
  }

  #createVpc(networking: FallbackNetworking, extra: readonly ec2.InterfaceVpcEndpointAwsService[]): ec2.Vpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [
        networking === 'public'
          ? { name: 'tasks', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }
          : { name: 'tasks', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(
            new logs.LogGroup(this, 'FlowLogs', {
              retention: logs.RetentionDays.ONE_MONTH,
              removalPolicy: RemovalPolicy.DESTROY,
            }),
          ),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });
    if (networking === 'private') {
      vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
      const endpoints: [string, ec2.InterfaceVpcEndpointAwsService][] = [
        ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
        ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
        ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
        ['Lambda', ec2.InterfaceVpcEndpointAwsService.LAMBDA],
        ...extra.map((service): [string, ec2.InterfaceVpcEndpointAwsService] => [
          `Extra${service.shortName.replace(/[^A-Za-z0-9]/g, '')}`,
          service,
        ]),
      ];
      for (const [name, service] of endpoints) {
        vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true });
      }
    }
    return vpc;
  }
}

/**
 * A value as policy-check findings name it: references as `<LogicalId>` or `<LogicalId.Attr>`,
 * pseudo parameters as `<AWS::Partition>`, joined parts concatenated.
 */
function renderForFindings(stack: Stack, value: string): string {
  const render = (part: unknown): string => {
    if (typeof part === 'string') return part;
    const node = part as { Ref?: string; 'Fn::GetAtt'?: [string, string]; 'Fn::Join'?: [string, unknown[]] };
    if (node.Ref) return `<${node.Ref}>`;
    if (node['Fn::GetAtt']) return `<${node['Fn::GetAtt'].join('.')}>`;
    if (node['Fn::Join']) return node['Fn::Join'][1].map(render).join(node['Fn::Join'][0]);
    return JSON.stringify(part);
  };
  return render(stack.resolve(value));
}

/**
 * Lambda's public Node.js base image for the function's runtime (`nodejs24.x` →
 * `public.ecr.aws/lambda/nodejs:24`), so the runner runs the handler on the Node it was
 * deployed for, with the runtime's bundled AWS SDK under /var/runtime.
 */
function lambdaBaseImage(fn: lambda.Function): string {
  const major = runtimeNodeMajor(fn.runtime.name);
  if (major === undefined) {
    throw new Error(
      `${fn.node.path} runs on ${fn.runtime.name}; the runner runs Node.js handlers only (nodejs20.x, nodejs22.x, nodejs24.x). Pass runnerBaseImage for another Node base.`,
    );
  }
  return `public.ecr.aws/lambda/nodejs:${major}`;
}

/** The runner image's default base for an image function: it only brings the runner in. */
const IMAGE_FUNCTION_RUNNER_BASE = 'public.ecr.aws/lambda/nodejs:22';

/** Is the function deployed as a container image (`PackageType: Image`)? */
function isImageFunction(fn: lambda.Function): boolean {
  return (fn.node.defaultChild as lambda.CfnFunction | undefined)?.packageType === 'Image';
}

/**
 * The image asset an image function was built from (`DockerImageCode.fromImageAsset`): the very
 * image Lambda runs, so the task runs the same code. Pull permissions follow from the asset.
 */
function functionImageAsset(fn: lambda.Function): ecs.ContainerImage {
  const asset = fn.node
    .findAll()
    .find((child): child is DockerImageAsset => child instanceof DockerImageAsset);
  if (!asset) {
    throw new Error(
      `FargateFallback: ${fn.node.path} is a container image function whose image is not an asset of this app, so its task cannot name it: pass functionImage (for example ecs.ContainerImage.fromEcrRepository(repository, tagOrDigest)) with the image the function runs`,
    );
  }
  return ecs.ContainerImage.fromDockerImageAsset(asset);
}

/** The most memory Fargate gives a 1 vCPU task, in MiB. */
const MAX_MEMORY_FOR_ONE_VCPU_MIB = 8 * 1024;

/** The function's memory, as a valid Fargate memory size for 1 vCPU (2–8 GiB). */
function nextFargateMemory(fn: lambda.Function): number {
  const memory = (fn.node.defaultChild as { memorySize?: number } | undefined)?.memorySize ?? 1024;
  return Math.min(MAX_MEMORY_FOR_ONE_VCPU_MIB, Math.ceil(memory / 1024) * 1024);
}
