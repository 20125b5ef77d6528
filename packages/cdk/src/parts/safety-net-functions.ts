import { type IAspect, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';
import { invokeConfigOf } from './known-destinations.js';

/** The statement that lets the safety net send to a function's own on-failure destination. */
export function sendTo(destination: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'SendToTheFunctionFailureDestination',
    actions: ['sqs:SendMessage', 'sns:Publish', 'events:PutEvents', 'lambda:InvokeFunction'],
    resources: [destination],
  });
}

/**
 * Makes the relaunch function the on-failure destination of a function, alias or version, its
 * other invoke settings kept, once the policy that lets it invoke the relaunch function exists.
 */
export function sendFailuresTo(
  target: lambda.Function | lambda.Alias | lambda.Version,
  relaunch: lambda.IFunction,
  dependency: iam.Policy,
): void {
  const { config, destinations } = invokeConfigOf(target);
  const onFailure = { destination: relaunch.functionArn };
  if (config) config.destinationConfig = { ...destinations, onFailure };
  else target.configureAsyncInvoke({ onFailure: { bind: () => onFailure } });
  target.node.findChild('EventInvokeConfig').node.addDependency(dependency);
}

/**
 * Makes the relaunch function the on-failure destination of each alias and version of the
 * function that has none: Lambda applies the invoke config of the qualifier invoked, so an
 * invocation through an alias would otherwise have no destination. Runs at synth, when every
 * alias of the app exists.
 */
export class QualifiedFailures implements IAspect {
  constructor(
    private readonly fn: lambda.IFunction,
    private readonly relaunch: lambda.IFunction,
    private readonly dependency: iam.Policy,
  ) {}

  visit(node: IConstruct): void {
    if (!(node instanceof lambda.Alias || node instanceof lambda.Version) || node.lambda !== this.fn) return;
    if (invokeConfigOf(node).destinations?.onFailure) return;
    sendFailuresTo(node, this.relaunch, this.dependency);
  }
}

/** The managed logging policy and the shared statements' wildcards, acknowledged with their reasons. */
export function acknowledge(created: lambda.Function): void {
  Validations.of(created).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason: 'AWSLambdaBasicExecutionRole is the managed policy Lambda documents for writing logs.',
  });
  Validations.of(created).acknowledge({
    id: 'AwsSolutions-IAM5',
    reason:
      'The safety net starts, finds and stops runner tasks of one cluster and reads its function records by prefix, with the statements of the function itself (each wildcard acknowledged there with its reason).',
  });
}
