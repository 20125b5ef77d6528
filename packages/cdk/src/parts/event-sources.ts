import { DEFAULT_OUTCOME_PREFIX, ENV } from '@immortal-lambda/protocol';
import { Aspects, CfnResource, type IAspect, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct, IConstruct } from 'constructs';

/** What the held-batch aspect needs: the function, its policy, its bucket, and what is held. */
export interface HeldBatchProps {
  function: lambda.Function;
  policy: iam.Policy;
  bucket: s3.IBucket;
  /** `holdSqsBatches` of the construct (default true). */
  hold: boolean;
  /** `ordered` of the construct (default false): stream shards kept in order across a handoff. */
  ordered: boolean;
}

/**
 * The function's event source mappings, found when the app is synthesised (they may be added
 * after the construct). An SQS mapping's handed-off batch is held in its queue until the runner
 * has finished it; with `ordered`, a stream mapping's shard waits for a handed-off batch. Either
 * needs the mapping to report batch item failures, and a stream also no bisecting and no limit on
 * retries or record age: a mapping that does not fails the synth, naming the fix. The role (the
 * function's and its task's) may keep, delete and read the visibility timeout of the queues'
 * messages, and read the function's own records, where a redelivery or a retry finds the
 * invocation that holds its batch.
 */
export class HeldBatchSources implements IAspect {
  readonly #props: HeldBatchProps;
  readonly #queues = new Map<string, string>();
  #statement: iam.PolicyStatement | undefined;
  #readsRecords = false;

  constructor(props: HeldBatchProps) {
    this.#props = props;
  }

  visit(node: IConstruct): void {
    if (!(node instanceof lambda.CfnEventSourceMapping)) return;
    const stack = Stack.of(node);
    const { function: fn } = this.#props;
    if (JSON.stringify(stack.resolve(node.functionName)) !== JSON.stringify(stack.resolve(fn.functionName)))
      return;
    const kind = sourceKind(stack, node.eventSourceArn);
    if (kind === 'sqs' && this.#props.hold) this.#holdQueue(node, stack);
    if (kind === 'stream' && this.#props.ordered) this.#orderStream(node, stack);
  }

  #holdQueue(node: lambda.CfnEventSourceMapping, stack: Stack): void {
    const types = (stack.resolve(node.functionResponseTypes) as string[] | undefined) ?? [];
    if (!types.includes('ReportBatchItemFailures')) {
      this.#refuse(
        node,
        `${this.#props.function.node.path} hands off SQS batches and holds them in their queue until the runner has finished them, which needs the event source mapping ${node.node.path} to report batch item failures: set reportBatchItemFailures: true on the SqsEventSource (functionResponseTypes: [ReportBatchItemFailures]), or holdSqsBatches: false on the FargateFallback to let Lambda delete a handed-off batch at once`,
      );
      return;
    }
    this.#allow(Token.asString(node.eventSourceArn));
    this.#readRecords();
  }

  #orderStream(node: lambda.CfnEventSourceMapping, stack: Stack): void {
    const types = (stack.resolve(node.functionResponseTypes) as string[] | undefined) ?? [];
    const unlimited = (value: unknown) => value === undefined || value === -1;
    const problems = [
      ...(types.includes('ReportBatchItemFailures') ? [] : ['reportBatchItemFailures: true']),
      ...(stack.resolve(node.bisectBatchOnFunctionError) === true ? ['bisectBatchOnError: false'] : []),
      ...(unlimited(stack.resolve(node.maximumRetryAttempts)) ? [] : ['retryAttempts: -1 (or unset)']),
      ...(unlimited(stack.resolve(node.maximumRecordAgeInSeconds)) ? [] : ['maxRecordAge unset (no limit)']),
    ];
    if (problems.length > 0) {
      this.#refuse(
        node,
        `${this.#props.function.node.path} keeps its streams in order across a handoff (ordered), which needs the event source mapping ${node.node.path} to retry a handed-off batch until the runner has finished it: set ${problems.join(', ')} on the event source, or leave ordered off on the FargateFallback`,
      );
      return;
    }
    this.#readRecords();
  }

  /** A synth error on the mapping, naming the fix. */
  #refuse(node: lambda.CfnEventSourceMapping, problem: string): void {
    node.node.addValidation({ validate: () => [problem] });
  }

  #allow(queueArn: string): void {
    const key = JSON.stringify(Stack.of(this.#props.policy).resolve(queueArn));
    if (this.#queues.has(key)) return;
    this.#queues.set(key, queueArn);
    if (this.#statement) {
      this.#statement.addResources(queueArn);
      return;
    }
    this.#statement = new iam.PolicyStatement({
      sid: 'HoldItsSqsBatches',
      actions: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
      resources: [queueArn],
    });
    this.#props.policy.addStatements(this.#statement);
  }

  /** A redelivered message's marker or a retried batch's, and the records of the invocation that holds it. */
  #readRecords(): void {
    if (this.#readsRecords) return;
    this.#readsRecords = true;
    const { policy, bucket, function: fn } = this.#props;
    const records = `${DEFAULT_OUTCOME_PREFIX}${fn.functionName}/*`;
    policy.addStatements(
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

/** The resource types whose ARN (or stream ARN) a mapping reads, by kind. */
const SOURCE_TYPES: Record<string, 'sqs' | 'stream'> = {
  'AWS::SQS::Queue': 'sqs',
  'AWS::Kinesis::Stream': 'stream',
  'AWS::DynamoDB::Table': 'stream',
  'AWS::DynamoDB::GlobalTable': 'stream',
};

/** A mapping's source: an SQS queue or a Kinesis or DynamoDB stream, by its ARN or its resource in this app. */
function sourceKind(stack: Stack, arn: string | undefined): 'sqs' | 'stream' | undefined {
  const resolved = stack.resolve(arn) as unknown;
  if (typeof resolved === 'string') {
    const service = resolved.split(':')[2];
    return service === 'sqs' ? 'sqs' : service === 'kinesis' || service === 'dynamodb' ? 'stream' : undefined;
  }
  const logicalId = (resolved as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt']?.[0];
  if (logicalId === undefined) return undefined;
  const resource = stack.node
    .findAll()
    .find((child) => child instanceof CfnResource && stack.resolve(child.logicalId) === logicalId);
  return resource instanceof CfnResource ? SOURCE_TYPES[resource.cfnResourceType] : undefined;
}

/**
 * Holds the function's handed-off SQS batches, and with `ordered` its stream batches (see
 * {@link HeldBatchSources}), found among its event source mappings at synth; tells the wrapper
 * what it holds where it differs from the defaults.
 */
export function holdSqsBatches(scope: Construct, props: HeldBatchProps): void {
  Aspects.of(Stack.of(scope)).add(new HeldBatchSources(props));
  if (!props.hold) props.function.addEnvironment(ENV.holdSqsBatches, 'false');
  if (props.ordered) props.function.addEnvironment(ENV.ordered, 'true');
}
