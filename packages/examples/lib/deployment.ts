import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECSClient } from '@aws-sdk/client-ecs';
import { S3Client } from '@aws-sdk/client-s3';
import { FargateFallback } from '@immortal-lambda/cdk';
import {
  type AuditedCall,
  type EventRuleSpec,
  type LifecycleRule,
  type LocalControlPlane,
  roleAccessKey,
} from '@immortal-lambda/local';
import { type DestinationClients, destinationClients } from '@immortal-lambda/protocol/destinations';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { KinesisEventSource, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { evaluate, type PolicyDocument, policiesOfRole } from './iam.js';
import { launcherOf } from './launchers.js';
import { type SynthTemplate, TemplateNames } from './template-names.js';

/** One function of a {@link Deployment}: its name, timeout and on-failure destination. */
export interface DeployedFunctionSpec {
  name: string;
  timeoutSeconds?: number;
  onFailure?: string;
  /** The construct's `envelopeTransport` (default `s3`, as the construct's). */
  envelopeTransport?: 'auto' | 's3';
  /**
   * An SQS queue the function consumes (an `SqsEventSource` reporting batch item failures), with
   * a dead-letter queue after `maxReceiveCount` receives: `<name>-source` and `<name>-source-dlq`.
   */
  sqsSource?: { visibilityTimeoutSeconds: number; maxReceiveCount: number };
  /** A Kinesis stream the function reads in order (`ordered` on the construct): `<name>-stream`. */
  orderedStream?: boolean;
}

/** Who a deployed piece signs as: its role, that role's policies, and the key it signs with. */
export interface Principal {
  /** The function's ARN, for a piece that is a function. */
  arn?: string;
  roleArn: string;
  policies: PolicyDocument[];
  /** What the piece runs with: its synthesised environment and its role's credentials. */
  environment: Record<string, string>;
}

/** One function as synthesised: itself, its runner task definition and its safety net. */
export interface DeployedFunction {
  name: string;
  function: Principal;
  /** The function's own variables as deployed (its `FARGATE_FALLBACK_*` settings): what Lambda's configuration holds. */
  variables: Record<string, string>;
  task: {
    family: string;
    taskRoleArn: string;
    executionRoleArn: string;
    environment: Record<string, string>;
    cpuArchitecture: 'X86_64' | 'ARM64';
  };
  /** The watchdog of the safety net that serves it (shared by the functions of its cluster). */
  watchdog: Principal;
  /** Absent when the function sends its failures elsewhere (an on-failure destination of its own). */
  relaunch?: Principal;
  /** The queue the function consumes, as {@link DeployedFunctionSpec.sqsSource} made it; absent without one. */
  source?: {
    queueUrl: string;
    deadLetterQueue: string;
    visibilityTimeoutMs: number;
    maxReceiveCount: number;
  };
  /** The launcher of the launch queue the function sends to (`FARGATE_FALLBACK_LAUNCH_QUEUE`); absent without one. */
  launcher?: Principal & {
    queueUrl: string;
    visibilityTimeoutMs: number;
    maxReceiveCount: number;
    deadLetterQueue: string;
  };
}

/**
 * The construct's real grants for a set of functions, synthesised and given the names one
 * deployment would give them (one bucket, one cluster, shared), so that the local plane and S3 can run the flow as that deployment would: each
 * piece signs with its own role's key, and `authorize` decides every call with IAM's rules.
 */
export interface Deployment {
  bucket: string;
  cluster: string;
  subnets: string[];
  functions: Record<string, DeployedFunction>;
  /** The key of whoever drives the test or the demo: allowed every call, as an administrator is. */
  operatorKey: string;
  /** Decides one call as IAM would for the role whose key signed it. */
  authorize: (call: AuditedCall) => boolean;
  /** Decides as `authorize` does, without noting a refusal (IAM's SimulatePrincipalPolicy). */
  evaluate: (call: AuditedCall) => boolean;
  /** The calls `authorize` refused, in order. */
  refused: AuditedCall[];
  /** The rules of the default event bus (the safety net's), as the plane's `registerRule` takes them. */
  rules: EventRuleSpec[];
  /** The payload bucket's expiration rules, as `startS3`'s `lifecycle` takes them. */
  lifecycle: LifecycleRule[];
}

const OPERATOR_KEY = 'S3RVER';

/**
 * Synthesises a stack of Lambda functions, each wrapped by `FargateFallback` (its safety net
 * included), the later ones sharing the first one's bucket and cluster, and reads back each role's
 * policies and each piece's environment.
 *
 * @example
 * ```ts
 * const deployment = deployExample({ functions: [{ name: 'report-job' }] });
 * const s3 = await startS3({ bucket: deployment.bucket, authorize: deployment.authorize });
 * ```
 */
export function deployExample(spec: { functions: DeployedFunctionSpec[] }): Deployment {
  const outdir = mkdtempSync(join(tmpdir(), 'immortal-deployment-'));
  try {
    const app = new App({ outdir });
    const stack = new Stack(app, 'Deployed', { env: { account: '123456789012', region: 'eu-west-1' } });
    let shared: Pick<FargateFallback, 'vpc' | 'cluster' | 'bucket'> | undefined;
    for (const [index, each] of spec.functions.entries()) {
      const fn = new lambda.Function(stack, `Fn${index}`, {
        functionName: each.name,
        runtime: lambda.Runtime.NODEJS_22_X,
        handler: 'index.handler',
        code: lambda.Code.fromInline('exports.handler = async () => ({})'),
        timeout: Duration.seconds(each.timeoutSeconds ?? 30),
      });
      if (each.onFailure) {
        // As CDK's destination classes do: the function's role may send to its destination.
        fn.configureAsyncInvoke({ onFailure: { bind: () => ({ destination: String(each.onFailure) }) } });
        fn.addToRolePolicy(
          new iam.PolicyStatement({
            actions: ['sqs:SendMessage', 'sns:Publish', 'events:PutEvents', 'lambda:InvokeFunction'],
            resources: [each.onFailure],
          }),
        );
      }
      if (each.sqsSource) {
        const deadLetterQueue = new sqs.Queue(stack, `Source${index}Dlq`, {
          queueName: `${each.name}-source-dlq`,
        });
        const queue = new sqs.Queue(stack, `Source${index}`, {
          queueName: `${each.name}-source`,
          visibilityTimeout: Duration.seconds(each.sqsSource.visibilityTimeoutSeconds),
          deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: each.sqsSource.maxReceiveCount },
        });
        fn.addEventSource(new SqsEventSource(queue, { batchSize: 10, reportBatchItemFailures: true }));
      }
      if (each.orderedStream) {
        const stream = new kinesis.Stream(stack, `Stream${index}`, { streamName: `${each.name}-stream` });
        fn.addEventSource(
          new KinesisEventSource(stream, {
            startingPosition: lambda.StartingPosition.TRIM_HORIZON,
            batchSize: 3,
            reportBatchItemFailures: true,
          }),
        );
      }
      const fallback = new FargateFallback(stack, `Fallback${index}`, {
        function: fn,
        ...(each.orderedStream ? { ordered: true } : {}),
        runnerImage: ecs.ContainerImage.fromRegistry('immortal-runner'),
        ...(each.envelopeTransport ? { envelopeTransport: each.envelopeTransport } : {}),
        ...(shared ? { vpc: shared.vpc, cluster: shared.cluster, bucket: shared.bucket } : {}),
      });
      shared ??= fallback;
    }
    return read(Template.fromStack(stack).toJSON() as SynthTemplate, spec);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** The deployment's names, roles and environments, from its template. */
function read(template: SynthTemplate, spec: { functions: DeployedFunctionSpec[] }): Deployment {
  const names = new TemplateNames(template);
  const principals = new Map<string, Principal>();
  const principal = (roleArnOf: unknown, environment: unknown): Principal => {
    const roleId = (roleArnOf as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const roleArn = names.arn(roleId);
    const resolved = (names.resolve(environment) ?? {}) as Record<string, string>;
    const made: Principal = {
      roleArn,
      policies: policiesOfRole(template, names, roleId),
      environment: { ...resolved, AWS_ACCESS_KEY_ID: roleAccessKey(roleArn), AWS_SECRET_ACCESS_KEY: 'local' },
    };
    principals.set(roleAccessKey(roleArn), made);
    return made;
  };
  const functionOf = (id: string): Principal => {
    const properties = template.Resources[id]?.Properties ?? {};
    const made = principal(
      properties.Role,
      (properties.Environment as { Variables?: unknown } | undefined)?.Variables,
    );
    made.arn = names.arn(id);
    return made;
  };
  /** The safety-net function of a kind whose served functions (FARGATE_FALLBACK_FUNCTION_ARN) include `arn`. */
  const servingOf = (kind: 'Watchdog' | 'Relaunch' | 'Launcher', arn: string) => {
    const id = Object.keys(template.Resources).find((candidate) => {
      if (!new RegExp(`SafetyNet${kind}[0-9A-F]{8}$`).test(candidate)) return false;
      const variables = (template.Resources[candidate]?.Properties?.Environment as { Variables?: unknown })
        ?.Variables;
      const served = (names.resolve(variables) as Record<string, string> | undefined)
        ?.FARGATE_FALLBACK_FUNCTION_ARN;
      return String(served ?? '')
        .split(',')
        .includes(arn);
    });
    if (!id) throw new Error(`no safety-net ${kind.toLowerCase()} serves ${arn}`);
    return functionOf(id);
  };
  const functions: Record<string, DeployedFunction> = {};
  for (const [index, each] of spec.functions.entries()) {
    const definition = template.Resources[
      names.find('AWS::ECS::TaskDefinition', `Fallback${index}RunnerTask`)
    ]?.Properties as Record<string, unknown>;
    const runner = (
      definition.ContainerDefinitions as { Name: string; Environment?: { Name: string; Value: unknown }[] }[]
    ).find((container) => container.Name === 'runner');
    // The task role signs the runner's calls (the plane gives tasks its key).
    const taskRoleArn = principal(definition.TaskRoleArn, {}).roleArn;
    const fnId = names.find('AWS::Lambda::Function', `Fn${index}`);
    const fn = functionOf(fnId);
    const { AWS_ACCESS_KEY_ID: _key, AWS_SECRET_ACCESS_KEY: _secret, ...variables } = fn.environment;
    const arn = names.arn(fnId);
    functions[each.name] = {
      name: each.name,
      function: fn,
      variables,
      task: {
        family: String(definition.Family),
        taskRoleArn,
        executionRoleArn: String(names.resolve(definition.ExecutionRoleArn)),
        cpuArchitecture:
          (definition.RuntimePlatform as { CpuArchitecture?: string } | undefined)?.CpuArchitecture ===
          'ARM64'
            ? 'ARM64'
            : 'X86_64',
        environment: Object.fromEntries(
          (runner?.Environment ?? []).map((variable) => [
            variable.Name,
            String(names.resolve(variable.Value)),
          ]),
        ),
      },
      ...(each.sqsSource
        ? {
            source: {
              queueUrl: names.ref(names.find('AWS::SQS::Queue', `Source${index}`)),
              deadLetterQueue: `${each.name}-source-dlq`,
              visibilityTimeoutMs: each.sqsSource.visibilityTimeoutSeconds * 1000,
              maxReceiveCount: each.sqsSource.maxReceiveCount,
            },
          }
        : {}),
      watchdog: servingOf('Watchdog', arn),
      ...(each.onFailure ? {} : { relaunch: servingOf('Relaunch', arn) }),
      ...(variables.FARGATE_FALLBACK_LAUNCH_QUEUE
        ? {
            launcher: launcherOf(
              template,
              names,
              servingOf('Launcher', arn),
              variables.FARGATE_FALLBACK_LAUNCH_QUEUE,
            ),
          }
        : {}),
    };
  }
  const first = Object.values(functions)[0];
  const refused: AuditedCall[] = [];
  const decide = (call: AuditedCall) => {
    if (call.accessKeyId === OPERATOR_KEY) return true;
    const by = principals.get(call.accessKeyId ?? '');
    return by !== undefined && evaluate(call, by.policies, by.roleArn, names.account) === 'Allowed';
  };
  const bucket = String(first?.function.environment.FARGATE_FALLBACK_BUCKET);
  return {
    bucket,
    rules: rulesOf(template, names),
    lifecycle: lifecycleOf(template, names, bucket),
    cluster: String(first?.function.environment.FARGATE_FALLBACK_CLUSTER),
    subnets: String(first?.function.environment.FARGATE_FALLBACK_SUBNETS ?? '').split(','),
    functions,
    operatorKey: OPERATOR_KEY,
    refused,
    evaluate: decide,
    authorize: (call) => {
      const allowed = decide(call);
      if (!allowed) refused.push(call);
      return allowed;
    },
  };
}

/** The template's EventBridge rules, resolved to the names the deployment gives. */
function rulesOf(template: SynthTemplate, names: TemplateNames): EventRuleSpec[] {
  return Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === 'AWS::Events::Rule')
    .map(([id, resource]) => {
      const properties = names.resolve(resource.Properties ?? {}) as {
        EventPattern?: unknown;
        State?: 'ENABLED' | 'DISABLED';
        Targets?: { Id: string; Arn: string }[];
      };
      return {
        name: id,
        eventPattern: properties.EventPattern,
        ...(properties.State ? { state: properties.State } : {}),
        targets: (properties.Targets ?? []).map((target) => ({ id: target.Id, arn: target.Arn })),
      };
    });
}

/** The payload bucket's lifecycle rules that expire objects, from its resource in the template. */
function lifecycleOf(template: SynthTemplate, names: TemplateNames, bucket: string): LifecycleRule[] {
  const resource = Object.entries(template.Resources).find(
    ([id, each]) => each.Type === 'AWS::S3::Bucket' && names.name(id) === bucket,
  )?.[1];
  const rules = ((resource?.Properties?.LifecycleConfiguration as { Rules?: unknown[] } | undefined)?.Rules ??
    []) as { Id?: string; Prefix?: string; ExpirationInDays?: number; Status?: 'Enabled' | 'Disabled' }[];
  return rules
    .filter((rule) => rule.ExpirationInDays !== undefined)
    .map((rule, index) => ({
      id: rule.Id ?? `rule-${index}`,
      prefix: rule.Prefix ?? '',
      expirationDays: Number(rule.ExpirationInDays),
      ...(rule.Status ? { status: rule.Status } : {}),
    }));
}

/**
 * Registers each function's runner task definition of a deployment on a local plane, with its
 * task and execution roles, so that its tasks sign as their task role.
 *
 * @example
 * ```ts
 * const plane = new LocalControlPlane({ authorize: deployment.authorize, clusters: [deployment.cluster], subnets: deployment.subnets });
 * registerTaskDefinitions(plane, deployment);
 * ```
 */
export function registerTaskDefinitions(
  plane: { registerTaskDefinition: LocalControlPlane['registerTaskDefinition'] },
  deployment: Deployment,
): void {
  for (const deployed of Object.values(deployment.functions)) {
    plane.registerTaskDefinition({ ...deployed.task, containerName: 'runner' });
  }
}

/**
 * SDK clients that sign as a deployed piece (the watchdog, the relaunch function) against the
 * local plane and S3: what its handler makes for itself on Lambda.
 *
 * @example
 * ```ts
 * const watchdog = taskWatchdog({ env, ...clientsOf(deployed.watchdog, { plane: plane.url, s3: s3.endpoint, region: plane.region }) });
 * ```
 */
export function clientsOf(
  principal: Principal,
  at: { plane: string; s3: string; region: string },
): { ecsClient: ECSClient; s3Client: S3Client; destinations: DestinationClients } {
  const credentials = {
    accessKeyId: String(principal.environment.AWS_ACCESS_KEY_ID),
    secretAccessKey: String(principal.environment.AWS_SECRET_ACCESS_KEY),
  };
  // Every call bounded, as the safety net's own clients are on Lambda: no answer fails loudly.
  // The SDK only warns about a request past its timeout unless told to throw; thrown, it is retried.
  const requestHandler = { requestTimeout: 20_000, connectionTimeout: 5_000, throwOnRequestTimeout: true };
  return {
    ecsClient: new ECSClient({ region: at.region, endpoint: at.plane, credentials, requestHandler }),
    s3Client: new S3Client({
      region: at.region,
      endpoint: at.s3,
      forcePathStyle: true,
      credentials,
      requestHandler,
    }),
    // The destinations' endpoints come from the environment (AWS_ENDPOINT_URL_SQS, …).
    destinations: destinationClients({ region: at.region, credentials, requestHandler }),
  };
}

/**
 * The SDK's side of an environment (region, credentials, endpoints), without the fallback's
 * settings: what a safety-net function runs with besides its own variables, which the construct
 * gives it (its cluster and the functions it serves; each function's placement it reads).
 *
 * @example
 * ```ts
 * const watchdog = taskWatchdog({ env: { ...sdkEnvironment(plane.environment()), ...deployed.watchdog.environment } });
 * ```
 */
export function sdkEnvironment(environment: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(environment).filter(([name]) => !name.startsWith('FARGATE_FALLBACK_')),
  );
}

export { isBucketWideListing } from './iam.js';
export { startLaunchers } from './launchers.js';
