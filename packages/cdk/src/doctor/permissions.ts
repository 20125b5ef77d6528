import { TASK_TAGS } from '@immortal-lambda/protocol';
import { type Check, describe, fail, pass } from './check.js';
import type { Deployment } from './deployment.js';
import type { TaskDefinitionDescription } from './ecs.js';

/** One call a role must be allowed: an action on a resource, under the condition keys AWS sets. */
export interface ExpectedCall {
  action: string;
  resource: string;
  context?: Record<string, string>;
  /** What the call is for, in the check's line. */
  why: string;
}

/** IAM's SimulatePrincipalPolicy, one call at a time: whether the role may make it. */
export type Simulate = (role: string, call: ExpectedCall) => Promise<boolean>;

const PROBE = 'immortal-lambda-doctor';

/** What the wrapper calls with the function's role when it hands an invocation off. */
export function wrapperCalls(at: Deployment, definition: TaskDefinitionDescription): ExpectedCall[] {
  const ecs = (resource: string) => `arn:aws:ecs:${at.region}:${at.account}:${resource}`;
  const onCluster = { 'ecs:cluster': ecs(`cluster/${at.cluster}`) };
  const tasks = ecs(`task/${at.cluster}/*`);
  const calls: ExpectedCall[] = [
    {
      action: 'ecs:RunTask',
      resource: String(definition.taskDefinitionArn),
      context: onCluster,
      why: 'start the runner',
    },
    {
      action: 'ecs:TagResource',
      resource: tasks,
      context: { 'ecs:CreateAction': 'RunTask' },
      why: 'tag the task at launch',
    },
    { action: 'ecs:ListTasks', resource: '*', context: onCluster, why: "find a retried invocation's task" },
    { action: 'ecs:DescribeTasks', resource: tasks, context: onCluster, why: 'follow a started task' },
    {
      action: 'ecs:StopTask',
      resource: tasks,
      context: { ...onCluster, [`aws:ResourceTag/${TASK_TAGS.function}`]: at.functionName },
      why: 'stop a duplicate or an unneeded task',
    },
  ];
  for (const role of [definition.taskRoleArn, definition.executionRoleArn]) {
    if (role)
      calls.push({
        action: 'iam:PassRole',
        resource: role,
        context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' },
        why: 'give the task its roles',
      });
  }
  if (at.bucket) {
    calls.push(
      {
        action: 's3:PutObject',
        resource: object(at, `${at.payloadPrefix}${at.functionName}/${PROBE}.json`),
        why: 'write a large envelope',
      },
      {
        action: 's3:PutObject',
        resource: object(at, outcome(at, 'handed-off.json')),
        why: 'record the handoff',
      },
    );
  }
  return calls;
}

/** What the runner calls with the task role. */
export function runnerCalls(at: Deployment): ExpectedCall[] {
  const calls: ExpectedCall[] = [
    { action: 'lambda:GetFunction', resource: at.functionArn, why: "fetch the function's code" },
  ];
  if (at.bucket) {
    calls.push(
      {
        action: 's3:GetObject',
        resource: object(at, `${at.payloadPrefix}${at.functionName}/${PROBE}.json`),
        why: 'read a large envelope',
      },
      {
        action: 's3:PutObject',
        resource: object(at, outcome(at, 'attempt-1.json')),
        why: 'record the attempt',
      },
      {
        action: 's3:GetObject',
        resource: object(at, outcome(at, 'journal.json')),
        why: 'resume from the journal',
      },
      {
        action: 's3:ListBucket',
        resource: `arn:aws:s3:::${at.bucket}`,
        context: { 's3:prefix': outcome(at, 'journal.json') },
        why: 'tell a missing journal from a denied one',
      },
      {
        action: 's3:GetObject',
        resource: object(at, outcome(at, 'claim.json')),
        why: 'read which leg took a pre-warmed invocation',
      },
    );
  }
  return calls;
}

const object = (at: Deployment, key: string) => `arn:aws:s3:::${at.bucket}/${key}`;
const outcome = (at: Deployment, name: string) => `${at.outcomePrefix}${at.functionName}/${PROBE}/${name}`;

/** Every call a role must make, simulated: one line naming each call it may not make. */
export async function checkRole(
  name: string,
  role: string | undefined,
  calls: ExpectedCall[],
  simulate: Simulate,
): Promise<Check> {
  if (!role) return fail(name, 'no role to check', 'give the task definition a task role');
  try {
    const denied: ExpectedCall[] = [];
    for (const call of calls) if (!(await simulate(role, call))) denied.push(call);
    if (denied.length === 0) return pass(name, `${role} may make all ${calls.length} calls`);
    return fail(
      name,
      `${role} may not: ${denied.map((call) => `${call.action} on ${call.resource} (${call.why})`).join('; ')}`,
      'grant these (the construct does: redeploy with it), or check a permission boundary or SCP that denies them',
    );
  } catch (error) {
    return fail(
      name,
      `SimulatePrincipalPolicy failed: ${describe(error)}`,
      'run the doctor with iam:SimulatePrincipalPolicy',
    );
  }
}
