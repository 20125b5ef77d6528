import { join } from 'node:path';
import { FargateFallback, OUTCOME_PREFIX } from '@immortal-lambda/cdk';
import { Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import type { Construct } from 'constructs';

const functions = join(import.meta.dirname, '..', 'functions');
/** The bundled functions (`node build.mjs`): an image function's folder is its image's build context. */
const dist = join(import.meta.dirname, '..', 'dist');

export interface ExampleStackProps extends StackProps {
  /** The folder holding the runner (its Dockerfile and deployed build): the image's context. */
  runnerContext: string;
}

/**
 * The example system: a long report job, an HTTP export that answers 202 when it hands off, and
 * an S3-triggered import, each with a Fargate fallback on one shared cluster, VPC and bucket.
 */
export class ExampleStack extends Stack {
  readonly report: NodejsFunction;
  readonly api: NodejsFunction;
  readonly importer: NodejsFunction;
  readonly status: NodejsFunction;
  /** The transcode job, deployed as a container image. */
  readonly transcode: lambda.DockerImageFunction;

  constructor(scope: Construct, id: string, props: ExampleStackProps) {
    super(scope, id, props);
    // The functions run on nodejs24.x, x86_64: the runner image matches both.
    const runnerImage = ecs.ContainerImage.fromAsset(props.runnerContext, {
      file: 'Dockerfile',
      platform: Platform.LINUX_AMD64,
      buildArgs: { BASE_IMAGE: 'public.ecr.aws/lambda/nodejs:24' },
    });
    const fn = (name: string, timeout: Duration, environment: Record<string, string> = {}) =>
      new NodejsFunction(this, name, {
        entry: join(functions, name.toLowerCase(), 'index.ts'),
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.X86_64,
        memorySize: 1024,
        timeout,
        environment,
        logGroup: new logs.LogGroup(this, `${name}Logs`, {
          retention: logs.RetentionDays.ONE_MONTH,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
        bundling: {
          externalModules: ['@aws-sdk/*'],
          forceDockerBundling: false,
          minify: true,
          sourceMap: true,
        },
      });

    this.report = fn('Report', Duration.minutes(15), { REPORT_TITLE: 'Quarterly report' });
    const shared = new FargateFallback(this, 'ReportFallback', {
      function: this.report,
      capacity: 'FARGATE_SPOT,FARGATE',
      runnerImage,
    });
    const reuse = { vpc: shared.vpc, cluster: shared.cluster, bucket: shared.bucket, runnerImage };

    // API Gateway gives up after 29 s: whatever the function's timeout, hand off after 25 s.
    this.api = fn('Api', Duration.minutes(5));
    new FargateFallback(this, 'ApiFallback', {
      function: this.api,
      maxInLambda: Duration.seconds(25),
      ...reuse,
    });
    const http = new apigw.HttpApi(this, 'Http', {
      description: 'Exports; 202 with the task when the work moves to Fargate',
    });
    http.addRoutes({
      path: '/export',
      methods: [apigw.HttpMethod.POST],
      integration: new HttpLambdaIntegration('Export', this.api),
    });
    // The 202 carries the request id; this route says what became of it.
    this.status = fn('Status', Duration.seconds(10), {
      EXPORT_FUNCTION_NAME: this.api.functionName,
      FARGATE_FALLBACK_BUCKET: shared.bucket.bucketName,
    });
    const exportOutcomes = `${OUTCOME_PREFIX}${this.api.functionName}/*`;
    this.status.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [shared.bucket.arnForObjects(exportOutcomes)],
      }),
    );
    this.status.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [shared.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [exportOutcomes] } },
      }),
    );
    http.addRoutes({
      path: '/status/{requestId}',
      methods: [apigw.HttpMethod.GET],
      integration: new HttpLambdaIntegration('Status', this.status),
    });

    const uploads = new s3.Bucket(this, 'Uploads', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      removalPolicy: RemovalPolicy.DESTROY,
      autoDeleteObjects: true,
    });
    this.importer = fn('Import', Duration.minutes(5));
    this.importer.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [uploads.arnForObjects('incoming/*')],
      }),
    );
    uploads.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(this.importer), {
      prefix: 'incoming/',
      suffix: '.csv',
    });
    // Imports are traced end to end: the runner's leg joins the invocation's X-Ray trace.
    new FargateFallback(this, 'ImportFallback', { function: this.importer, tracing: true, ...reuse });

    // A media job deployed as a container image: its task runs the same image, the runner beside it.
    this.transcode = new lambda.DockerImageFunction(this, 'Transcode', {
      code: lambda.DockerImageCode.fromImageAsset(join(dist, 'transcode'), {
        platform: Platform.LINUX_AMD64,
      }),
      architecture: lambda.Architecture.X86_64,
      memorySize: 2048,
      timeout: Duration.minutes(15),
      logGroup: new logs.LogGroup(this, 'TranscodeLogs', {
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
    });
    // Its handler is the CMD of its Dockerfile, which Lambda does not return: the task carries it.
    new FargateFallback(this, 'TranscodeFallback', {
      function: this.transcode,
      imageHandler: 'index.handler',
      ...reuse,
    });

    this.#acknowledge(shared, uploads, http);
  }

  /** The cdk-nag findings this example accepts, each with its reason. */
  #acknowledge(shared: FargateFallback, uploads: s3.Bucket, http: apigw.HttpApi): void {
    const acknowledge = (scope: Construct, id: string, reason: string) =>
      Validations.of(scope).acknowledge({ id, reason });
    acknowledge(
      this,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'AWSLambdaBasicExecutionRole is the managed policy Lambda documents for writing logs.',
    );
    const bucketId = this.getLogicalId(shared.bucket.node.defaultChild as s3.CfnBucket);
    const apiId = this.getLogicalId(this.api.node.defaultChild as lambda.CfnFunction);
    acknowledge(
      this.status,
      `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${OUTCOME_PREFIX}<${apiId}>/*]`,
      'The status route reads the outcome records of the export function, named by request id.',
    );
    const uploadsId = this.getLogicalId(uploads.node.defaultChild as s3.CfnBucket);
    acknowledge(
      this.importer,
      `AwsSolutions-IAM5[Resource::<${uploadsId}.Arn>/incoming/*]`,
      'The importer reads whatever is uploaded under incoming/; object keys are not known in advance.',
    );
    acknowledge(
      shared.bucket,
      'AwsSolutions-S1',
      'Envelopes are transient (expired after 7 days), travel through this bucket only (envelopeTransport s3) and are readable by the functions roles alone; no access logs are written: enable server access logs or CloudTrail data events where object reads must be audited.',
    );
    acknowledge(
      uploads,
      'AwsSolutions-S1',
      'An example upload bucket; no access logs are written: enable server access logs or CloudTrail data events where object reads must be audited.',
    );
    acknowledge(
      shared.cluster,
      'AwsSolutions-ECS4',
      'Container Insights is billed per metric; the runner writes its outcome to CloudWatch Logs.',
    );
    acknowledge(
      this,
      'AwsSolutions-ECS2',
      'The runner task sets only its stop grace period as an environment variable; no secrets.',
    );
    acknowledge(http, 'AwsSolutions-APIG1', 'Example API; access logging is left to the adopter.');
    acknowledge(
      http,
      'AwsSolutions-APIG4',
      'Example API; authorization is left to the adopter (IAM or JWT authorizers).',
    );
  }
}
