import { DEFAULT_OUTCOME_PREFIX, ENV } from '@immortal-lambda/protocol';
import { Aspects, CfnResource, type IAspect, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct, IConstruct } from 'constructs';

/** What the held-batch aspect needs: the function, its policy, its bucket, and whether batches are held. */
export interface HeldBatchProps {
  function: lambda.Function;
  policy: iam.Policy;
  bucket: s3.IBucket;
  /** `holdSqsBatches` of the construct (default true). */
  hold: boolean;
}

/**
 * The function's SQS event source mappings, found when the app is synthesised (they may be added
 * after the construct). For each, a handed-off batch is held in its queue until the runner has
 * finished it, so the mapping must report batch item failures: one that does not fails the synth,
 * naming the fix. The role (the function's and its task's) may keep, delete and read the
 * visibility timeout of that queue's messages, and read the function's own records, where a
 * redelivery finds the invocation that holds it.
 */
export class HeldBatchSources implements IAspect {
  readonly #props: HeldBatchProps;
  readonly #queues = new Map<string, string>();
  #statement: iam.PolicyStatement | undefined;

  constructor(props: HeldBatchProps) {
    this.#props = props;
  }

  visit(node: IConstruct): void {
    if (!(node instanceof lambda.CfnEventSourceMapping)) return;
    const stack = Stack.of(node);
    const { function: fn } = this.#props;
    if (JSON.stringify(stack.resolve(node.functionName)) !== JSON.stringify(stack.resolve(fn.functionName)))
      return;
    if (!isSqsSource(stack, node.eventSourceArn)) return;
    if (!this.#props.hold) return;
    const types = (stack.resolve(node.functionResponseTypes) as string[] | undefined) ?? [];
    if (!types.includes('ReportBatchItemFailures')) {
      const problem = `${fn.node.path} hands off SQS batches and holds them in their queue until the runner has finished them, which needs the event source mapping ${node.node.path} to report batch item failures: set reportBatchItemFailures: true on the SqsEventSource (functionResponseTypes: [ReportBatchItemFailures]), or holdSqsBatches: false on the FargateFallback to let Lambda delete a handed-off batch at once`;
      node.node.addValidation({ validate: () => [problem] });
      return;
    }
    this.#allow(Token.asString(node.eventSourceArn));
  }

  #allow(queueArn: string): void {
    const key = JSON.stringify(Stack.of(this.#props.policy).resolve(queueArn));
    if (this.#queues.has(key)) return;
    this.#queues.set(key, queueArn);
    if (this.#statement) {
      this.#statement.addResources(queueArn);
      return;
    }
    const { policy, bucket, function: fn } = this.#props;
    const records = `${DEFAULT_OUTCOME_PREFIX}${fn.functionName}/*`;
    this.#statement = new iam.PolicyStatement({
      sid: 'HoldItsSqsBatches',
      actions: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
      resources: [queueArn],
    });
    policy.addStatements(
      this.#statement,
      // A redelivered message's marker, and the records of the invocation that holds it.
      new iam.PolicyStatement({
        sid: 'ReadItsRecordsForRedeliveries',
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects(records)],
      }),
      new iam.PolicyStatement({
        sid: 'ListItsRecordsForRedeliveries',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [records] } },
      }),
    );
  }
}

/** Whether a mapping's source is an SQS queue: its ARN names SQS, or it is a queue of this app. */
function isSqsSource(stack: Stack, arn: string | undefined): boolean {
  const resolved = stack.resolve(arn) as unknown;
  if (typeof resolved === 'string') return resolved.split(':')[2] === 'sqs';
  const logicalId = (resolved as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt']?.[0];
  if (logicalId === undefined) return false;
  return stack.node
    .findAll()
    .some(
      (child) =>
        child instanceof CfnResource &&
        child.cfnResourceType === 'AWS::SQS::Queue' &&
        stack.resolve(child.logicalId) === logicalId,
    );
}

/**
 * Holds the function's handed-off SQS batches (see {@link HeldBatchSources}), found among its
 * event source mappings at synth; with `hold: false`, tells the wrapper to let Lambda delete them.
 */
export function holdSqsBatches(scope: Construct, props: HeldBatchProps): void {
  Aspects.of(Stack.of(scope)).add(new HeldBatchSources(props));
  if (!props.hold) props.function.addEnvironment(ENV.holdSqsBatches, 'false');
}
