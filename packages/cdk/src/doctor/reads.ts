import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { EcsReads, TaskDefinitionDescription } from './ecs.js';
import type { NetworkReads } from './network.js';
import type { Simulate } from './permissions.js';

/** The ECS reads of the doctor, through the SDK. */
export function ecsReads(ecs: ECSClient): EcsReads {
  return {
    async describeClusters(cluster) {
      const { DescribeClustersCommand } = await import('@aws-sdk/client-ecs');
      return ecs.send(new DescribeClustersCommand({ clusters: [cluster] }));
    },
    async describeTaskDefinition(family) {
      const { DescribeTaskDefinitionCommand } = await import('@aws-sdk/client-ecs');
      const answer = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: family }));
      return answer.taskDefinition as TaskDefinitionDescription | undefined;
    },
  };
}

/** IAM's SimulatePrincipalPolicy for one call: allowed, or not. */
export function simulateWith(iam: IAMClient): Simulate {
  return async (role, call) => {
    const { SimulatePrincipalPolicyCommand } = await import('@aws-sdk/client-iam');
    const answer = await iam.send(
      new SimulatePrincipalPolicyCommand({
        PolicySourceArn: role,
        ActionNames: [call.action],
        ResourceArns: [call.resource],
        ContextEntries: Object.entries(call.context ?? {}).map(([key, value]) => ({
          ContextKeyName: key,
          ContextKeyValues: [value],
          ContextKeyType: 'string',
        })),
      }),
    );
    return answer.EvaluationResults?.[0]?.EvalDecision === 'allowed';
  };
}

/** The EC2 reads of the doctor, through the SDK. */
export function ec2Reads(ec2: EC2Client): NetworkReads {
  return {
    async subnets(ids) {
      const { DescribeSubnetsCommand } = await import('@aws-sdk/client-ec2');
      const answer = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: ids }));
      return (answer.Subnets ?? []).map((subnet) => ({
        id: String(subnet.SubnetId),
        vpcId: String(subnet.VpcId),
      }));
    },
    async defaultRoute(subnet) {
      const { DescribeRouteTablesCommand } = await import('@aws-sdk/client-ec2');
      const answer = await ec2.send(
        new DescribeRouteTablesCommand({ Filters: [{ Name: 'association.subnet-id', Values: [subnet] }] }),
      );
      const route = answer.RouteTables?.[0]?.Routes?.find(
        (each) => each.DestinationCidrBlock === '0.0.0.0/0',
      );
      if (route?.NatGatewayId) return 'nat';
      if (route?.GatewayId?.startsWith('igw-')) return 'internet';
      return 'none';
    },
    async endpoints(vpcId) {
      const { DescribeVpcEndpointsCommand } = await import('@aws-sdk/client-ec2');
      const answer = await ec2.send(
        new DescribeVpcEndpointsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
      );
      return (answer.VpcEndpoints ?? []).map((endpoint) => String(endpoint.ServiceName));
    },
  };
}
