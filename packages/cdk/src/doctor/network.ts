import { ENV } from '@immortal-lambda/protocol';
import { type Check, describe, fail, pass } from './check.js';
import type { Deployment } from './deployment.js';

/** What the network check needs of EC2. */
export interface NetworkReads {
  subnets(ids: string[]): Promise<{ id: string; vpcId: string }[]>;
  /** Where each subnet's default route goes: an internet gateway, a NAT gateway, or nowhere. */
  defaultRoute(subnet: string): Promise<'internet' | 'nat' | 'none'>;
  endpoints(vpcId: string): Promise<string[]>;
}

/** The services a runner task reaches: its image, its logs, the function's code, the bucket. */
const TASK_SERVICES = ['ecr.api', 'ecr.dkr', 's3', 'logs', 'lambda'];

/**
 * Each subnet exists, and a task in it reaches what it needs: through an internet gateway with a
 * public IP, a NAT gateway, or the VPC's endpoints for ECR, S3, CloudWatch Logs and Lambda.
 */
export async function checkNetwork(ec2: NetworkReads, at: Deployment): Promise<Check> {
  try {
    const subnets = await ec2.subnets(at.subnets);
    const problems: string[] = [];
    for (const subnet of subnets) {
      const route = await ec2.defaultRoute(subnet.id);
      if (route === 'nat' || (route === 'internet' && at.assignPublicIp)) continue;
      const services = new Set(
        (await ec2.endpoints(subnet.vpcId)).map((name) => name.split('.').slice(3).join('.')),
      );
      const missing = TASK_SERVICES.filter((service) => !services.has(service));
      if (missing.length === 0) continue;
      const why =
        route === 'internet'
          ? `routes to an internet gateway, but tasks get no public IP (${ENV.assignPublicIp} is not true)`
          : 'has no route to the internet';
      problems.push(`${subnet.id} ${why}, and its VPC has no endpoint for ${missing.join(', ')}`);
    }
    if (problems.length > 0)
      return fail(
        'network',
        problems.join('; '),
        "add those VPC endpoints (the construct's networking: 'private' adds them), a NAT gateway, or use public subnets with a public IP",
      );
    return pass('network', `${subnets.length} subnet(s), each reaches ECR, S3, CloudWatch Logs and Lambda`);
  } catch (error) {
    return fail(
      'network',
      `the subnets cannot be read: ${describe(error)}`,
      `check ${ENV.subnets}, and run the doctor with ec2:Describe* permissions`,
    );
  }
}
