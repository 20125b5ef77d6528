import { DEFAULT_OUTCOME_PREFIX, TASK_TAGS } from '@immortal-lambda/protocol';
import { ArnFormat, Stack, Token, Validations } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

/** What the function's (and its task's) permissions are about. */
export interface RunnerPermissionsProps {
  function: lambda.Function;
  /** The role of both the function and its task. */
  taskRole: iam.Role;
  cluster: ecs.ICluster;
  taskDefinition: ecs.FargateTaskDefinition;
  bucket: s3.IBucket;
  /** A given bucket's customer managed key, which envelopes and records are written with. */
  bucketKey: kms.IKey | undefined;
  payloadPrefix: string;
  /** More layers the task may fetch, beside the function's own. */
  layers: readonly lambda.ILayerVersion[];
  tracing: boolean;
}

/**
 * The least-privilege permissions of the function's role, which its task runs with too: start,
 * tag, find and stop its runner tasks on its cluster and pass their roles; write and read its
 * envelopes and records under its own prefixes; find its destinations; fetch its own code,
 * layers and environment. Every wildcard is acknowledged with its reason, for policy checks such
 * as cdk-nag. The policy is created in the scope it is given (the `FargateFallback`), as
 * `Permissions`: a policy of its own rather than the role's default one, because its statements
 * name the function, and the function itself waits for the default policy (a cycle).
 *
 * @example
 * ```ts
 * const permissions = new RunnerPermissions(this, { function: fn, taskRole, cluster, taskDefinition, bucket, bucketKey: undefined, payloadPrefix: 'immortal-lambda/envelopes/', layers: [], tracing: false });
 * permissions.acknowledgeOn(watchdog);
 * ```
 */
export class RunnerPermissions {
  readonly policy: iam.Policy;
  /** Start, tag, find and stop runner tasks and pass their roles: what the safety net needs too. */
  readonly runTaskStatements: iam.PolicyStatement[];
  /** The wildcards of these statements, each with why it cannot be narrower. */
  readonly wildcards: [string, string][] = [];
  readonly #props: RunnerPermissionsProps;
  readonly #stack: Stack;

  constructor(scope: Construct, props: RunnerPermissionsProps) {
    this.#props = props;
    this.#stack = Stack.of(scope);
    this.policy = new iam.Policy(scope, 'Permissions', { roles: [props.taskRole] });
    this.runTaskStatements = this.#runTaskStatements();
    this.policy.addStatements(...this.runTaskStatements);
    this.#recordStatements();
    this.#codeStatements(scope);
    this.#readStatements();
    this.#acknowledgeWildcards();
  }

  /** Where the function's envelopes are (`<payload prefix><function name>/*`). */
  get envelopes(): string {
    return `${this.#props.payloadPrefix}${this.#props.function.functionName}/*`;
  }

  /** Where the function's outcome records are (`<outcome prefix><function name>/*`). */
  get outcomes(): string {
    return `${DEFAULT_OUTCOME_PREFIX}${this.#props.function.functionName}/*`;
  }

  /** Acknowledges this policy's wildcards, with their reasons, on another construct that shares them. */
  acknowledgeOn(construct: Construct): void {
    for (const [resource, reason] of this.wildcards) {
      Validations.of(construct).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${renderForFindings(this.#stack, resource)}]`,
        reason,
      });
    }
  }

  /**
   * The function: start its task definition on its cluster, tag and stop those tasks only. Every
   * revision of the family: a deployment that registers a new revision must not deny the one that
   * invocations already running were configured with.
   */
  #runTaskStatements(): iam.PolicyStatement[] {
    const { cluster, taskDefinition, taskRole } = this.#props;
    const onCluster = { ArnEquals: { 'ecs:cluster': cluster.clusterArn } };
    return [
      new iam.PolicyStatement({
        sid: 'RunTheRunnerTask',
        actions: ['ecs:RunTask'],
        resources: [this.#revisions()],
        conditions: onCluster,
      }),
      new iam.PolicyStatement({
        sid: 'TagRunnerTasksAtLaunch',
        actions: ['ecs:TagResource'],
        resources: [this.#taskArns()],
        conditions: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
      }),
      new iam.PolicyStatement({
        sid: 'DescribeRunnerTasks',
        actions: ['ecs:DescribeTasks'],
        resources: [this.#taskArns()],
        conditions: onCluster,
      }),
      // Its own tasks only, by the tag RunTask gives them: on a shared cluster, one function may
      // not stop another's.
      new iam.PolicyStatement({
        sid: 'StopOwnRunnerTasks',
        actions: ['ecs:StopTask'],
        resources: [this.#taskArns()],
        conditions: {
          ...onCluster,
          StringEquals: { [`aws:ResourceTag/${TASK_TAGS.function}`]: this.#props.function.functionName },
        },
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
        resources: [taskRole.roleArn, taskDefinition.obtainExecutionRole().roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    ];
  }

  /**
   * The wrapper writes envelopes and records the handoff, the runner each attempt, under the
   * function's own prefix; the runner sends the final outcome to the function's async destinations.
   */
  #recordStatements(): void {
    const { bucket, function: fn } = this.#props;
    this.policy.addStatements(
      new iam.PolicyStatement({
        sid: 'WriteItsEnvelopes',
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects(this.envelopes)],
      }),
    );
    this.policy.addStatements(
      new iam.PolicyStatement({
        sid: 'RecordItsOutcomes',
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects(this.outcomes)],
      }),
      new iam.PolicyStatement({
        sid: 'FindItsDestinations',
        actions: ['lambda:GetFunctionEventInvokeConfig'],
        resources: [fn.functionArn, `${fn.functionArn}:*`],
      }),
    );
  }

  /**
   * The task (same role): fetch this function's code, its layers as they are now and any given
   * (one added later fails the synth), and its environment encrypted with a customer managed key
   * (GetFunction returns the variables only to a caller that may decrypt them).
   */
  #codeStatements(scope: Construct): void {
    const { function: fn, layers: given, bucketKey } = this.#props;
    this.policy.addStatements(
      new iam.PolicyStatement({
        sid: 'FetchItsOwnCode',
        actions: ['lambda:GetFunction'],
        resources: [fn.functionArn, `${fn.functionArn}:*`],
      }),
    );
    const cfnFunction = fn.node.defaultChild as lambda.CfnFunction;
    const functionLayers = () => (this.#stack.resolve(cfnFunction.layers) as unknown[] | undefined) ?? [];
    const layers = new Map<string, string>();
    for (const arn of [...given.map((layer) => layer.layerVersionArn), ...functionLayers()])
      layers.set(JSON.stringify(this.#stack.resolve(arn)), Token.asString(arn));
    if (layers.size > 0) {
      this.policy.addStatements(
        new iam.PolicyStatement({
          sid: 'FetchItsLayers',
          actions: ['lambda:GetLayerVersion'],
          resources: [...layers.values()],
        }),
      );
    }
    scope.node.addValidation({
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
    const environmentKey = this.#stack.resolve(cfnFunction.kmsKeyArn) as unknown;
    if (environmentKey !== undefined) {
      this.policy.addStatements(
        new iam.PolicyStatement({
          sid: 'DecryptItsEnvironment',
          actions: ['kms:Decrypt'],
          resources: [Token.asString(environmentKey)],
        }),
      );
    }
    // A given bucket encrypted with a customer managed key: writing and reading envelopes use it.
    if (bucketKey) this.policy.addStatements(bucketKeyStatement(bucketKey));
  }

  /**
   * The runner reads its envelope, the journal a relaunch resumes from, and a pre-warmed task the
   * envelope or cancel marker at its resume location and the claim, beside the outcome records.
   */
  #readStatements(): void {
    const { bucket, function: fn } = this.#props;
    const journal = `${DEFAULT_OUTCOME_PREFIX}${fn.functionName}/*/journal.json`;
    const resume = `${DEFAULT_OUTCOME_PREFIX}${fn.functionName}/*/resume.json`;
    this.policy.addStatements(
      new iam.PolicyStatement({
        sid: 'ReadItsEnvelopes',
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects(this.envelopes)],
      }),
      new iam.PolicyStatement({
        sid: 'ReadItsJournalAndResumeLocation',
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects(journal), bucket.arnForObjects(resume)],
      }),
      // Both are read before they exist (a first relaunch, a standby waiting): S3 answers a
      // missing key with 403 to a role that may not list the bucket, so the runner lists exactly
      // that key to tell "not there yet" from "denied".
      new iam.PolicyStatement({
        sid: 'TellItsJournalAndResumeLocationMissing',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [journal, resume] } },
      }),
      // A pre-warmed invocation's claim (which leg completes) is read back once a create of it
      // was refused: both the runner and the wrapper (the same role) must see who won.
      new iam.PolicyStatement({
        sid: 'ReadThePrewarmClaim',
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects(`${DEFAULT_OUTCOME_PREFIX}${fn.functionName}/*/claim.json`)],
      }),
    );
  }

  /** The wildcards above cannot be narrower; say why, for policy checks such as cdk-nag. */
  #acknowledgeWildcards(): void {
    const { bucket, function: fn, taskDefinition, tracing } = this.#props;
    const wildcard = (resource: string, reason: string) => {
      this.wildcards.push([resource, reason]);
      Validations.of(this.policy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${renderForFindings(this.#stack, resource)}]`,
        reason,
      });
    };
    Validations.of(taskDefinition.obtainExecutionRole()).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken, which pulling the runner image needs, has no resource to name.',
    });
    wildcard(
      this.#revisions(),
      'RunTask starts the latest revision of the runner family; earlier revisions stay allowed for invocations configured before a deployment.',
    );
    wildcard(
      this.#taskArns(),
      'Task ids are only known once RunTask returns; the statement is limited to tasks of this cluster.',
    );
    if (tracing) {
      this.policy.addStatements(
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
        tracing ? ' X-Ray segments and telemetry have no resource to name.' : ''
      }`,
    );
    wildcard(
      bucket.arnForObjects(this.envelopes),
      "Envelopes are named by request id under this function's own prefix.",
    );
    wildcard(
      `${fn.functionArn}:*`,
      'The runner fetches the exact version that handed off; versions are published after deployment.',
    );
    wildcard(
      bucket.arnForObjects(this.outcomes),
      "Outcome records are named by request id under this function's own prefix.",
    );
    for (const entry of ['journal', 'resume', 'claim']) {
      wildcard(
        bucket.arnForObjects(`${DEFAULT_OUTCOME_PREFIX}${fn.functionName}/*/${entry}.json`),
        `The ${entry} object of each invocation sits in the folder named by its request id, under this function's own prefix.`,
      );
    }
  }

  /** Every revision of the runner's family. */
  #revisions(): string {
    return this.#stack.formatArn({
      service: 'ecs',
      resource: 'task-definition',
      resourceName: `${this.#props.taskDefinition.family}:*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }

  /** Every task of the cluster. */
  #taskArns(): string {
    return this.#stack.formatArn({
      service: 'ecs',
      resource: 'task',
      resourceName: `${this.#props.cluster.clusterName}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }
}

/** Writing and reading objects of a bucket encrypted with a customer managed key. */
export function bucketKeyStatement(key: kms.IKey): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'UseThePayloadBucketKey',
    actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
    resources: [key.keyArn],
  });
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
