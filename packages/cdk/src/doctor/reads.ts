import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { EcsReads, TaskDefinitionDescription } from './ecs.js';
import type { NetworkReads } from './network.js';
import type { Simulate } from './permissions.js';
import type { RuleDescription, SafetyNetReads } from './safety-net.js';

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

/** The EventBridge, Lambda and S3 reads of the safety-net and bucket checks, through the SDK. */
export function safetyNetReads(clients: {
  events: EventBridgeClient;
  lambda: LambdaClient;
  s3: S3Client;
}): SafetyNetReads {
  return {
    async rules() {
      const { ListRulesCommand } = await import('@aws-sdk/client-eventbridge');
      const rules: RuleDescription[] = [];
      let token: string | undefined;
      do {
        const page = await clients.events.send(
          new ListRulesCommand({ ...(token ? { NextToken: token } : {}) }),
        );
        for (const rule of page.Rules ?? []) {
          rules.push({ name: String(rule.Name), eventPattern: rule.EventPattern, state: rule.State });
        }
        token = page.NextToken;
      } while (token);
      return rules;
    },
    async targets(rule) {
      const { ListTargetsByRuleCommand } = await import('@aws-sdk/client-eventbridge');
      const answer = await clients.events.send(new ListTargetsByRuleCommand({ Rule: rule }));
      return (answer.Targets ?? []).map((target) => String(target.Arn));
    },
    async variables(functionArn) {
      const { GetFunctionConfigurationCommand } = await import('@aws-sdk/client-lambda');
      const answer = await clients.lambda.send(
        new GetFunctionConfigurationCommand({ FunctionName: functionArn }),
      );
      return answer.Environment?.Variables ?? {};
    },
    async lifecycle(bucket) {
      const { GetBucketLifecycleConfigurationCommand } = await import('@aws-sdk/client-s3');
      try {
        const answer = await clients.s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }));
        return (answer.Rules ?? []).map((rule) => ({
          prefix: rule.Filter?.Prefix ?? rule.Filter?.And?.Prefix ?? rule.Prefix ?? '',
          enabled: rule.Status === 'Enabled',
          expirationDays: rule.Expiration?.Days,
        }));
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchLifecycleConfiguration') return undefined;
        throw error;
      }
    },
  };
}
