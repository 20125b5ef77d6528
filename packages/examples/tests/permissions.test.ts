import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeTasksCommand, ECSClient, StopTaskCommand } from '@aws-sdk/client-ecs';
import { runUnsafeSimulation } from '@cloud-copilot/iam-simulate';
import { type AuditedCall, LocalControlPlane, type LocalS3, startS3 } from '@immortal-lambda/local';
import type { HandoffReceipt } from '@immortal-lambda/middleware';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import lambdaLocal from 'lambda-local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerContext } from '../cdk/runner-context.js';
import { ExampleStack } from '../cdk/stack.js';
import { type SynthTemplate, TemplateNames } from './helpers/template-names.js';

type Statement = {
  Effect: string;
  Action: unknown;
  Resource?: unknown;
  NotResource?: unknown;
  Condition?: unknown;
};
type PolicyDocument = { Version: string; Statement: Statement[] };

const report = join(import.meta.dirname, '..', 'dist', 'report');
let outdir: string;
let names: TemplateNames;
let roleArn: string;
let policies: PolicyDocument[];
let s3: LocalS3;
let plane: LocalControlPlane;
let calls: AuditedCall[];

lambdaLocal.setLogger({ log: () => undefined, transports: [] } as never);

/**
 * Evaluates one recorded call against identity policies with the IAM simulator, on the resource
 * AWS really evaluates. A call AWS authorises on "*" is evaluated on the literal "*": only a
 * statement whose Resource holds "*" can allow it (the simulator would otherwise read the "*" of
 * the request as a pattern that any resource of the action overlaps).
 */
function evaluate(call: AuditedCall, documents: PolicyDocument[]): string {
  const literal = (document: PolicyDocument): PolicyDocument => ({
    ...document,
    Statement: document.Statement.flatMap((statement) => {
      if (statement.Resource === undefined) return [statement];
      const resources = ([] as unknown[]).concat(statement.Resource).filter((resource) => resource === '*');
      return resources.length > 0 ? [{ ...statement, Resource: resources }] : [];
    }),
  });
  return runUnsafeSimulation(
    {
      request: {
        principal: roleArn,
        action: call.action,
        resource: { resource: call.resource, accountId: names.account },
        contextVariables: call.context,
      },
      identityPolicies: documents.map((document, index) => ({
        name: `policy-${index}`,
        policy: call.resource === '*' ? literal(document) : document,
      })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
}

const denials = (documents: PolicyDocument[]) =>
  calls
    .map((call) => ({ call, result: evaluate(call, documents) }))
    .filter(({ result }) => result !== 'Allowed')
    .map(({ call, result }) => {
      // The statement that would allow it: the call's action on its resource, under its conditions.
      const conditions = Object.entries(call.context).filter(([key]) => key !== 'ecs:CreateAction');
      const missing = {
        Effect: 'Allow',
        Action: call.action,
        Resource: call.resource,
        ...(conditions.length > 0 ? { Condition: { StringEquals: Object.fromEntries(conditions) } } : {}),
      };
      return `${call.action} on ${call.resource} ${JSON.stringify(call.context)}: ${result}; missing statement: ${JSON.stringify(missing)}`;
    });

beforeAll(async () => {
  // The example stack as synthesised, given the names one deployment would give it.
  outdir = mkdtempSync(join(tmpdir(), 'permissions-'));
  const app = new App({ outdir });
  const stack = new ExampleStack(app, 'Example', {
    runnerContext: runnerContext(outdir),
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  const template = Template.fromStack(stack).toJSON() as SynthTemplate;
  names = new TemplateNames(template);
  const fnId = names.find('AWS::Lambda::Function', 'Report');
  const fn = template.Resources[fnId]?.Properties ?? {};
  const roleId = (fn.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  roleArn = names.arn(roleId);
  policies = Object.values(template.Resources)
    .filter((resource) => resource.Type === 'AWS::IAM::Policy')
    .filter((resource) =>
      ((resource.Properties?.Roles ?? []) as { Ref?: string }[]).some((role) => role.Ref === roleId),
    )
    .map((resource) => names.resolve(resource.Properties?.PolicyDocument) as PolicyDocument);
  const variables = names.resolve((fn.Environment as { Variables: unknown }).Variables) as Record<
    string,
    string
  >;
  const taskDefinition = template.Resources[
    names.find('AWS::ECS::TaskDefinition', 'ReportFallbackRunnerTask')
  ]?.Properties as Record<string, unknown>;

  // The local plane and S3 under the same names, recording every call.
  s3 = await startS3({ bucket: variables.FARGATE_FALLBACK_BUCKET as string });
  plane = new LocalControlPlane({ s3Endpoint: s3.endpoint });
  plane.registerTaskDefinition({
    family: String(taskDefinition.Family),
    containerName: 'runner',
    environment: {},
    taskRoleArn: String(names.resolve(taskDefinition.TaskRoleArn)),
    executionRoleArn: String(names.resolve(taskDefinition.ExecutionRoleArn)),
  });
  const fnName = names.name(fnId);
  plane.registerFunction({ name: fnName, folder: report, handler: 'index.handler' });
  await plane.start();

  // A long report through a Lambda harness, with the function's own synthesised environment.
  const endpoints = plane.environment({ s3Endpoint: s3.endpoint });
  const receipt = (await lambdaLocal.execute({
    event: { reportId: 'permissions', steps: 4, stepMs: 1_000 },
    lambdaPath: join(report, 'index.js'),
    lambdaHandler: 'handler',
    timeoutMs: 3_000,
    verboseLevel: 0,
    environment: {
      ...variables,
      AWS_REGION: endpoints.AWS_REGION,
      AWS_ACCESS_KEY_ID: endpoints.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: endpoints.AWS_SECRET_ACCESS_KEY,
      AWS_ENDPOINT_URL_ECS: endpoints.AWS_ENDPOINT_URL_ECS,
      AWS_ENDPOINT_URL_LAMBDA: endpoints.AWS_ENDPOINT_URL_LAMBDA,
      AWS_ENDPOINT_URL_S3: endpoints.AWS_ENDPOINT_URL_S3,
      AWS_LAMBDA_FUNCTION_NAME: fnName,
      AWS_LAMBDA_FUNCTION_VERSION: '1',
      _HANDLER: 'index.handler',
      FARGATE_FALLBACK_MARGIN_MS: '1500',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    contextOverwrite: (context: Record<string, unknown>) => {
      context.functionName = fnName;
      context.functionVersion = '1';
      context.invokedFunctionArn = `arn:aws:lambda:${names.region}:${names.account}:function:${fnName}`;
    },
  })) as HandoffReceipt;
  const task = await plane.waitForTask(receipt.taskArn, 60_000);
  if (task.exitCode !== 0) throw new Error(`the runner task exited ${task.exitCode}`);
  // The wrapper's other calls (a concurrent duplicate, a handler that finished during its
  // handoff), made with the function's credentials.
  const ecs = new ECSClient({
    region: names.region,
    endpoint: plane.url,
    credentials: { accessKeyId: String(endpoints.AWS_ACCESS_KEY_ID), secretAccessKey: 'x' },
  });
  const cluster = variables.FARGATE_FALLBACK_CLUSTER;
  await ecs.send(new DescribeTasksCommand({ cluster, tasks: [receipt.taskArn] }));
  await ecs.send(new StopTaskCommand({ cluster, task: receipt.taskArn, reason: 'permissions test' }));
  calls = [...plane.audit, ...s3.audit];
}, 180_000);

afterAll(async () => {
  await plane?.stop();
  await s3?.stop();
  rmSync(outdir, { recursive: true, force: true });
});

describe("every call of a handoff is allowed by the example stack's policies (IAM simulator)", () => {
  it('records the calls of both legs: ECS, IAM, Lambda and S3', () => {
    const actions = new Set(calls.map((call) => call.action));
    for (const action of [
      'ecs:RunTask',
      'ecs:TagResource',
      'iam:PassRole',
      'ecs:ListTasks',
      'ecs:DescribeTasks',
      'ecs:StopTask',
      's3:PutObject',
      's3:GetObject',
      'lambda:GetFunction',
      'lambda:GetFunctionEventInvokeConfig',
    ]) {
      expect(actions, action).toContain(action);
    }
  });

  it('finds no call the function role is denied', () => {
    expect(denials(policies)).toEqual([]);
  });

  it('reports the denial a policy granting ListTasks on container instances would meet', () => {
    // Prepare: the grant as it once was: ListTasks on the cluster's container instances.
    const old = policies.map((document) => ({
      ...document,
      Statement: document.Statement.map((statement) =>
        statement.Action === 'ecs:ListTasks'
          ? {
              ...statement,
              Resource: `arn:aws:ecs:${names.region}:${names.account}:container-instance/${
                calls.find((call) => call.action === 'ecs:ListTasks')?.context['ecs:cluster']?.split('/')[1]
              }/*`,
            }
          : statement,
      ),
    }));

    // Act
    const denied = denials(old);

    // Assess
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.every((line) => line.startsWith('ecs:ListTasks on * '))).toBe(true);
  });
});
