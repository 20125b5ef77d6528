import { CfnResource, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as lambda from 'aws-cdk-lib/aws-lambda';

/** The interface endpoint each kind of destination needs from isolated subnets (S3 has its gateway, Lambda its endpoint). */
const ENDPOINTS: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
  sqs: ec2.InterfaceVpcEndpointAwsService.SQS,
  sns: ec2.InterfaceVpcEndpointAwsService.SNS,
  events: ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
};

const RESOURCE_SERVICES: Record<string, string> = {
  'AWS::SQS::Queue': 'sqs',
  'AWS::SNS::Topic': 'sns',
  'AWS::Events::EventBus': 'events',
};

/**
 * The interface endpoints the runner needs to send outcomes to the function's async-invocation
 * destinations from isolated subnets: SQS, SNS or EventBridge, read from the function's invoke
 * config (an ARN, or a queue, topic or bus of the same app).
 *
 * @example
 * ```ts
 * const endpoints = destinationEndpoints(fn); // [InterfaceVpcEndpointAwsService.SQS] for an SQS on-success destination
 * ```
 */
export function destinationEndpoints(fn: lambda.IFunction): ec2.InterfaceVpcEndpointAwsService[] {
  const config = fn.node.tryFindChild('EventInvokeConfig')?.node.defaultChild as
    | lambda.CfnEventInvokeConfig
    | undefined;
  if (!config) return [];
  const stack = Stack.of(fn);
  const destinations = stack.resolve(config.destinationConfig) as
    | { onSuccess?: { destination?: unknown }; onFailure?: { destination?: unknown } }
    | undefined;
  const services = new Set<string>();
  for (const destination of [destinations?.onSuccess?.destination, destinations?.onFailure?.destination]) {
    const service = serviceOf(stack, destination);
    if (service) services.add(service);
  }
  return [...services].flatMap((service) => (ENDPOINTS[service] ? [ENDPOINTS[service]] : []));
}

/** The service of a destination: from its ARN, or from the type of the resource it refers to. */
function serviceOf(stack: Stack, destination: unknown): string | undefined {
  if (typeof destination === 'string' && !Token.isUnresolved(destination)) {
    return /^arn:aws[a-z-]*:([a-z0-9-]+):/.exec(destination)?.[1];
  }
  const reference = destination as { 'Fn::GetAtt'?: [string, string]; Ref?: string } | undefined;
  const logicalId = reference?.['Fn::GetAtt']?.[0] ?? reference?.Ref;
  if (!logicalId) return undefined;
  const resource = stack.node
    .findAll()
    .find(
      (child): child is CfnResource =>
        child instanceof CfnResource && stack.resolve(child.logicalId) === logicalId,
    );
  return resource ? RESOURCE_SERVICES[resource.cfnResourceType] : undefined;
}

/** Each endpoint service once: one given by the user and needed by a destination too is made once. */
export function uniqueEndpoints(
  services: ec2.InterfaceVpcEndpointAwsService[],
): ec2.InterfaceVpcEndpointAwsService[] {
  return services.filter(
    (service, index) => services.findIndex((other) => other.name === service.name) === index,
  );
}
