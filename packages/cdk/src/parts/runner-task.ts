import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { DEFAULT_CONTAINER_NAME, ENV, IMAGE_TASK, runtimeNodeMajor } from '@immortal-lambda/protocol';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { taskSize } from './task-size.js';

/** The public X-Ray daemon image the `tracing` sidecar runs by default. */
const XRAY_DAEMON_IMAGE = 'public.ecr.aws/xray/aws-xray-daemon:3.x';

/** The runner image's default base for an image function: it only brings the runner in. */
const IMAGE_FUNCTION_RUNNER_BASE = 'public.ecr.aws/lambda/nodejs:22';

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

/** What the runner's task definition is made from (the `FargateFallbackProps` of the same names). */
export interface RunnerTaskProps {
  function: lambda.Function;
  taskRole: iam.IRole;
  cpu?: number | undefined;
  memoryLimitMiB?: number | undefined;
  runnerImage?: ecs.ContainerImage | undefined;
  runnerBaseImage?: string | undefined;
  functionImage?: ecs.ContainerImage | undefined;
  imageHandler?: string | undefined;
  tracing?: boolean | undefined;
  xrayDaemonImage?: ecs.ContainerImage | undefined;
  logRetention?: logs.RetentionDays | undefined;
}

/**
 * The runner's Fargate task definition and its log group, for the function's architecture and
 * with the function's role. A zip function's task runs the runner image; a container image
 * function's task runs the function's own image, with the runner brought in beside it by an
 * install container and run by the image's own node (the image is not rebuilt). With `tracing`,
 * the X-Ray daemon runs beside it. Created in the scope it is given (the `FargateFallback`), as
 * `RunnerTask` and `RunnerLogs`.
 *
 * @example
 * ```ts
 * const task = new RunnerTask(this, { function: reportJob, taskRole: reportJob.role as iam.Role });
 * task.taskDefinition.family;
 * ```
 */
export class RunnerTask {
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly logGroup: logs.LogGroup;
  /** The task's size: CPU units and memory (MiB), a pair Fargate runs. */
  readonly size: { cpu: number; memoryLimitMiB: number };
  /** The container that runs the runner (and, for an image function, the function's image). */
  readonly runner: ecs.ContainerDefinition;

  constructor(scope: Construct, props: RunnerTaskProps) {
    const fn = props.function;
    const arm = fn.architecture.name === 'arm64';
    this.logGroup = new logs.LogGroup(scope, 'RunnerLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.size = taskSize({
      functionMemoryMiB: functionMemory(fn),
      cpu: props.cpu,
      memoryLimitMiB: props.memoryLimitMiB,
    });
    this.taskDefinition = new ecs.FargateTaskDefinition(scope, 'RunnerTask', {
      ...this.size,
      // The function's architecture: its code (native modules included) was built for it. Fargate
      // Spot runs X86_64 and, on platform version 1.4.0 (the latest), ARM64 Linux tasks.
      runtimePlatform: {
        cpuArchitecture: arm ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      taskRole: props.taskRole,
    });
    const image = isImageFunction(fn);
    const runnerImage = props.runnerImage ?? defaultRunnerImage(fn, arm, props.runnerBaseImage, image);
    if (!image && props.functionImage) {
      throw new Error(
        `FargateFallback: functionImage is for container image functions, and ${fn.node.path} is a zip function: its runner fetches the code; leave functionImage out`,
      );
    }
    this.runner = image
      ? this.#imageFunctionContainers(runnerImage, props.functionImage ?? functionImageAsset(fn))
      : this.#runnerContainer(runnerImage);
    if (image) this.runner.addEnvironment(ENV.imageHandler, imageHandler(fn, props.imageHandler));
    if (props.tracing) this.#tracingSidecar(props.xrayDaemonImage);
  }

  #logging(streamPrefix: string): ecs.LogDriver {
    return ecs.LogDrivers.awsLogs({ streamPrefix, logGroup: this.logGroup });
  }

  #runnerContainer(image: ecs.ContainerImage, entryPoint?: readonly string[]): ecs.ContainerDefinition {
    return this.taskDefinition.addContainer(DEFAULT_CONTAINER_NAME, {
      containerName: DEFAULT_CONTAINER_NAME,
      image,
      ...(entryPoint ? { entryPoint: [...entryPoint] } : {}),
      logging: this.#logging(DEFAULT_CONTAINER_NAME),
      stopTimeout: Duration.seconds(120),
      environment: { [ENV.stopGraceMs]: '110000' },
    });
  }

  /**
   * An image function's task: the volume its containers share; the install container that copies
   * the runner from the runner image into it (as root, the volume's owner) and exits; and the
   * function's own image as the runner container, which starts once the runner is in place and
   * reads it only.
   */
  #imageFunctionContainers(runnerImage: ecs.ContainerImage, functionImage: ecs.ContainerImage) {
    this.taskDefinition.addVolume({ name: IMAGE_TASK.volume });
    const install = this.taskDefinition.addContainer(IMAGE_TASK.installContainer, {
      containerName: IMAGE_TASK.installContainer,
      image: runnerImage,
      essential: false,
      user: IMAGE_TASK.installUser,
      entryPoint: [...IMAGE_TASK.installEntryPoint],
      command: [...IMAGE_TASK.installCommand],
      logging: this.#logging(IMAGE_TASK.installContainer),
    });
    install.addMountPoints({
      sourceVolume: IMAGE_TASK.volume,
      containerPath: IMAGE_TASK.mount,
      readOnly: false,
    });
    const runner = this.#runnerContainer(functionImage, IMAGE_TASK.entryPoint);
    runner.addMountPoints({
      sourceVolume: IMAGE_TASK.volume,
      containerPath: IMAGE_TASK.mount,
      readOnly: true,
    });
    runner.addContainerDependencies({
      container: install,
      condition: ecs.ContainerDependencyCondition.SUCCESS,
    });
    return runner;
  }

  /** The X-Ray daemon beside the runner: the runner's leg joins the invocation's trace. */
  #tracingSidecar(image: ecs.ContainerImage | undefined): void {
    this.taskDefinition.addContainer('xray-daemon', {
      containerName: 'xray-daemon',
      image: image ?? ecs.ContainerImage.fromRegistry(XRAY_DAEMON_IMAGE),
      essential: false,
      cpu: 32,
      memoryReservationMiB: 64,
      portMappings: [{ containerPort: 2000, protocol: ecs.Protocol.UDP }],
      logging: this.#logging('xray-daemon'),
    });
    this.runner.addEnvironment('AWS_XRAY_DAEMON_ADDRESS', '127.0.0.1:2000');
  }
}

/**
 * The runner image built from `@immortal-lambda/runner`'s Dockerfile as an asset, for the task's
 * architecture whatever machine runs the synth, on Lambda's Node.js base image of the function's
 * runtime (`lambda/nodejs:22` for an image function, whose handler runs on its own image's node).
 */
function defaultRunnerImage(
  fn: lambda.Function,
  arm: boolean,
  baseImage: string | undefined,
  imageFunction: boolean,
): ecs.ContainerImage {
  return ecs.ContainerImage.fromAsset(runnerImageDirectory(), {
    file: 'Dockerfile',
    exclude: ['node_modules', 'src', 'tests', 'bench', 'container', '*.map', '*.tgz'],
    platform: arm ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
    buildArgs: {
      BASE_IMAGE: baseImage ?? (imageFunction ? IMAGE_FUNCTION_RUNNER_BASE : lambdaBaseImage(fn)),
    },
  });
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

/**
 * An image function's handler: the `imageHandler` prop, else the command the function overrides
 * its image's CMD with. GetFunction returns no handler for an image function, and its image's CMD
 * only when the function overrides it, so without either the runner could not know what to call.
 */
function imageHandler(fn: lambda.Function, given: string | undefined): string {
  const cfn = fn.node.defaultChild as lambda.CfnFunction;
  const config = Stack.of(fn).resolve(cfn.imageConfig) as { command?: unknown[] } | undefined;
  const command = config?.command?.[0];
  const handler = given ?? (typeof command === 'string' ? command : undefined);
  if (handler) return handler;
  throw new Error(
    `FargateFallback: ${fn.node.path} is a container image function whose handler is in its image's CMD, which Lambda does not return to the runner: pass imageHandler with that CMD (for example 'index.handler'), or set cmd in DockerImageCode.fromImageAsset(folder, { cmd: ['index.handler'] })`,
  );
}

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

/** The function's memory in MiB (Lambda's default 128 when not set). */
function functionMemory(fn: lambda.Function): number {
  return (fn.node.defaultChild as { memorySize?: number } | undefined)?.memorySize ?? 128;
}
