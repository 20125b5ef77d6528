import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { FargateFallback } from '../src/index.js';
import { SAFETY_NET_FUNCTIONS } from '../src/safety-net.js';

/** A construct's CloudFormation resource; a missing construct fails the test here. */
const childOf = (construct: IConstruct | undefined) => {
  if (!construct) throw new Error('the construct is missing');
  return construct.node.defaultChild;
};

/** A stack with `count` functions, the later ones on the first fallback's VPC, cluster and bucket. */
function sharedCluster(count: number, onFailure: (index: number) => boolean = () => false) {
  const stack = new Stack(new App(), 'Shared', { env: { account: '123456789012', region: 'eu-west-1' } });
  const fallbacks: FargateFallback[] = [];
  for (let index = 0; index < count; index++) {
    const fn = new lambda.Function(stack, `Job${index}`, {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => 1;'),
      timeout: Duration.minutes(15),
    });
    if (onFailure(index))
      fn.configureAsyncInvoke({ onFailure: new SqsDestination(new sqs.Queue(stack, `Own${index}`)) });
    const first = fallbacks[0];
    fallbacks.push(
      new FargateFallback(stack, `Fallback${index}`, {
        function: fn,
        ...(first ? { vpc: first.vpc, cluster: first.cluster, bucket: first.bucket } : {}),
      }),
    );
  }
  return { stack, fallbacks, template: Template.fromStack(stack) };
}

/** The policies of a type attached to a role, each as the length of its document (IAM counts it without whitespace). */
function policySizes(
  template: Template,
  type: 'AWS::IAM::Policy' | 'AWS::IAM::ManagedPolicy',
  roleRef: unknown,
) {
  return Object.values(template.findResources(type))
    .filter((policy) =>
      ((policy.Properties.Roles ?? []) as unknown[]).some(
        (role) => JSON.stringify(role) === JSON.stringify(roleRef),
      ),
    )
    .map((policy) => JSON.stringify(policy.Properties.PolicyDocument).length);
}

describe('one safety net per cluster', () => {
  it('serves every fallback on a cluster with one watchdog, one relaunch function, one launcher and one rule', () => {
    // Act
    const { stack, fallbacks, template } = sharedCluster(3);

    // Assess
    const [first, second, third] = fallbacks;
    expect(second?.safetyNet).toBe(first?.safetyNet);
    expect(third?.safetyNet).toBe(first?.safetyNet);
    template.resourceCountIs('AWS::Events::Rule', 1);
    // Three functions of the user, a watchdog, a relaunch function and a launcher (and CDK's
    // bucket-emptying helper), and one launch queue each function sends to.
    const functions = Object.keys(template.findResources('AWS::Lambda::Function'));
    expect(functions.filter((id) => !id.startsWith('CustomS3AutoDelete'))).toHaveLength(6);
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    const queueUrl = stack.resolve(first?.safetyNet?.launcher?.queue.queueUrl);
    for (const fallback of fallbacks) {
      const variables = stack.resolve(
        (childOf(fallback.safetyNet?.functions[fallbacks.indexOf(fallback)]) as lambda.CfnFunction)
          .environment,
      ).variables;
      expect(variables.FARGATE_FALLBACK_LAUNCH_QUEUE).toEqual(queueUrl);
    }
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        detail: {
          group: fallbacks.map((fallback) => `family:${stack.resolve(fallback.taskDefinition.family)}`),
        },
      },
    });
    const watchdog = stack.resolve(
      (childOf(first?.safetyNet?.watchdog) as lambda.CfnFunction).environment,
    ).variables;
    expect(watchdog.FARGATE_FALLBACK_FUNCTION_ARN).toEqual({
      'Fn::Join': [
        '',
        expect.arrayContaining(fallbacks.map((f) => stack.resolve(f.safetyNet?.functions[0]?.functionArn))),
      ],
    });
    // Every function's failures go to the one relaunch function.
    const relaunch = stack.resolve(first?.safetyNet?.relaunch?.functionArn);
    const configs = Object.values(template.findResources('AWS::Lambda::EventInvokeConfig')).filter(
      (config) =>
        JSON.stringify(config.Properties.DestinationConfig?.OnFailure?.Destination) ===
        JSON.stringify(relaunch),
    );
    expect(configs).toHaveLength(3);
  });

  it("grants each later function's calls in a policy of its own on each of the safety net's roles", () => {
    // Act
    const { stack, fallbacks, template } = sharedCluster(2);

    // Assess
    const net = fallbacks[0]?.safetyNet;
    const roles = [net?.watchdog.role, net?.relaunch?.role, net?.launcher?.function.role].map((role) =>
      stack.resolve((childOf(role) as unknown as { ref: string }).ref),
    );
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      Roles: Match.arrayEquals(roles),
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'ecs:RunTask' }),
          Match.objectLike({
            Sid: 'ReadTheFunctionSettingsAndDestinations',
            Resource: [stack.resolve(fallbacks[1]?.safetyNet?.functions[1]?.functionArn), Match.anyValue()],
          }),
        ]),
      },
    });
  });

  it(`starts another safety net after ${SAFETY_NET_FUNCTIONS} functions, each net's roles within IAM's policy limits`, () => {
    // Act
    const { stack, fallbacks, template } = sharedCluster(SAFETY_NET_FUNCTIONS + 1);

    // Assess
    const nets = new Set(fallbacks.map((fallback) => fallback.safetyNet));
    expect(nets.size).toBe(2);
    expect(fallbacks.at(-1)?.safetyNet).not.toBe(fallbacks[0]?.safetyNet);
    template.resourceCountIs('AWS::Events::Rule', 2);
    for (const net of nets) {
      for (const role of [net?.watchdog.role, net?.relaunch?.role]) {
        const ref = stack.resolve((childOf(role) as unknown as { ref: string }).ref);
        // 10,240 characters of inline policy; 10 managed policies (Lambda's logging one among them), 6,144 each.
        const inline = policySizes(template, 'AWS::IAM::Policy', ref);
        const managed = policySizes(template, 'AWS::IAM::ManagedPolicy', ref);
        expect(inline.reduce((sum, size) => sum + size, 0)).toBeLessThan(10_240);
        expect(managed.length + 1).toBeLessThanOrEqual(10);
        for (const size of managed) expect(size).toBeLessThan(6_144);
      }
    }
  });

  it('makes the relaunch function only for functions without a destination, with the grants of those before', () => {
    // Act: the first function has its own on-failure destination, the second none
    const { stack, fallbacks, template } = sharedCluster(2, (index) => index === 0);

    // Assess
    const net = fallbacks[0]?.safetyNet;
    expect(net?.relaunch).toBeDefined();
    const fnEnvironment = (index: number) =>
      stack.resolve((childOf(net?.functions[index]) as lambda.CfnFunction).environment).variables;
    // Final failures of the function with a destination go there; the other's to the safety net's queue.
    expect(fnEnvironment(0).FARGATE_FALLBACK_FINAL_FAILURES).toBeUndefined();
    expect(fnEnvironment(1).FARGATE_FALLBACK_FINAL_FAILURES).toEqual(stack.resolve(net?.undone.queueArn));
    // The first function's grants reached the relaunch function made after it.
    const relaunchRole = stack.resolve((childOf(net?.relaunch?.role) as unknown as { ref: string }).ref);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [relaunchRole],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'ReadTheFunctionSettingsAndDestinations',
            Resource: [stack.resolve(net?.functions[0]?.functionArn), Match.anyValue()],
          }),
        ]),
      },
    });
  });
});
