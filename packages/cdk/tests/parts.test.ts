import { App, type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SnsDestination, SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { FargateFallback } from '../src/index.js';
import { TaskNetwork } from '../src/parts/network.js';
import { payloadBucket } from '../src/parts/payload-bucket.js';
import { RunnerTask } from '../src/parts/runner-task.js';
import { taskSize } from '../src/parts/task-size.js';

/** A construct's CloudFormation resource; a missing construct fails the test here. */
const childOf = (construct: IConstruct | undefined) => {
  if (!construct) throw new Error('the construct is missing');
  return construct.node.defaultChild;
};

function stackWithFunction(props: Partial<lambda.FunctionProps> = {}) {
  const stack = new Stack(new App(), 'Parts', { env: { account: '123456789012', region: 'eu-west-1' } });
  const fn = new lambda.Function(stack, 'Report', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => 1;'),
    timeout: Duration.minutes(15),
    ...props,
  });
  return { stack, fn };
}

describe('the parts of a FargateFallback, each on its own', () => {
  it('a private task network has isolated subnets, the endpoints they need and no public IP', () => {
    // Prepare
    const { stack } = stackWithFunction();

    // Act
    const network = new TaskNetwork(stack, { networking: 'private', interfaceEndpoints: [] });

    // Assess
    expect(network.assignPublicIp).toBe(false);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 5);
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: 'immortal-lambda runner tasks: no inbound, outbound to AWS APIs',
    });
  });

  it('a public task network gives its tasks a public IP and creates no endpoint', () => {
    // Prepare
    const { stack } = stackWithFunction();

    // Act
    const network = new TaskNetwork(stack, { networking: 'public', interfaceEndpoints: [] });

    // Assess
    expect(network.assignPublicIp).toBe(true);
    Template.fromStack(stack).resourceCountIs('AWS::EC2::VPCEndpoint', 0);
  });

  it('the runner task follows the function architecture and memory, with the X-Ray daemon when traced', () => {
    // Prepare
    const { stack, fn } = stackWithFunction({ architecture: lambda.Architecture.ARM_64, memorySize: 5000 });

    // Act
    new RunnerTask(stack, {
      function: fn,
      taskRole: fn.role as iam.Role,
      runnerImage: ecs.ContainerImage.fromRegistry('runner:1'),
      tracing: true,
    });

    // Assess
    Template.fromStack(stack).hasResourceProperties('AWS::ECS::TaskDefinition', {
      Memory: '5120',
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
      ContainerDefinitions: [
        Match.objectLike({
          Name: 'runner',
          Environment: Match.arrayWith([{ Name: 'AWS_XRAY_DAEMON_ADDRESS', Value: '127.0.0.1:2000' }]),
        }),
        Match.objectLike({ Name: 'xray-daemon', Essential: false }),
      ],
    });
  });

  it('the runner task refuses functionImage for a zip function', () => {
    // Prepare
    const { stack, fn } = stackWithFunction();

    // Act
    const create = () =>
      new RunnerTask(stack, {
        function: fn,
        taskRole: fn.role as iam.Role,
        runnerImage: ecs.ContainerImage.fromRegistry('runner:1'),
        functionImage: ecs.ContainerImage.fromRegistry('fn:1'),
      });

    // Assess
    expect(create).toThrow(/functionImage is for container image functions/);
  });

  it('the payload bucket expires envelopes and records under their prefixes', () => {
    // Prepare
    const { stack } = stackWithFunction();

    // Act
    payloadBucket(stack, { payloadPrefix: 'env/', envelopeExpiration: Duration.days(2) });

    // Assess
    Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'env/', ExpirationInDays: 2 }),
          Match.objectLike({ Prefix: 'immortal-lambda/outcomes/', ExpirationInDays: 30 }),
        ]),
      },
    });
  });
});

describe('the runner task size', () => {
  it.each([
    [
      'the function memory rounded up for 1 vCPU',
      { functionMemoryMiB: 3008 },
      { cpu: 1024, memoryLimitMiB: 3072 },
    ],
    ['at least 2 GiB for 1 vCPU', { functionMemoryMiB: 128 }, { cpu: 1024, memoryLimitMiB: 2048 }],
    ['at most 8 GiB for 1 vCPU', { functionMemoryMiB: 10_240 }, { cpu: 1024, memoryLimitMiB: 8192 }],
    [
      'the smallest that 4 vCPU take',
      { functionMemoryMiB: 3008, cpu: 4096 },
      { cpu: 4096, memoryLimitMiB: 8192 },
    ],
    [
      '8 vCPU in 4 GiB steps',
      { functionMemoryMiB: 17_000, cpu: 8192 },
      { cpu: 8192, memoryLimitMiB: 20_480 },
    ],
    ['0.25 vCPU skips 1.5 GiB', { functionMemoryMiB: 1_200, cpu: 256 }, { cpu: 256, memoryLimitMiB: 2048 }],
    [
      'a valid given pair',
      { functionMemoryMiB: 128, cpu: 2048, memoryLimitMiB: 16_384 },
      { cpu: 2048, memoryLimitMiB: 16_384 },
    ],
  ])('is %s', (_name, input, expected) => {
    // Act
    const size = taskSize(input);

    // Assess
    expect(size).toEqual(expected);
  });

  it.each([
    [
      'a memory the CPU does not take',
      { cpu: 1024, memoryLimitMiB: 16_384 },
      /1024 CPU units with 16384 MiB: cpu 1024 takes 2048 to 8192 MiB in steps of 1024, and 16384 MiB goes with cpu 2048 or 4096 or 8192/,
    ],
    [
      'a memory off the steps',
      { cpu: 2048, memoryLimitMiB: 5000 },
      /cpu 2048 takes 4096 to 16384 MiB in steps of 1024\. Valid pairs: cpu 256: 512, 1024 or 2048 MiB;/,
    ],
    [
      'a CPU value Fargate has not',
      { cpu: 3000 },
      /cpu 3000 is not a Fargate task size; use one of 256, 512, 1024, 2048, 4096, 8192, 16384/,
    ],
  ])('refuses %s, naming the valid values', (_name, input, message) => {
    // Act
    const size = () => taskSize({ functionMemoryMiB: 1024, ...input });

    // Assess
    expect(size).toThrow(message);
  });

  it('fails the synth of a FargateFallback with a pair Fargate refuses', () => {
    // Prepare
    const { stack, fn } = stackWithFunction();

    // Act
    const create = () =>
      new FargateFallback(stack, 'Fallback', { function: fn, cpu: 512, memoryLimitMiB: 8192 });

    // Assess
    expect(create).toThrow(/Fargate does not run 512 CPU units with 8192 MiB/);
  });
});

describe('relaunching with more memory after an out-of-memory kill', () => {
  // The watchdog reads it with the rest of the function's settings.
  const ceilingOf = (fallback: FargateFallback, stack: Stack) => {
    const fn = fallback.safetyNet?.functions[0]?.node.defaultChild as lambda.CfnFunction;
    return (stack.resolve(fn.environment) as { variables: Record<string, unknown> }).variables
      .FARGATE_FALLBACK_MAX_MEMORY_MIB;
  };

  it("sets the relaunch memory ceiling to twice the task's memory by default, or the ceiling given", () => {
    // Prepare
    const { stack, fn } = stackWithFunction();
    const other = stackWithFunction();

    // Act
    const byDefault = new FargateFallback(stack, 'Fallback', { function: fn, memoryLimitMiB: 4096 });
    const given = new FargateFallback(other.stack, 'Fallback', {
      function: other.fn,
      memoryLimitMiB: 4096,
      maxMemoryLimitMiB: 16384,
    });

    // Assess
    expect(ceilingOf(byDefault, stack)).toBe('8192');
    expect(ceilingOf(given, other.stack)).toBe('16384');
  });

  it("fails the synth with a ceiling under the task's memory", () => {
    // Prepare
    const { stack, fn } = stackWithFunction();

    // Act
    const create = () =>
      new FargateFallback(stack, 'Fallback', { function: fn, memoryLimitMiB: 4096, maxMemoryLimitMiB: 2048 });

    // Assess
    expect(create).toThrow(
      /maxMemoryLimitMiB is 2048: use a whole number of MiB from the task's memory \(4096\)/,
    );
  });
});

describe("the function's own async-invocation settings", () => {
  it('gets the relaunch function as its on-failure destination when its invoke config has none, keeping the rest', () => {
    // Prepare
    const { stack, fn } = stackWithFunction();
    const results = new sqs.Queue(stack, 'Results');
    fn.configureAsyncInvoke({ onSuccess: new SqsDestination(results), retryAttempts: 1 });

    // Act
    const fallback = new FargateFallback(stack, 'Fallback', { function: fn });

    // Assess
    expect(fallback.safetyNet?.relaunch).toBeDefined();
    const relaunchArn = stack.resolve(fallback.safetyNet?.relaunch?.functionArn);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: stack.resolve(fn.functionName),
      MaximumRetryAttempts: 1,
      DestinationConfig: {
        OnSuccess: { Destination: stack.resolve(results.queueArn) },
        OnFailure: { Destination: relaunchArn },
      },
    });
  });

  it('gives each alias without an on-failure destination the relaunch function as one, even an alias made later', () => {
    // Prepare
    const { stack, fn } = stackWithFunction();
    const fallback = new FargateFallback(stack, 'Fallback', { function: fn });
    const own = new sqs.Queue(stack, 'ProdFailures');

    // Act
    const live = new lambda.Alias(stack, 'Live', { aliasName: 'live', version: fn.currentVersion });
    const prod = new lambda.Alias(stack, 'Prod', { aliasName: 'prod', version: fn.currentVersion });
    prod.configureAsyncInvoke({ onFailure: new SqsDestination(own) });

    // Assess
    const configs = Template.fromStack(stack).findResources('AWS::Lambda::EventInvokeConfig');
    const onFailureOf = (alias: lambda.Alias) => {
      const id = stack.getLogicalId(
        alias.node.findChild('EventInvokeConfig').node.defaultChild as lambda.CfnEventInvokeConfig,
      );
      return (configs[id] as { Properties: { DestinationConfig: { OnFailure: unknown } } }).Properties
        .DestinationConfig.OnFailure;
    };
    expect(onFailureOf(live)).toEqual({
      Destination: stack.resolve(fallback.safetyNet?.relaunch?.functionArn),
    });
    expect(onFailureOf(prod)).toEqual({ Destination: stack.resolve(own.queueArn) });
  });

  it("gives the runner the destinations as deployed, by qualifier, the relaunch function's wiring included", () => {
    // Prepare: the function's own success queue, an alias with its own failure queue, one without.
    const { stack, fn } = stackWithFunction();
    const results = new sqs.Queue(stack, 'Results');
    const own = new sqs.Queue(stack, 'ProdFailures');
    fn.configureAsyncInvoke({ onSuccess: new SqsDestination(results) });
    const fallback = new FargateFallback(stack, 'Fallback', { function: fn });

    // Act: aliases made after the construct.
    new lambda.Alias(stack, 'Live', { aliasName: 'live', version: fn.currentVersion });
    const prod = new lambda.Alias(stack, 'Prod', { aliasName: 'prod', version: fn.currentVersion });
    prod.configureAsyncInvoke({ onFailure: new SqsDestination(own) });
    const template = Template.fromStack(stack);

    // Assess: the JSON, each resource written as its logical id.
    const render = (value: unknown): string => {
      if (typeof value === 'string') return value;
      const token = value as Record<string, unknown>;
      if ('Fn::Join' in token) return (token['Fn::Join'] as [string, unknown[]])[1].map(render).join('');
      if ('Fn::GetAtt' in token) return `<${(token['Fn::GetAtt'] as string[])[0]}>`;
      if ('Ref' in token) return `<${String(token.Ref)}>`;
      return JSON.stringify(value);
    };
    const id = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const expected = {
      $LATEST: {
        onSuccess: `<${id(results)}>`,
        onFailure: `<${id(fallback.safetyNet?.relaunch as IConstruct)}>`,
      },
      live: { onFailure: `<${id(fallback.safetyNet?.relaunch as IConstruct)}>` },
      prod: { onFailure: `<${id(own)}>` },
    };
    const [definition] = Object.values(template.findResources('AWS::ECS::TaskDefinition'));
    const runner = (
      definition as {
        Properties: {
          ContainerDefinitions: { Name: string; Environment: { Name: string; Value: unknown }[] }[];
        };
      }
    ).Properties.ContainerDefinitions.find((container) => container.Name === 'runner');
    const inTask = runner?.Environment.find((variable) => variable.Name === 'FARGATE_FALLBACK_DESTINATIONS');
    expect(JSON.parse(render(inTask?.Value))).toEqual(expected);
  });

  it('adds the endpoints its destinations need to a private network: SQS for a queue, SNS for a topic', () => {
    // Prepare
    const { stack, fn } = stackWithFunction();
    fn.configureAsyncInvoke({
      onSuccess: new SqsDestination(new sqs.Queue(stack, 'Results')),
      onFailure: new SnsDestination(new sns.Topic(stack, 'Failures')),
    });

    // Act
    new FargateFallback(stack, 'Fallback', { function: fn, networking: 'private' });

    // Assess
    const endpoints = Object.values(
      Template.fromStack(stack).findResources('AWS::EC2::VPCEndpoint', {
        Properties: { VpcEndpointType: 'Interface' },
      }),
    ).map((endpoint) =>
      JSON.stringify((endpoint as { Properties: { ServiceName: unknown } }).Properties.ServiceName),
    );
    expect(endpoints.some((name) => name.includes('.sqs'))).toBe(true);
    expect(endpoints.some((name) => name.includes('.sns'))).toBe(true);
    expect(endpoints.some((name) => name.includes('.events'))).toBe(false);
  });
});

describe('a function timeout at or below the margin', () => {
  const warnings = (stack: Stack) =>
    Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('margin-covers-timeout|hands off'));

  it("warns at synth with the numbers when the timeout is Lambda's default of 3 s", () => {
    // Prepare
    const { stack, fn } = stackWithFunction({ timeout: undefined });

    // Act
    new FargateFallback(stack, 'Fallback', { function: fn });

    // Assess
    const [warning, ...more] = warnings(stack);
    expect(more).toHaveLength(0);
    expect(JSON.stringify(warning?.entry.data)).toContain(
      'Parts/Report times out after 3000 ms and hands off 10000 ms before its deadline',
    );
  });

  it('says nothing when the timeout leaves time to run', () => {
    // Prepare
    const { stack, fn } = stackWithFunction({ timeout: Duration.seconds(30) });

    // Act
    new FargateFallback(stack, 'Fallback', { function: fn, margin: Duration.seconds(10) });

    // Assess
    expect(warnings(stack)).toEqual([]);
  });
});

describe('expirations on a bucket passed in', () => {
  it('become lifecycle rules of a bucket of this app', () => {
    // Prepare
    const { stack, fn } = stackWithFunction();
    const bucket = new s3.Bucket(stack, 'Given');

    // Act
    new FargateFallback(stack, 'Fallback', { function: fn, bucket, envelopeExpiration: Duration.days(2) });

    // Assess
    Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: [Match.objectLike({ Prefix: 'immortal-lambda/envelopes/', ExpirationInDays: 2 })],
      },
    });
  });

  it('fail the synth for an imported bucket, saying where to set them', () => {
    // Prepare
    const { stack, fn } = stackWithFunction();
    const bucket = s3.Bucket.fromBucketName(stack, 'Imported', 'existing-payloads');

    // Act
    const create = () =>
      new FargateFallback(stack, 'Fallback', { function: fn, bucket, outcomeExpiration: Duration.days(3) });

    // Assess
    expect(create).toThrow(/the bucket passed in is imported, so its rules cannot be set here/);
  });
});

describe('tracing in isolated subnets', () => {
  it("refuses ECR Public's daemon image, which no VPC endpoint reaches, saying what to pass", () => {
    // Prepare
    const { stack, fn } = stackWithFunction();

    // Act
    const create = () =>
      new FargateFallback(stack, 'Fallback', { function: fn, networking: 'private', tracing: true });

    // Assess
    expect(create).toThrow(
      /copy public\.ecr\.aws\/xray\/aws-xray-daemon:3\.x into a private ECR repository and pass it as xrayDaemonImage/,
    );
  });

  it('adds the X-Ray endpoint with a daemon image from a private registry', () => {
    // Prepare
    const { stack, fn } = stackWithFunction();

    // Act
    new FargateFallback(stack, 'Fallback', {
      function: fn,
      networking: 'private',
      tracing: true,
      xrayDaemonImage: ecs.ContainerImage.fromRegistry(
        '123456789012.dkr.ecr.eu-west-1.amazonaws.com/xray:3.x',
      ),
    });

    // Assess
    Template.fromStack(stack).hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: 'com.amazonaws.eu-west-1.xray',
    });
  });
});

describe("the safety net's dead letters", () => {
  it("keeps what the safety net's functions could not do in one queue, EventBridge deliveries included", () => {
    // Prepare
    const { stack, fn } = stackWithFunction();

    // Act
    const fallback = new FargateFallback(stack, 'Fallback', { function: fn });

    // Assess
    const template = Template.fromStack(stack);
    const queueArn = stack.resolve(fallback.safetyNet?.undone.queueArn);
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [Match.objectLike({ DeadLetterConfig: { Arn: queueArn }, RetryPolicy: Match.objectLike({}) })],
    });
    const configs = template.findResources('AWS::Lambda::EventInvokeConfig', {
      Properties: { DestinationConfig: { OnFailure: { Destination: queueArn } }, MaximumRetryAttempts: 2 },
    });
    // The watchdog, the relaunch function and the launcher.
    expect(Object.keys(configs)).toHaveLength(3);
    template.hasResourceProperties('AWS::SQS::Queue', {
      MessageRetentionPeriod: 14 * 24 * 3600,
      SqsManagedSseEnabled: true,
    });
  });

  it("receives the final failures: the watchdog's last attempts, and the handler errors the relaunch function does not start", () => {
    // Prepare
    const { stack, fn } = stackWithFunction();

    // Act
    const fallback = new FargateFallback(stack, 'Fallback', { function: fn });

    // Assess
    const template = Template.fromStack(stack);
    const queueArn = stack.resolve(fallback.safetyNet?.undone.queueArn);
    const variablesOf = (created: lambda.IFunction | undefined) =>
      (
        stack.resolve((childOf(created) as lambda.CfnFunction).environment) as {
          variables: Record<string, unknown>;
        }
      ).variables;
    // The relaunch function's own; the watchdog's, for this function, is the function's setting.
    expect(variablesOf(fallback.safetyNet?.relaunch).FARGATE_FALLBACK_FINAL_FAILURES).toEqual(queueArn);
    expect(variablesOf(fn).FARGATE_FALLBACK_FINAL_FAILURES).toEqual(queueArn);
    const senders = [fallback.safetyNet?.watchdog, fallback.safetyNet?.relaunch];
    for (const sender of senders) {
      if (!sender?.role) throw new Error('the safety net has no watchdog or relaunch function with a role');
      // The functions each serves: tasks and records of any other are refused.
      expect(variablesOf(sender).FARGATE_FALLBACK_FUNCTION_ARN).toEqual(stack.resolve(fn.functionArn));
      const role = stack.resolve((sender.role.node.defaultChild as unknown as { ref: string }).ref);
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [role],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Action: Match.arrayWith(['sqs:SendMessage']), Resource: queueArn }),
          ]),
        },
      });
    }
  });
});

describe('the launch queue', () => {
  it('queues handoffs that meet the launch rate on an SQS queue the launcher drains, its failures kept after five receives', () => {
    // Prepare
    const { stack, fn } = stackWithFunction();

    // Act
    const fallback = new FargateFallback(stack, 'Fallback', { function: fn });

    // Assess
    const template = Template.fromStack(stack);
    const launcher = fallback.safetyNet?.launcher;
    if (!launcher?.function.role) throw new Error('no launcher');
    const queueArn = stack.resolve(launcher.queue.queueArn);
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 720,
      SqsManagedSseEnabled: true,
      RedrivePolicy: {
        deadLetterTargetArn: stack.resolve(fallback.safetyNet?.undone.queueArn),
        maxReceiveCount: 5,
      },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: queueArn,
      FunctionName: stack.resolve(launcher.function.functionName),
      BatchSize: 10,
      ScalingConfig: { MaximumConcurrency: 2 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const variables = stack.resolve((childOf(fn) as lambda.CfnFunction).environment).variables;
    expect(variables.FARGATE_FALLBACK_LAUNCH_QUEUE).toEqual(stack.resolve(launcher.queue.queueUrl));
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [stack.resolve((childOf(fn.role) as unknown as { ref: string }).ref)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: Match.arrayWith(['sqs:SendMessage']), Resource: queueArn }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [stack.resolve((childOf(launcher.function.role) as unknown as { ref: string }).ref)],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'ecs:RunTask' })]) },
    });
  });

  it('leaves a function without it when launchQueue is false', () => {
    // Prepare
    const { stack, fn } = stackWithFunction();

    // Act
    const fallback = new FargateFallback(stack, 'Fallback', { function: fn, launchQueue: false });

    // Assess
    expect(fallback.safetyNet?.launcher).toBeUndefined();
    Template.fromStack(stack).resourceCountIs('AWS::Lambda::EventSourceMapping', 0);
    const variables = stack.resolve((childOf(fn) as lambda.CfnFunction).environment).variables;
    expect(variables.FARGATE_FALLBACK_LAUNCH_QUEUE).toBeUndefined();
  });
});
