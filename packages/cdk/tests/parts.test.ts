import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { TaskNetwork } from '../src/parts/network.js';
import { payloadBucket } from '../src/parts/payload-bucket.js';
import { RunnerTask } from '../src/parts/runner-task.js';

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
