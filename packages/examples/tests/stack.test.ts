import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerContext } from '../cdk/runner-context.js';
import { ExampleStack } from '../cdk/stack.js';

type Statement = {
  Sid?: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, unknown>;
};

let outdir: string;
let template: Template;
let stack: ExampleStack;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'example-synth-'));
  const app = new App({ outdir });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  stack = new ExampleStack(app, 'Example', {
    runnerContext: runnerContext(outdir),
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  // Throws when any AwsSolutions rule finds something that is not acknowledged.
  app.synth();
  template = Template.fromStack(stack);
});

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

const policiesOf = (functionId: string): Statement[] =>
  Object.values(template.findResources('AWS::IAM::Policy'))
    .map(
      (policy) =>
        policy as { Properties: { Roles: { Ref: string }[]; PolicyDocument: { Statement: Statement[] } } },
    )
    .filter((policy) =>
      policy.Properties.Roles.some((role) => role.Ref.startsWith(`${functionId}ServiceRole`)),
    )
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);

describe('the example stack', () => {
  it('passes the AwsSolutions rules, every acknowledgement carrying its reason', () => {
    // Assess: the synth above did not throw, and the report holds no violation. (The test below
    // shows that the same set-up does fail a synth on a finding.)
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: unknown[];
    };
    expect(report.pluginReports).toEqual([]);
  });

  it('deploys the example functions on Node 24 on one cluster, sharing its one safety net', () => {
    // Prepare
    const runtimeOf = (fn: { node: { defaultChild: unknown } }) =>
      stack.resolve((fn.node.defaultChild as { runtime: string }).runtime);

    // Act
    const withFallback = Object.values(
      template.findResources('AWS::Lambda::Function', {
        Properties: {
          Environment: { Variables: Match.objectLike({ FARGATE_FALLBACK_CLUSTER: Match.anyValue() }) },
        },
      }),
    ) as { Properties: { Runtime: string; Description?: string } }[];

    // Assess
    expect([stack.report, stack.api, stack.importer, stack.status].map(runtimeOf)).toEqual([
      'nodejs24.x',
      'nodejs24.x',
      'nodejs24.x',
      'nodejs24.x',
    ]);
    // One safety net for the cluster: a watchdog, a relaunch function and a launcher serving all four.
    const safetyNet = withFallback.filter((fn) => fn.Properties.Description?.startsWith('immortal-lambda:'));
    expect(safetyNet).toHaveLength(3);
    expect(new Set(safetyNet.map((fn) => fn.Properties.Runtime))).toEqual(new Set(['nodejs24.x']));
    template.resourceCountIs('AWS::Events::Rule', 1);
    // One per wrapped function (failures to the relaunch function) and one per safety-net function
    // (what it still failed on to the safety net's queue); that queue and the launch queue.
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 4 + 3);
    template.resourceCountIs('AWS::SQS::Queue', 2);
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    template.resourceCountIs('AWS::ECS::TaskDefinition', 4);
    template.resourceCountIs('AWS::ECS::Cluster', 1);
    template.resourceCountIs('AWS::EC2::VPC', 1);
  });

  it("runs the transcode image function's tasks from its own image, the runner brought in beside it", () => {
    // Prepare
    const transcode = stack.resolve(
      (stack.transcode.node.defaultChild as unknown as { code: { imageUri: unknown } }).code,
    ).imageUri as unknown;

    // Act
    const definitions = Object.values(template.findResources('AWS::ECS::TaskDefinition')) as {
      Properties: { ContainerDefinitions: { Name: string; Image: unknown; EntryPoint?: string[] }[] };
    }[];
    const forImage = definitions.find((definition) =>
      definition.Properties.ContainerDefinitions.some((container) => container.Name === 'runner-install'),
    );

    // Assess
    template.hasResourceProperties('AWS::Lambda::Function', {
      PackageType: 'Image',
      Environment: { Variables: Match.objectLike({ FARGATE_FALLBACK_CLUSTER: Match.anyValue() }) },
    });
    const runner = forImage?.Properties.ContainerDefinitions.find((container) => container.Name === 'runner');
    expect(runner?.Image).toEqual(transcode);
    expect(runner?.EntryPoint).toEqual(['node', '/immortal-runner/dist/cli.js']);
  });

  it('routes GET /status/{requestId} to a status function that may read only the export records', () => {
    // Act
    const statements = policiesOf('Status');

    // Assess
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /status/{requestId}' });
    expect(statements.map((s) => s.Action)).toEqual(['s3:GetObject', 's3:ListBucket']);
    expect(JSON.stringify(statements)).toContain('immortal-lambda/outcomes/');
    expect(JSON.stringify(statements[1]?.Condition)).toContain('s3:prefix');
  });

  it('routes POST /export to the API function and S3 uploads under incoming/ to the importer', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /export' });
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          Match.objectLike({
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: Match.arrayWith([{ Name: 'prefix', Value: 'incoming/' }]) } },
          }),
        ],
      },
    });
  });

  it.each(['Report', 'Api', 'Import'])(
    'lets %s start only its own task definition, on the shared cluster',
    (id) => {
      // Act
      const runTask = policiesOf(id).filter((statement) => statement.Action === 'ecs:RunTask');

      // Assess
      expect(runTask).toHaveLength(1);
      expect(JSON.stringify(runTask[0]?.Resource)).toContain(`${id}FallbackRunnerTask`);
      expect(JSON.stringify(runTask[0]?.Condition)).toContain('ReportFallbackCluster');
    },
  );

  it.each(['Report', 'Api', 'Import'])(
    'grants %s nothing on "*" but ListTasks (and X-Ray segments when traced), and no wildcard actions',
    (id) => {
      for (const statement of policiesOf(id)) {
        // ecs:ListTasks has no resource to name: "*", kept to the cluster by its condition.
        if (statement.Action === 'ecs:ListTasks') {
          expect(JSON.stringify(statement.Condition)).toMatch(/ecs:cluster/);
          continue;
        }
        // Neither have X-Ray's segments: Import is traced.
        if (statement.Sid === 'SendTraceSegments') {
          expect(id).toBe('Import');
          expect(statement.Action).toEqual(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']);
          continue;
        }
        expect(([] as unknown[]).concat(statement.Resource), JSON.stringify(statement)).not.toContain('*');
        for (const action of ([] as string[]).concat(statement.Action))
          expect(action).not.toMatch(/^(\*|[a-z0-9-]+:\*)$/);
      }
    },
  );

  it('hands the API off after 25 s whatever its timeout, so the 202 beats API Gateway', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          FARGATE_FALLBACK_MAX_IN_LAMBDA_MS: '25000',
          FARGATE_FALLBACK_ENVELOPE_TRANSPORT: 's3',
        }),
      },
    });
  });

  it('spreads the report job over Spot then on-demand', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          FARGATE_FALLBACK_CAPACITY: 'FARGATE_SPOT,FARGATE',
          REPORT_TITLE: 'Quarterly report',
        }),
      },
    });
  });
});

describe('the AwsSolutions checks', () => {
  it('fail the synth of a resource that breaks a rule and is not acknowledged', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'nag-'));
    const app = new App({ outdir: dir });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    new s3.Bucket(new Stack(app, 'Open'), 'Open');

    // Act
    const synth = () => app.synth();

    // Assess
    expect(synth).toThrow();
    expect(readFileSync(join(dir, 'validation-report.json'), 'utf8')).toMatch(/AwsSolutions-S10/);
    rmSync(dir, { recursive: true, force: true });
  });
});
