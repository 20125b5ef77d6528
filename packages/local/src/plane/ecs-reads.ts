import { ApiError } from '../errors.js';
import type { KnownResources, TaskDefinition } from './model.js';

/**
 * DescribeClusters as ECS answers it: each cluster that exists, ACTIVE, with the Fargate capacity
 * providers; each that does not, a `MISSING` failure (not an error).
 */
export function describeClusters(
  body: Record<string, unknown>,
  known: KnownResources,
  arn: (resource: string) => string,
): unknown {
  const asked = ((body.clusters as string[] | undefined) ?? ['default']).map((ref) =>
    String(ref).replace(/^arn:.*:cluster\//, ''),
  );
  const found = asked.filter((name) => known.clusters.has(name));
  return {
    clusters: found.map((name) => ({
      clusterName: name,
      clusterArn: arn(`cluster/${name}`),
      status: 'ACTIVE',
      capacityProviders: ['FARGATE', 'FARGATE_SPOT'],
    })),
    failures: asked
      .filter((name) => !known.clusters.has(name))
      .map((name) => ({ arn: arn(`cluster/${name}`), reason: 'MISSING' })),
  };
}

/**
 * DescribeTaskDefinition as ECS answers it for a registered family (any revision asked is
 * revision 1 here); an unknown one is ECS's `ClientException`.
 */
export function describeTaskDefinition(
  family: string | undefined,
  definitions: ReadonlyMap<string, TaskDefinition>,
  arn: (resource: string) => string,
): unknown {
  const definition = family ? definitions.get(family) : undefined;
  if (!definition) throw new ApiError('ClientException', 'Unable to describe task definition.');
  return {
    taskDefinition: {
      family: definition.family,
      taskDefinitionArn: arn(`task-definition/${definition.family}:1`),
      revision: 1,
      status: 'ACTIVE',
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
      cpu: String(definition.cpu ?? 1024),
      memory: String(definition.memory ?? 2048),
      runtimePlatform: {
        cpuArchitecture: definition.cpuArchitecture ?? 'X86_64',
        operatingSystemFamily: 'LINUX',
      },
      ...(definition.taskRoleArn ? { taskRoleArn: definition.taskRoleArn } : {}),
      ...(definition.executionRoleArn ? { executionRoleArn: definition.executionRoleArn } : {}),
      containerDefinitions: [
        {
          name: definition.containerName,
          essential: true,
          environment: Object.entries(definition.environment).map(([name, value]) => ({ name, value })),
        },
      ],
    },
  };
}
