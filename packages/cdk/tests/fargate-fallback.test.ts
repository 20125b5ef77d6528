import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { KinesisEventSource, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { FargateFallback, type FargateFallbackProps } from '../src/index.js';

type Statement = {
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, unknown>;
  Sid?: string;
};

function synth(
  props: Partial<FargateFallbackProps> = {},
  shape: {
    function?: (stack: Stack) => Partial<lambda.FunctionProps>;
    props?: (stack: Stack) => Partial<FargateFallbackProps>;
    after?: (fn: lambda.Function, stack: Stack) => void;
  } = {},
) {
  const app = new App();
  const stack = new Stack(app, 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
  const fn = new lambda.Function(stack, 'Report', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => 1;'),
    timeout: Duration.minutes(15),
    memorySize: 3008,
    ...shape.function?.(stack),
  });
  const fallback = new FargateFallback(stack, 'Fallback', {
    function: fn,
    ...props,
    ...shape.props?.(stack),
  });
  shape.after?.(fn, stack);
  const template = Template.fromStack(stack);
  const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
    (policy) =>
      (policy as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument
        .Statement,
  );
  return { template, statements, fallback, fn, stack, app };
}

const bySid = (statements: Statement[], sid: string) => statements.find((statement) => statement.Sid === sid);

describe('FargateFallback', () => {
  it('creates the cluster, the runner task definition and its log group with retention', () => {
    // Act
    const { template } = synth();

    // Assess
    template.resourceCountIs('AWS::ECS::Cluster', 1);
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['FARGATE'],
      NetworkMode: 'awsvpc',
      Cpu: '1024',
      Memory: '3072',
      RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
      ContainerDefinitions: [
        Match.objectLike({
          Name: 'runner',
          StopTimeout: 120,
          LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }),
        }),
      ],
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('creates a payload bucket that is encrypted, TLS only, private, and expires envelopes', () => {
    // Act
    const { template } = synth({ envelopeExpiration: Duration.days(3) });

    // Assess
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'immortal-lambda/envelopes/', ExpirationInDays: 3, Status: 'Enabled' }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it("sets the function's FARGATE_FALLBACK_* environment", () => {
    // Act
    const { template } = synth({
      capacity: 'FARGATE_SPOT,FARGATE',
      margin: Duration.seconds(30),
      maxInLambda: Duration.seconds(25),
      prewarm: Duration.seconds(60),
    });

    // Assess
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          FARGATE_FALLBACK_CLUSTER: Match.anyValue(),
          // the family, not one revision: RunTask starts the latest
          FARGATE_FALLBACK_TASK_DEFINITION: Match.stringLikeRegexp(
            '^[A-Za-z0-9_-]+FallbackRunnerTask[A-Za-z0-9]+$',
          ),
          FARGATE_FALLBACK_CONTAINER: 'runner',
          FARGATE_FALLBACK_SUBNETS: Match.anyValue(),
          FARGATE_FALLBACK_SECURITY_GROUPS: Match.anyValue(),
          FARGATE_FALLBACK_ASSIGN_PUBLIC_IP: 'true',
          FARGATE_FALLBACK_CAPACITY: 'FARGATE_SPOT,FARGATE',
          FARGATE_FALLBACK_BUCKET: Match.anyValue(),
          FARGATE_FALLBACK_MARGIN_MS: '30000',
          FARGATE_FALLBACK_MAX_IN_LAMBDA_MS: '25000',
          FARGATE_FALLBACK_PREWARM_MS: '60000',
          // the event travels through the encrypted, expiring bucket, never in the override
          FARGATE_FALLBACK_ENVELOPE_TRANSPORT: 's3',
        }),
      },
    });
  });

  it('adds the X-Ray daemon beside the runner with tracing, tells the runner where it is, and lets the task send segments', () => {
    // Act
    const { template } = synth({ tracing: true });
    const { template: plain } = synth();

    // Assess
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: Match.arrayWith([
        Match.objectLike({
          Name: 'runner',
          Environment: Match.arrayWith([{ Name: 'AWS_XRAY_DAEMON_ADDRESS', Value: '127.0.0.1:2000' }]),
        }),
        Match.objectLike({
          Name: 'xray-daemon',
          Image: 'public.ecr.aws/xray/aws-xray-daemon:3.x',
          Essential: false,
          PortMappings: [{ ContainerPort: 2000, Protocol: 'udp' }],
        }),
      ]),
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Resource: '*' }),
        ]),
      },
    });
    const definitions = plain.findResources('AWS::ECS::TaskDefinition');
    expect(JSON.stringify(definitions)).not.toContain('xray');
  });

  it("runs the task with the function's own role, trusted by Lambda and by ECS tasks of this account", () => {
    // Act
    const { template, stack, fallback, fn } = synth();

    // Assess
    expect(fallback.taskRole).toBe(fn.role);
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } }),
          Match.objectLike({
            Principal: { Service: 'ecs-tasks.amazonaws.com' },
            Condition: { StringEquals: { 'aws:SourceAccount': stack.account } },
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      TaskRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ReportServiceRole'), 'Arn'] },
    });
  });

  it('grants each permission on its exact resource, with conditions', () => {
    // Act
    const { statements } = synth();

    // Assess
    // Every revision of the runner's family, so a new deployment never denies a running one.
    expect(JSON.stringify(bySid(statements, 'RunTheRunnerTask')?.Resource)).toMatch(
      /:task-definition\/[A-Za-z0-9]*FallbackRunnerTask[A-Za-z0-9]*:\*"/,
    );
    expect(bySid(statements, 'RunTheRunnerTask')).toMatchObject({
      Action: 'ecs:RunTask',
      Condition: {
        ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [expect.stringMatching(/^FallbackCluster/), 'Arn'] } },
      },
    });
    expect(bySid(statements, 'PassTheTaskRoles')).toMatchObject({
      Action: 'iam:PassRole',
      Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    });
    expect(bySid(statements, 'PassTheTaskRoles')?.Resource).toHaveLength(2);
    expect(bySid(statements, 'TagRunnerTasksAtLaunch')).toMatchObject({
      Action: 'ecs:TagResource',
      Condition: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
    });
    expect(JSON.stringify(bySid(statements, 'WriteItsEnvelopes'))).toMatch(
      /immortal-lambda\/envelopes\/.*\/\*/,
    );
    expect(bySid(statements, 'WriteItsEnvelopes')?.Action).toBe('s3:PutObject');
    expect(bySid(statements, 'ReadItsEnvelopes')?.Action).toBe('s3:GetObject');
    expect(bySid(statements, 'ReadThePrewarmClaim')?.Action).toBe('s3:GetObject');
    expect(JSON.stringify(bySid(statements, 'ReadThePrewarmClaim')?.Resource)).toMatch(
      /outcomes\/.*\/\*\/claim\.json/,
    );
    expect(JSON.stringify(bySid(statements, 'FetchItsOwnCode')?.Resource)).toMatch(/Report.*Arn.*:\*/);
    // ListTasks is authorised on "*" by ECS: granted there, kept to the cluster by its condition.
    expect(bySid(statements, 'FindRunnerTasks')).toMatchObject({
      Action: 'ecs:ListTasks',
      Resource: '*',
      Condition: {
        ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [expect.stringMatching(/^FallbackCluster/), 'Arn'] } },
      },
    });
    expect(bySid(statements, 'DescribeRunnerTasks')?.Action).toBe('ecs:DescribeTasks');
    // On a shared cluster, a function stops only the tasks tagged with its own name.
    expect(bySid(statements, 'StopOwnRunnerTasks')).toMatchObject({
      Action: 'ecs:StopTask',
      Condition: {
        StringEquals: {
          'aws:ResourceTag/immortal-lambda:function': { Ref: expect.stringMatching(/^Report/) },
        },
      },
    });
  });

  it('grants nothing on "*" where a resource can be named, and no wildcard actions', () => {
    // Act
    const { statements } = synth({ capacity: 'FARGATE_SPOT,FARGATE' });

    // Assess: ecr:GetAuthorizationToken (the execution role's image pull) and ecs:ListTasks have
    // no resource to name.
    for (const statement of statements) {
      const resources = ([] as unknown[]).concat(statement.Resource);
      if (statement.Action !== 'ecr:GetAuthorizationToken' && statement.Action !== 'ecs:ListTasks')
        expect(resources, JSON.stringify(statement)).not.toContain('*');
      for (const action of ([] as string[]).concat(statement.Action))
        expect(action).not.toMatch(/^(\*|[a-z0-9-]+:\*)$/);
    }
  });

  it('defaults to public subnets in two AZs with public IPs and no NAT gateway', () => {
    // Act
    const { template } = synth();

    // Assess
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    const subnets = Object.values(template.findResources('AWS::EC2::Subnet'));
    expect(subnets).toHaveLength(2);
    expect(
      new Set(
        subnets.map((s) =>
          JSON.stringify((s as { Properties: { AvailabilityZone: unknown } }).Properties.AvailabilityZone),
        ),
      ).size,
    ).toBe(2);
    template.hasResourceProperties('AWS::EC2::SecurityGroup', { SecurityGroupIngress: Match.absent() });
  });

  it('offers private subnets with VPC endpoints and no public IP', () => {
    // Act
    const { template } = synth({ networking: 'private' });

    // Assess
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 5);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FARGATE_FALLBACK_ASSIGN_PUBLIC_IP: 'false' }) },
    });
  });

  it('enables the Fargate capacity providers for Spot', () => {
    synth({ capacity: 'FARGATE_SPOT,FARGATE' }).template.hasResourceProperties(
      'AWS::ECS::ClusterCapacityProviderAssociations',
      {
        CapacityProviders: Match.arrayWith(['FARGATE', 'FARGATE_SPOT']),
      },
    );
    synth().template.resourceCountIs('AWS::ECS::ClusterCapacityProviderAssociations', 0);
  });

  it('refuses a function whose role is imported', () => {
    // Prepare
    const stack = new Stack(new App(), 'Imported');
    const fn = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => 1;'),
      role: iam.Role.fromRoleArn(stack, 'Role', 'arn:aws:iam::123456789012:role/existing'),
    });

    // Act
    const attaching = () => new FargateFallback(stack, 'Fallback', { function: fn });

    // Assess
    expect(attaching).toThrow(/must have a role created in this app/);
  });

  it("grants the function's own layers without being told, and fails the synth for one added later", () => {
    // Prepare
    const arn = 'arn:aws:lambda:eu-west-1:123456789012:layer:deps:4';

    // Act
    const { statements } = synth(
      {},
      { function: (stack) => ({ layers: [lambda.LayerVersion.fromLayerVersionArn(stack, 'Deps', arn)] }) },
    );
    const late = () =>
      synth(
        {},
        { after: (fn, stack) => fn.addLayers(lambda.LayerVersion.fromLayerVersionArn(stack, 'Late', arn)) },
      );

    // Assess
    expect(bySid(statements, 'FetchItsLayers')).toMatchObject({
      Action: 'lambda:GetLayerVersion',
      Resource: arn,
    });
    expect(late).toThrow(/layer\(s\) added after its FargateFallback.*deps:4/s);
  });

  it("lets the task decrypt the function's environment and use a given bucket's key", () => {
    // Act
    const { statements } = synth(
      {},
      {
        function: (stack) => ({ environmentEncryption: new kms.Key(stack, 'EnvKey') }),
      },
    );
    const bucketStatements = synth(
      {},
      {
        props: (stack) => ({
          bucket: s3.Bucket.fromBucketAttributes(stack, 'Given', {
            bucketName: 'envelopes-given',
            encryptionKey: new kms.Key(stack, 'BucketKey'),
          }),
        }),
      },
    );

    // Assess
    expect(JSON.stringify(bySid(statements, 'DecryptItsEnvironment'))).toMatch(/kms:Decrypt.*EnvKey/);
    expect(bySid(bucketStatements.statements, 'UseThePayloadBucketKey')?.Action).toEqual([
      'kms:Decrypt',
      'kms:GenerateDataKey',
    ]);
  });

  it("follows the function's architecture and runtime: task platform, image platform and base", () => {
    // Act
    const arm = synth(
      {},
      { function: () => ({ architecture: lambda.Architecture.ARM_64, runtime: lambda.Runtime.NODEJS_24_X }) },
    );
    const x86 = synth();
    const image = (result: ReturnType<typeof synth>) => {
      const assembly = result.app.synth();
      const manifest = JSON.parse(
        readFileSync(join(assembly.directory, `${result.stack.artifactId}.assets.json`), 'utf8'),
      ) as {
        dockerImages: Record<
          string,
          { source: { platform?: string; dockerBuildArgs?: Record<string, string> } }
        >;
      };
      return Object.values(manifest.dockerImages)[0]?.source;
    };

    // Assess
    arm.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
    });
    x86.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
    });
    expect(image(arm)).toMatchObject({
      platform: 'linux/arm64',
      dockerBuildArgs: { BASE_IMAGE: 'public.ecr.aws/lambda/nodejs:24' },
    });
    expect(image(x86)).toMatchObject({
      platform: 'linux/amd64',
      dockerBuildArgs: { BASE_IMAGE: 'public.ecr.aws/lambda/nodejs:22' },
    });
  });

  it('builds the default runner image from the installed runner alone: its standalone CLI, nothing installed at build', () => {
    // Prepare
    const result = synth();

    // Act
    const assembly = result.app.synth();
    const manifest = JSON.parse(
      readFileSync(join(assembly.directory, `${result.stack.artifactId}.assets.json`), 'utf8'),
    ) as { dockerImages: Record<string, { source: { directory: string } }> };
    const source = Object.values(manifest.dockerImages)[0]?.source;
    const context = join(assembly.directory, String(source?.directory));
    const dockerfile = readFileSync(join(context, 'Dockerfile'), 'utf8');

    // Assess
    expect(existsSync(join(context, 'dist', 'standalone', 'cli.js'))).toBe(true);
    expect(existsSync(join(context, 'node_modules'))).toBe(false);
    expect(dockerfile).toMatch(/^COPY dist\/standalone /m);
    expect(dockerfile).not.toMatch(/^RUN .*(npm|pnpm|yarn|curl|wget)/m);
  });

  it('assigns a public IP exactly when the selected subnets of a given VPC are public', () => {
    // Act
    const isolated = synth(
      {},
      {
        props: (stack) => ({
          vpc: new ec2.Vpc(stack, 'Given', {
            natGateways: 0,
            subnetConfiguration: [
              { name: 'public', subnetType: ec2.SubnetType.PUBLIC },
              { name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
            ],
          }),
          subnets: { subnetGroupName: 'isolated' },
        }),
      },
    );

    // Assess
    isolated.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FARGATE_FALLBACK_ASSIGN_PUBLIC_IP: 'false' }) },
    });
  });

  it('adds the interface endpoints the handler needs in private networking', () => {
    // Act
    const { template } = synth({
      networking: 'private',
      interfaceEndpoints: [ec2.InterfaceVpcEndpointAwsService.SQS],
    });

    // Assess
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: Match.stringLikeRegexp('sqs'),
      VpcEndpointType: 'Interface',
    });
  });

  it('matches a custom payload prefix in the policy, the lifecycle rule and the environment', () => {
    // Act
    const { template, statements } = synth({ payloadPrefix: 'jobs/handoffs/' });

    // Assess
    expect(JSON.stringify(bySid(statements, 'WriteItsEnvelopes'))).toMatch(/jobs\/handoffs\/.*\/\*/);
    expect(JSON.stringify(bySid(statements, 'ReadItsEnvelopes'))).toMatch(/jobs\/handoffs\/.*\/\*/);
    expect(JSON.stringify(statements)).not.toMatch(/immortal-lambda\/envelopes/);
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: 'jobs/handoffs/' })]) },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FARGATE_FALLBACK_PAYLOAD_PREFIX: 'jobs/handoffs/' }) },
    });
  });
});

describe('FargateFallback for a container image function', () => {
  /** A function's image build context, as DockerImageCode.fromImageAsset takes it. */
  const context = () => {
    const folder = mkdtempSync(join(tmpdir(), 'image-function-'));
    writeFileSync(
      join(folder, 'Dockerfile'),
      'FROM public.ecr.aws/lambda/nodejs:24\nCOPY index.js /var/task/\nCMD ["index.handler"]\n',
    );
    writeFileSync(join(folder, 'index.js'), 'exports.handler = async () => 1;\n');
    return folder;
  };

  function synthImage(
    props: Partial<FargateFallbackProps> = {},
    code: lambda.DockerImageCode = lambda.DockerImageCode.fromImageAsset(context()),
    architecture = lambda.Architecture.ARM_64,
  ) {
    const app = new App();
    const stack = new Stack(app, 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
    const fn = new lambda.DockerImageFunction(stack, 'Transcode', {
      code,
      architecture,
      timeout: Duration.minutes(15),
      memorySize: 2048,
    });
    new FargateFallback(stack, 'Fallback', { function: fn, imageHandler: 'index.handler', ...props });
    return { template: Template.fromStack(stack), stack, app };
  }

  const containers = (template: Template) => {
    const [definition] = Object.values(template.findResources('AWS::ECS::TaskDefinition'));
    return (definition as { Properties: { ContainerDefinitions: Record<string, unknown>[] } }).Properties
      .ContainerDefinitions;
  };

  it("runs the function's own image with the runner brought in beside it, on the function's architecture", () => {
    // Act
    const { template, stack } = synthImage();

    // Assess
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
      Volumes: [{ Name: 'immortal-runner' }],
    });
    const [install, runner] = containers(template);
    expect(install).toMatchObject({
      Name: 'runner-install',
      Essential: false,
      User: '0',
      EntryPoint: ['cp'],
      Command: ['-R', '/usr/local/lib/immortal-runner/.', '/immortal-runner/'],
      MountPoints: [{ ContainerPath: '/immortal-runner', ReadOnly: false, SourceVolume: 'immortal-runner' }],
      LogConfiguration: expect.objectContaining({ LogDriver: 'awslogs' }),
    });
    expect(runner).toMatchObject({
      Name: 'runner',
      Essential: true,
      EntryPoint: ['node', '/immortal-runner/dist/cli.js'],
      MountPoints: [{ ContainerPath: '/immortal-runner', ReadOnly: true, SourceVolume: 'immortal-runner' }],
      DependsOn: [{ ContainerName: 'runner-install', Condition: 'SUCCESS' }],
      StopTimeout: 120,
    });
    expect(runner).not.toHaveProperty('Command');
    // The runner container's image is the function's: the same asset Lambda runs.
    const functionCode = Object.values(template.findResources('AWS::Lambda::Function'))[0] as {
      Properties: { Code: { ImageUri: unknown } };
    };
    expect(runner?.Image).toEqual(functionCode.Properties.Code.ImageUri);
    expect(JSON.stringify(stack.resolve(install?.Image))).not.toEqual(JSON.stringify(runner?.Image));
  });

  it("carries the handler of the image's CMD into the task, which GetFunction does not return", () => {
    // Act
    const { template } = synthImage({ imageHandler: 'src/transcode.handler' });

    // Assess
    const [, runner] = containers(template);
    expect(runner?.Environment).toContainEqual({
      Name: 'FARGATE_FALLBACK_IMAGE_HANDLER',
      Value: 'src/transcode.handler',
    });
  });

  it('takes the handler from the cmd the function overrides its image with', () => {
    // Act
    const { template } = synthImage(
      { imageHandler: undefined },
      lambda.DockerImageCode.fromImageAsset(context(), { cmd: ['jobs/media.handler'] }),
    );

    // Assess
    const [, runner] = containers(template);
    expect(runner?.Environment).toContainEqual({
      Name: 'FARGATE_FALLBACK_IMAGE_HANDLER',
      Value: 'jobs/media.handler',
    });
  });

  it('fails the synth without a handler, saying what to pass', () => {
    // Act
    const synthesized = () => synthImage({ imageHandler: undefined });

    // Assess
    expect(synthesized).toThrow(
      /whose handler is in its image's CMD, which Lambda does not return to the runner: pass imageHandler/,
    );
  });

  it("lets the task pull the function's image from its repository only", () => {
    // Act
    const { template } = synthImage();

    // Assess
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (policy) =>
        (policy as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument
          .Statement,
    );
    const pulls = statements.filter((statement) =>
      ([] as string[]).concat(statement.Action).includes('ecr:BatchGetImage'),
    );
    expect(pulls.length).toBeGreaterThan(0);
    for (const pull of pulls) {
      expect(JSON.stringify(pull.Resource)).toMatch(/repository\/.*container-assets/);
    }
  });

  it('builds the runner image for the architecture on a Node base, whatever the function has no runtime', () => {
    // Act
    const { app, stack } = synthImage({}, undefined, lambda.Architecture.X86_64);
    const assembly = app.synth();
    const manifest = JSON.parse(
      readFileSync(join(assembly.directory, `${stack.artifactId}.assets.json`), 'utf8'),
    ) as {
      dockerImages: Record<
        string,
        { source: { directory?: string; platform?: string; dockerBuildArgs?: Record<string, string> } }
      >;
    };

    // Assess: two images, the function's and the runner's
    const runner = Object.values(manifest.dockerImages).find(
      (image) => image.source.dockerBuildArgs?.BASE_IMAGE,
    );
    expect(Object.keys(manifest.dockerImages)).toHaveLength(2);
    expect(runner?.source).toMatchObject({
      platform: 'linux/amd64',
      dockerBuildArgs: { BASE_IMAGE: 'public.ecr.aws/lambda/nodejs:22' },
    });
  });

  it('takes the image given for a function whose image is in a repository, and says so when none is given', () => {
    // Prepare
    const fromRepository = (stack: Stack) =>
      ecr.Repository.fromRepositoryName(stack, 'Media', 'media/transcode');

    // Act
    const app = new App();
    const stack = new Stack(app, 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
    const repository = fromRepository(stack);
    const code = lambda.DockerImageCode.fromEcr(repository, { tagOrDigest: 'sha256:abc' });
    const fn = new lambda.DockerImageFunction(stack, 'Transcode', { code });
    const missing = () =>
      new FargateFallback(stack, 'Missing', { function: fn, imageHandler: 'index.handler' });
    new FargateFallback(stack, 'Fallback', {
      function: fn,
      imageHandler: 'index.handler',
      functionImage: ecs.ContainerImage.fromEcrRepository(repository, 'sha256:abc'),
    });
    const template = Template.fromStack(stack);

    // Assess
    expect(missing).toThrow(/is not an asset of this app.*pass functionImage/);
    const [, runner] = containers(template);
    expect(JSON.stringify(runner?.Image)).toContain('media/transcode@sha256:abc');
  });

  it('refuses functionImage for a zip function', () => {
    // Act
    const attaching = () =>
      synth({ functionImage: ecs.ContainerImage.fromRegistry('public.ecr.aws/lambda/nodejs:24') });

    // Assess
    expect(attaching).toThrow(/functionImage is for container image functions/);
  });
});

describe('FargateFallback safety net', () => {
  const roleStatements = (template: Template, functionId: RegExp) => {
    const functions = template.findResources('AWS::Lambda::Function');
    const [, fn] = Object.entries(functions).find(([id]) => functionId.test(id)) ?? [];
    const roleRef = (fn as { Properties: { Role: { 'Fn::GetAtt': [string] } } }).Properties.Role[
      'Fn::GetAtt'
    ][0];
    return Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((policy) =>
        JSON.stringify((policy as { Properties: { Roles: unknown } }).Properties.Roles).includes(roleRef),
      )
      .flatMap(
        (policy) =>
          (policy as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument
            .Statement,
      );
  };

  it("routes STOPPED runner tasks of its cluster and family to a watchdog that reads the function's own settings", () => {
    // Act
    const { template, fallback, stack } = synth({ maxAttempts: 4 });

    // Assess
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail: {
          lastStatus: ['STOPPED'],
          clusterArn: [stack.resolve(fallback.cluster.clusterArn)],
          group: [`family:${stack.resolve(fallback.taskDefinition.family)}`],
        },
      },
      Targets: [Match.objectLike({ RetryPolicy: Match.objectLike({ MaximumRetryAttempts: 4 }) })],
    });
    const environment = (fn: lambda.IFunction | undefined) =>
      stack.resolve((fn?.node.defaultChild as lambda.CfnFunction | undefined)?.environment).variables;
    // The watchdog knows its cluster and the functions it serves; each function's placement and
    // limits are the function's own settings, which the watchdog reads from its configuration.
    expect(environment(fallback.safetyNet?.watchdog)).toEqual({
      FARGATE_FALLBACK_CLUSTER: stack.resolve(fallback.cluster.clusterName),
      FARGATE_FALLBACK_FUNCTION_ARN: stack.resolve(fallback.safetyNet?.functions[0]?.functionArn),
    });
    expect(environment(fallback.safetyNet?.functions[0])).toMatchObject({
      FARGATE_FALLBACK_TASK_DEFINITION: stack.resolve(fallback.taskDefinition.family),
      FARGATE_FALLBACK_BUCKET: stack.resolve(fallback.bucket.bucketName),
      FARGATE_FALLBACK_MAX_ATTEMPTS: '4',
    });
    const statements = roleStatements(template, /SafetyNetWatchdog/);
    expect(bySid(statements, 'ReadTheFunctionSettingsAndDestinations')?.Action).toEqual([
      'lambda:GetFunctionConfiguration',
      'lambda:GetFunctionEventInvokeConfig',
    ]);
  });

  it('gives the watchdog what relaunching needs and nothing on "*" but ListTasks', () => {
    // Act
    const { template } = synth();
    const statements = roleStatements(template, /SafetyNetWatchdog/);

    // Assess
    const actions = statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
    expect(actions).toEqual(
      expect.arrayContaining([
        'ecs:RunTask',
        'ecs:TagResource',
        'ecs:ListTasks',
        'iam:PassRole',
        's3:GetObject',
        's3:PutObject',
        's3:ListBucket',
        'lambda:GetFunctionEventInvokeConfig',
      ]),
    );
    for (const statement of statements) {
      if (statement.Resource === '*') expect(statement.Action).toBe('ecs:ListTasks');
    }
    const listing = bySid(statements, 'ListItsOutcomes')?.Condition as {
      StringLike: Record<string, unknown>;
    };
    expect(JSON.stringify(listing.StringLike['s3:prefix'])).toContain('immortal-lambda/outcomes/');
  });

  it('makes a relaunch function the on-failure destination of a function that has none, granted before it is configured', () => {
    // Act
    const { template, fallback, stack } = synth();

    // Assess
    const relaunch = fallback.safetyNet?.relaunch as lambda.Function;
    expect(relaunch).toBeDefined();
    const [id, config] = Object.entries(template.findResources('AWS::Lambda::EventInvokeConfig'))[0] ?? [];
    expect(config).toMatchObject({
      Properties: { DestinationConfig: { OnFailure: { Destination: stack.resolve(relaunch.functionArn) } } },
    });
    expect(id).toBeDefined();
    const policies = template.findResources('AWS::IAM::Policy');
    const grant = Object.entries(policies).find(([, p]) =>
      JSON.stringify(p).includes('SendFailuresToTheRelaunchFunction'),
    );
    expect((config as { DependsOn?: string[] }).DependsOn).toContain(grant?.[0]);
  });

  it("keeps a function's own on-failure destination, and lets the watchdog send its last failures there", () => {
    // Act
    const { template, fallback, statements } = synth(
      {},
      {
        function: (stack) => ({
          onFailure: {
            bind: () => ({ destination: stack.formatArn({ service: 'sqs', resource: 'failures' }) }),
          },
        }),
      },
    );
    const watchdog = roleStatements(template, /SafetyNetWatchdog/);

    // Assess
    expect(fallback.safetyNet?.relaunch).toBeUndefined();
    expect(bySid(statements, 'SendFailuresToTheRelaunchFunction')).toBeUndefined();
    expect(JSON.stringify(bySid(watchdog, 'SendToTheFunctionFailureDestination')?.Resource)).toContain(
      ':sqs:eu-west-1:123456789012:failures',
    );
  });

  it('deploys none of it with safetyNet: false', () => {
    // Act
    const { template, fallback } = synth({ safetyNet: false });

    // Assess
    expect(fallback.safetyNet).toBeUndefined();
    template.resourceCountIs('AWS::Events::Rule', 0);
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 0);
    template.resourcePropertiesCountIs(
      'AWS::Lambda::Function',
      { Description: Match.stringLikeRegexp('^immortal-lambda') },
      0,
    );
  });

  it('lets the function record its outcomes and find its destinations, and expires the records', () => {
    // Act
    const { template, statements } = synth({ outcomeExpiration: Duration.days(90) });

    // Assess
    expect(JSON.stringify(bySid(statements, 'RecordItsOutcomes')?.Resource)).toContain(
      '/immortal-lambda/outcomes/',
    );
    expect(bySid(statements, 'FindItsDestinations')?.Action).toBe('lambda:GetFunctionEventInvokeConfig');
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'immortal-lambda/outcomes/', ExpirationInDays: 90 }),
        ]),
      },
    });
  });
});

describe('FargateFallback holds handed-off SQS batches', () => {
  const withQueue =
    (reportBatchItemFailures: boolean) =>
    (fn: lambda.Function, stack: Stack): void => {
      const queue = new sqs.Queue(stack, 'Imports', { visibilityTimeout: Duration.minutes(90) });
      fn.addEventSource(new SqsEventSource(queue, { reportBatchItemFailures }));
    };

  it('lets the role keep, delete and time its queue’s messages and read its records, for a mapping added after the construct', () => {
    // Act
    const { statements, stack } = synth({}, { after: withQueue(true) });

    // Assess
    const queue = stack.node.findChild('Imports') as sqs.Queue;
    expect(bySid(statements, 'HoldItsSqsBatches')).toMatchObject({
      Action: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
      Resource: stack.resolve(queue.queueArn),
    });
    expect(bySid(statements, 'ListItsRecordsForRedeliveries')?.Condition).toMatchObject({
      StringLike: { 's3:prefix': [expect.anything()] },
    });
    expect(JSON.stringify(bySid(statements, 'ReadItsRecordsForRedeliveries')?.Resource)).toContain(
      'immortal-lambda/outcomes/',
    );
  });

  it('fails the synth, naming the fix, when the mapping does not report batch item failures', () => {
    // Act
    const act = () => synth({}, { after: withQueue(false) });

    // Assess
    expect(act).toThrow(/reportBatchItemFailures: true on the SqsEventSource.*holdSqsBatches: false/s);
  });

  it('leaves such a mapping alone with holdSqsBatches: false, and tells the wrapper so', () => {
    // Act
    const { statements, template } = synth({ holdSqsBatches: false }, { after: withQueue(false) });

    // Assess
    expect(bySid(statements, 'HoldItsSqsBatches')).toBeUndefined();
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FARGATE_FALLBACK_HOLD_SQS_BATCHES: 'false' }) },
    });
  });

  it('grants nothing for a function without an SQS event source', () => {
    // Act
    const { statements } = synth();

    // Assess
    expect(bySid(statements, 'HoldItsSqsBatches')).toBeUndefined();
    expect(bySid(statements, 'ReadItsRecordsForRedeliveries')).toBeUndefined();
  });
});

describe('FargateFallback keeps stream shards in order with ordered', () => {
  const withStream =
    (options: Partial<ConstructorParameters<typeof KinesisEventSource>[1]> = {}) =>
    (fn: lambda.Function, stack: Stack): void => {
      const stream = new kinesis.Stream(stack, 'Ingest');
      fn.addEventSource(
        new KinesisEventSource(stream, {
          startingPosition: lambda.StartingPosition.TRIM_HORIZON,
          reportBatchItemFailures: true,
          ...options,
        }),
      );
    };

  it('tells the wrapper, and lets the role read its records, for a mapping that retries the batch until it is done', () => {
    // Act
    const { statements, template } = synth({ ordered: true }, { after: withStream() });

    // Assess
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FARGATE_FALLBACK_ORDERED: 'true' }) },
    });
    expect(bySid(statements, 'ReadItsRecordsForRedeliveries')).toBeDefined();
    expect(bySid(statements, 'HoldItsSqsBatches')).toBeUndefined();
  });

  it('fails the synth, naming each setting to change, for a mapping that bisects or gives up', () => {
    // Act
    const act = () =>
      synth(
        { ordered: true },
        {
          after: withStream({ reportBatchItemFailures: false, bisectBatchOnError: true, retryAttempts: 2 }),
        },
      );

    // Assess
    expect(act).toThrow(/reportBatchItemFailures: true, bisectBatchOnError: false, retryAttempts: -1/);
  });

  it('leaves stream mappings alone without ordered', () => {
    // Act
    const { statements } = synth({}, { after: withStream({ reportBatchItemFailures: false }) });

    // Assess
    expect(bySid(statements, 'ReadItsRecordsForRedeliveries')).toBeUndefined();
  });
});
