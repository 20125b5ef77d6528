import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeTasksCommand, ECSClient, ListTasksCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import { S3Client } from '@aws-sdk/client-s3';
import {
  type AuditedCall,
  LocalControlPlane,
  type LocalS3,
  roleAccessKey,
  startS3,
  type TaskStateChangeEvent,
} from '@immortal-lambda/local';
import type { HandoffReceipt } from '@immortal-lambda/middleware';
import { relaunchFailures, taskWatchdog } from '@immortal-lambda/middleware/safety-net';
import { destinationClients } from '@immortal-lambda/protocol/destinations';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerContext } from '../cdk/runner-context.js';
import { ExampleStack } from '../cdk/stack.js';
import {
  evaluate as evaluateCall,
  isBucketWideListing,
  type PolicyDocument,
  policiesOfRole as policiesOf,
} from '../lib/iam.js';
import { type SynthTemplate, TemplateNames } from '../lib/template-names.js';
import { invokeLambda } from './helpers/lambda-leg.js';

const report = join(import.meta.dirname, '..', 'dist', 'report');
let outdir: string;
let names: TemplateNames;
let roleArn: string;
let policies: PolicyDocument[];
let s3: LocalS3;
let plane: LocalControlPlane;
let calls: AuditedCall[];
let template: SynthTemplate;
type SafetyNetRole = {
  roleArn: string;
  policies: PolicyDocument[];
  env: Record<string, string>;
  calls: AuditedCall[];
};
let watchdog: SafetyNetRole;
let relaunch: SafetyNetRole;
const s3Credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
/**
 * Who signs with which access key: the function and its tasks (the plane's key), the watchdog and
 * the relaunch function. The plane and S3 enforce each one's synthesised policies.
 */
const principals = new Map<string, { roleArn: string; policies: PolicyDocument[] }>();
/** The calls the plane and S3 refused, as AWS would have. */
const refused: AuditedCall[] = [];

function authorize(call: AuditedCall): boolean {
  const principal = principals.get(call.accessKeyId ?? '');
  const allowed =
    principal !== undefined && evaluate(call, principal.policies, principal.roleArn) === 'Allowed';
  if (!allowed) refused.push(call);
  return allowed;
}
const remaining = { getRemainingTimeInMillis: () => 60_000 };

function evaluate(call: AuditedCall, documents: PolicyDocument[], principal = roleArn): string {
  return evaluateCall(call, documents, principal, names.account);
}

const denials = (documents: PolicyDocument[], made: AuditedCall[] = calls, principal = roleArn) =>
  made
    .map((call) => ({ call, result: evaluate(call, documents, principal) }))
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

const policiesOfRole = (synthesised: SynthTemplate, roleId: string) => policiesOf(synthesised, names, roleId);

beforeAll(async () => {
  // The example stack as synthesised, given the names one deployment would give it.
  outdir = mkdtempSync(join(tmpdir(), 'permissions-'));
  const app = new App({ outdir });
  const stack = new ExampleStack(app, 'Example', {
    runnerContext: runnerContext(outdir),
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  template = Template.fromStack(stack).toJSON() as SynthTemplate;
  names = new TemplateNames(template);
  const fnId = names.find('AWS::Lambda::Function', 'Report');
  const fn = template.Resources[fnId]?.Properties ?? {};
  const roleId = (fn.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  roleArn = names.arn(roleId);
  policies = policiesOfRole(template, roleId);
  const variables = names.resolve((fn.Environment as { Variables: unknown }).Variables) as Record<
    string,
    string
  >;
  const taskDefinition = template.Resources[
    names.find('AWS::ECS::TaskDefinition', 'ReportFallbackRunnerTask')
  ]?.Properties as Record<string, unknown>;

  // The local plane and S3 under the same names, recording every call.
  principals.set(s3Credentials.accessKeyId, { roleArn, policies });
  // The runner's tasks sign as their task role, as ECS gives a task its role's credentials.
  const taskRoleId = (taskDefinition.TaskRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  principals.set(roleAccessKey(names.arn(taskRoleId)), {
    roleArn: names.arn(taskRoleId),
    policies: policiesOfRole(template, taskRoleId),
  });
  s3 = await startS3({ bucket: variables.FARGATE_FALLBACK_BUCKET as string, authorize });
  plane = new LocalControlPlane({
    s3Endpoint: s3.endpoint,
    authorize,
    clusters: [String(variables.FARGATE_FALLBACK_CLUSTER)],
    subnets: String(variables.FARGATE_FALLBACK_SUBNETS).split(','),
  });
  plane.registerTaskDefinition({
    family: String(taskDefinition.Family),
    containerName: 'runner',
    environment: {},
    taskRoleArn: String(names.resolve(taskDefinition.TaskRoleArn)),
    executionRoleArn: String(names.resolve(taskDefinition.ExecutionRoleArn)),
  });
  const fnName = names.name(fnId);
  // As deployed: the safety net reads the function's settings from its configuration.
  plane.registerFunction({ name: fnName, folder: report, handler: 'index.handler', environment: variables });
  await plane.start();

  // A long report through a Lambda harness, with the function's own synthesised environment.
  const endpoints = plane.environment({ s3Endpoint: s3.endpoint });
  const invoke = async (reportId: string) =>
    (
      await invokeLambda({
        name: fnName,
        folder: report,
        event: { reportId, steps: 4, stepMs: 1_000 },
        timeoutMs: 4_000,
        region: names.region,
        account: names.account,
        environment: {
          ...variables,
          AWS_REGION: endpoints.AWS_REGION,
          AWS_ACCESS_KEY_ID: endpoints.AWS_ACCESS_KEY_ID,
          AWS_SECRET_ACCESS_KEY: endpoints.AWS_SECRET_ACCESS_KEY,
          AWS_ENDPOINT_URL_ECS: endpoints.AWS_ENDPOINT_URL_ECS,
          AWS_ENDPOINT_URL_LAMBDA: endpoints.AWS_ENDPOINT_URL_LAMBDA,
          AWS_ENDPOINT_URL_S3: endpoints.AWS_ENDPOINT_URL_S3,
          FARGATE_FALLBACK_MARGIN_MS: '2500',
        },
      })
    ).result as HandoffReceipt;
  const receipt = await invoke('permissions');
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
  // The look-up a handoff makes under a token of its own (after ECS remembered its token without a task).
  await ecs.send(new ListTasksCommand({ cluster, startedBy: `immortal-lambda/${receipt.requestId}` }));
  await ecs.send(new DescribeTasksCommand({ cluster, tasks: [receipt.taskArn] }));
  await ecs.send(new StopTaskCommand({ cluster, task: receipt.taskArn, reason: 'permissions test' }));
  calls = [...plane.audit, ...s3.audit];

  // The safety net's functions, each with its own synthesised role and environment, run against
  // the same plane; the calls each one makes are the ones between two marks.
  const since = (mark: { plane: number; s3: number }) => [
    ...plane.audit.slice(mark.plane),
    ...s3.audit.slice(mark.s3),
  ];
  const mark = () => ({ plane: plane.audit.length, s3: s3.audit.length });
  const clientsOf = (accessKeyId: string) => {
    const credentials = { accessKeyId, secretAccessKey: 'x' };
    return {
      // The function's settings and destinations, from Lambda (the plane).
      destinations: destinationClients({ region: names.region, credentials, endpoint: plane.url }),
      ecsClient: new ECSClient({ region: names.region, endpoint: plane.url, credentials }),
      s3Client: new S3Client({
        region: names.region,
        endpoint: s3.endpoint,
        forcePathStyle: true,
        credentials,
      }),
    };
  };
  const safetyNet = (prefix: string) => {
    const id = names.find('AWS::Lambda::Function', prefix);
    const properties = template.Resources[id]?.Properties ?? {};
    const role = (properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    return {
      roleArn: names.arn(role),
      policies: policiesOfRole(template, role),
      env: {
        ...(names.resolve((properties.Environment as { Variables: unknown }).Variables) as Record<
          string,
          string
        >),
        AWS_REGION: names.region,
      },
      calls: [] as AuditedCall[],
    };
  };
  // The watchdog: a task interrupted as on Spot is relaunched.
  watchdog = safetyNet('ReportFallbackSafetyNetWatchdog');
  principals.set('WATCHDOG', watchdog);
  const stopped = new Promise<TaskStateChangeEvent>((resolve) =>
    plane.on('task-state-change', (event: TaskStateChangeEvent) => {
      if (event.detail.lastStatus === 'STOPPED' && event.detail.stopCode === 'SpotInterruption')
        resolve(event);
    }),
  );
  const interrupted = await invoke('interrupted');
  while (plane.task(interrupted.taskArn)?.lastStatus !== 'RUNNING')
    await new Promise((r) => setTimeout(r, 20));
  plane.interruptTask(interrupted.taskArn, { stopTimeoutMs: 1_000 });
  const event = await stopped;
  const beforeWatchdog = mark();
  const verdict = await taskWatchdog({ env: watchdog.env, backoffMs: 0, ...clientsOf('WATCHDOG') })(
    event,
    remaining,
  );
  // The look-up a relaunch makes under a token of its own, with the watchdog's credentials.
  await clientsOf('WATCHDOG').ecsClient.send(
    new ListTasksCommand({ cluster, startedBy: `immortal-lambda/${interrupted.requestId}` }),
  );
  watchdog.calls = since(beforeWatchdog);
  if (verdict.action !== 'relaunched') throw new Error(`the watchdog did not relaunch: ${verdict.reason}`);
  await plane.waitForTask(String(verdict.taskArn), 60_000);
  // The relaunch function: an invocation that failed in Lambda is started on Fargate.
  relaunch = safetyNet('ReportFallbackSafetyNetRelaunch');
  principals.set('RELAUNCH', relaunch);
  const beforeRelaunch = mark();
  const started = await relaunchFailures({ env: relaunch.env, ...clientsOf('RELAUNCH') })(
    {
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: {
        requestId: '5afe7e00-0000-4000-8000-000000000001',
        functionArn: `arn:aws:lambda:${names.region}:${names.account}:function:${fnName}:$LATEST`,
        condition: 'RetriesExhausted',
        approximateInvokeCount: 3,
      },
      requestPayload: { reportId: 'relaunched', steps: 1, stepMs: 10 },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      responsePayload: { errorType: 'Runtime.OutOfMemory', errorMessage: 'signal: killed' },
    },
    remaining,
  );
  await clientsOf('RELAUNCH').ecsClient.send(
    new ListTasksCommand({ cluster, startedBy: 'immortal-lambda/5afe7e00-0000-4000-8000-000000000001' }),
  );
  relaunch.calls = since(beforeRelaunch);
  await plane.waitForTask(String(started.relaunched[0]?.taskArn), 60_000);
}, 240_000);

afterAll(async () => {
  await plane?.stop();
  await s3?.stop();
  rmSync(outdir, { recursive: true, force: true });
});

describe('the plane and S3 enforce the synthesised policies while the flow runs', () => {
  it("refuses no call of the handoff, the runner, the watchdog or the relaunch (but S3's own bucket-wide check for a missing key)", () => {
    // The bucket-wide listing is what S3 asks itself before it answers a missing key with 404.
    expect(refused.filter((call) => !isBucketWideListing(call))).toEqual([]);
  });

  it("answers a call outside the function's policies with AccessDeniedException, as ECS does", async () => {
    // Prepare
    const ecs = new ECSClient({ region: names.region, endpoint: plane.url, credentials: s3Credentials });

    // Act
    const stopping = ecs.send(
      new StopTaskCommand({
        cluster: 'someone-elses-cluster',
        task: 'arn:aws:ecs:eu-west-1:123456789012:task/someone-elses-cluster/0123',
      }),
    );

    // Assess
    await expect(stopping).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await expect(stopping).rejects.toThrow(/not authorized to perform: ecs:StopTask/);
  });
});

describe("every call of the safety net is allowed by its functions' policies (IAM simulator)", () => {
  it('records what relaunching needs: the envelope, the records, RunTask', () => {
    const actions = (made: AuditedCall[]) => new Set(made.map((call) => call.action));
    for (const action of [
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
      'ecs:ListTasks',
      'ecs:RunTask',
      'iam:PassRole',
    ]) {
      expect(actions(watchdog.calls), `watchdog ${action}`).toContain(action);
    }
    for (const action of [
      's3:ListBucket',
      's3:PutObject',
      'ecs:ListTasks',
      'ecs:RunTask',
      'ecs:TagResource',
    ]) {
      expect(actions(relaunch.calls), `relaunch ${action}`).toContain(action);
    }
  });

  it('finds no call the watchdog role is denied', () => {
    expect(denials(watchdog.policies, watchdog.calls, watchdog.roleArn)).toEqual([]);
  });

  it('finds no call the relaunch role is denied', () => {
    expect(denials(relaunch.policies, relaunch.calls, relaunch.roleArn)).toEqual([]);
  });

  it("finds the watchdog's listing denied by a policy without its prefix condition's prefix", () => {
    // Prepare: the listing allowed under another prefix only.
    const narrowed = watchdog.policies.map((document) => ({
      ...document,
      Statement: document.Statement.map((statement) =>
        statement.Action === 's3:ListBucket'
          ? { ...statement, Condition: { StringLike: { 's3:prefix': ['someone-else/*'] } } }
          : statement,
      ),
    }));

    // Act
    const denied = denials(narrowed, watchdog.calls, watchdog.roleArn);

    // Assess
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.every((line) => line.startsWith('s3:ListBucket '))).toBe(true);
  });
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
