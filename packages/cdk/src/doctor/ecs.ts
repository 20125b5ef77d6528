import { ENV, isFargateSize } from '@immortal-lambda/protocol';
import { type Check, describe, fail, pass } from './check.js';
import type { Deployment } from './deployment.js';

/** The parts of DescribeTaskDefinition's answer the doctor reads. */
export interface TaskDefinitionDescription {
  taskDefinitionArn?: string;
  requiresCompatibilities?: string[];
  networkMode?: string;
  cpu?: string;
  memory?: string;
  runtimePlatform?: { cpuArchitecture?: string };
  taskRoleArn?: string;
  executionRoleArn?: string;
  containerDefinitions?: { name?: string }[];
}

/** What the ECS checks need of an ECS client. */
export interface EcsReads {
  describeClusters(cluster: string): Promise<{
    clusters?: { status?: string; capacityProviders?: string[]; clusterArn?: string }[];
    failures?: { reason?: string }[];
  }>;
  describeTaskDefinition(family: string): Promise<TaskDefinitionDescription | undefined>;
}

/** The cluster exists, is active, and has the capacity providers the function asks for. */
export async function checkCluster(ecs: EcsReads, at: Deployment): Promise<Check> {
  try {
    const answer = await ecs.describeClusters(at.cluster);
    const cluster = answer.clusters?.[0];
    if (!cluster)
      return fail(
        'cluster',
        `${at.cluster} does not exist (${answer.failures?.[0]?.reason ?? 'MISSING'}) in ${at.region}`,
        `deploy the cluster, or set ${ENV.cluster} to one that exists`,
      );
    if (cluster.status !== 'ACTIVE')
      return fail('cluster', `${at.cluster} is ${cluster.status}`, 'use an ACTIVE cluster');
    const needed = at.capacity.split(',').filter((provider) => provider === 'FARGATE_SPOT');
    const lacking = needed.filter((provider) => !cluster.capacityProviders?.includes(provider));
    if (lacking.length > 0)
      return fail(
        'cluster',
        `${at.cluster} has no ${lacking.join(', ')} capacity provider, which ${ENV.capacity} asks for`,
        'enable Fargate capacity providers on the cluster (the construct does), or use FARGATE',
      );
    return pass('cluster', `${at.cluster} ACTIVE`);
  } catch (error) {
    return fail(
      'cluster',
      `DescribeClusters failed: ${describe(error)}`,
      'run the doctor with ecs:DescribeClusters',
    );
  }
}

/**
 * The runner's task definition: Fargate, awsvpc, a size Fargate runs, the function's CPU
 * architecture (its code, native modules included, runs on the task), the runner's container and
 * a task role.
 */
export async function checkTaskDefinition(
  ecs: EcsReads,
  at: Deployment,
): Promise<{ check: Check; definition?: TaskDefinitionDescription }> {
  let definition: TaskDefinitionDescription | undefined;
  try {
    definition = await ecs.describeTaskDefinition(at.taskDefinition);
  } catch (error) {
    return {
      check: fail(
        'task definition',
        `${at.taskDefinition} cannot be described: ${describe(error)}`,
        `deploy the runner task definition, or set ${ENV.taskDefinition} to its family`,
      ),
    };
  }
  if (!definition) return { check: fail('task definition', `${at.taskDefinition} not found`, 'deploy it') };
  const problems: string[] = [];
  if (!definition.requiresCompatibilities?.includes('FARGATE'))
    problems.push('it is not compatible with FARGATE');
  if (definition.networkMode !== 'awsvpc')
    problems.push(`its network mode is ${definition.networkMode}, not awsvpc`);
  if (!isFargateSize(Number(definition.cpu), Number(definition.memory)))
    problems.push(`${definition.cpu} CPU and ${definition.memory} MiB is not a size Fargate runs`);
  const architecture = definition.runtimePlatform?.cpuArchitecture ?? 'X86_64';
  const wanted = at.architecture === 'arm64' ? 'ARM64' : 'X86_64';
  if (architecture !== wanted)
    problems.push(
      `it runs on ${architecture}, the function on ${at.architecture}: the function's code (native modules included) must run on the task`,
    );
  if (!definition.containerDefinitions?.some((container) => container.name === at.container))
    problems.push(`it has no container named ${at.container}`);
  if (!definition.taskRoleArn) problems.push('it has no task role, so the runner cannot fetch the code');
  if (problems.length > 0)
    return {
      check: fail(
        'task definition',
        `${at.taskDefinition}: ${problems.join('; ')}`,
        "redeploy with the construct, whose task definition matches the function (architecture: the function's)",
      ),
      definition,
    };
  return {
    check: pass(
      'task definition',
      `${definition.taskDefinitionArn}: FARGATE, awsvpc, ${definition.cpu} CPU / ${definition.memory} MiB, ${architecture}`,
    ),
    definition,
  };
}
