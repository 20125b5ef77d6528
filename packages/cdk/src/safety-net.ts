import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ENV } from '@immortal-lambda/protocol';
import { Aspects, Duration, type IAspect, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { invokeConfigOf } from './parts/known-destinations.js';

/** The folder of a bundled safety-net handler: `dist/handlers/<name>` of this package. */
function handlerAsset(name: 'watchdog' | 'relaunch'): string {
  const manifest = createRequire(import.meta.url).resolve('@immortal-lambda/cdk/package.json');
  return join(dirname(manifest), 'dist', 'handlers', name);
}

/** What the safety net's functions need to start runner tasks as the function does. */
export interface SafetyNetProps {
  /** The function the fallback is attached to. */
  function: lambda.Function;
  /** The `FARGATE_FALLBACK_*` settings the function got: where and how to start the runner. */
  environment: Record<string, string>;
  /** Statements that start, find and stop runner tasks (RunTask, TagResource, ListTasks, …). */
  runTaskStatements: iam.PolicyStatement[];
  /** Reads the function's envelopes and outcome records; writes records (and envelopes). */
  recordStatements: iam.PolicyStatement[];
  /** Attempts at one invocation, the first included. */
  maxAttempts: number;
  /** The most memory (MiB) a relaunch after an out-of-memory kill may have. */
  maxMemoryMiB?: number;
  /** The cluster and the runner's family, for the rule on their STOPPED tasks. */
  clusterArn: string;
  family: string;
  logRetention: logs.RetentionDays;
  /**
   * A policy on the function's role that the function does not wait for: the grant to invoke the
   * relaunch function goes there (the role's default policy would make a dependency cycle).
   */
  functionPolicy: iam.Policy;
}

/**
 * The safety net of a {@link FargateFallback}: a watchdog function on an EventBridge rule for
 * STOPPED runner tasks of its cluster and family, which relaunches tasks that ended before a
 * result; and, when the function has no on-failure destination of its own, a relaunch function as
 * that destination, which starts invocations that failed in Lambda on Fargate.
 *
 * @example
 * ```ts
 * const fallback = new FargateFallback(this, 'Fallback', { function: fn });
 * fallback.safetyNet?.watchdog.addEnvironment('POWERTOOLS_LOG_LEVEL', 'DEBUG');
 * ```
 */
export class SafetyNet extends Construct {
  /** Follows STOPPED runner tasks (`taskWatchdog`). */
  readonly watchdog: lambda.Function;
  /** The function's on-failure destination (`relaunchFailures`), unless it had one already. */
  readonly relaunch: lambda.Function | undefined;
  /** The rule that delivers STOPPED runner tasks to the watchdog. */
  readonly rule: events.Rule;
  /**
   * What the safety net could not do, kept for 14 days: an event EventBridge could not deliver to
   * the watchdog, and an event or failure record the watchdog or the relaunch function still failed
   * on after Lambda's two retries (Lambda's destination record: the event, the error). Alarm on
   * its depth; a message here is an invocation that needs a look.
   */
  readonly undone: sqs.Queue;

  constructor(scope: Construct, id: string, props: SafetyNetProps) {
    super(scope, id);
    const fn = props.function;
    this.undone = new sqs.Queue(this, 'Undone', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.undone).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        "This queue is the safety net's dead-letter queue: what lands here is kept for a person to look at.",
    });
    this.watchdog = this.#function(
      props,
      'Watchdog',
      'watchdog',
      `immortal-lambda: relaunches runner tasks of ${fn.node.path} that stop before a result`,
    );
    // The failure of the last attempt goes where the function's own failures go.
    this.watchdog.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'FindTheFunctionDestinations',
        actions: ['lambda:GetFunctionEventInvokeConfig'],
        resources: [fn.functionArn, `${fn.functionArn}:*`],
      }),
    );
    this.rule = this.#stoppedTasksRule(props);
    this.relaunch = this.#failureDestination(props);
    for (const created of [this.watchdog, this.relaunch]) if (created) acknowledge(created);
  }

  /** One of the safety net's functions, from its bundled handler, with the function's placement and statements. */
  #function(
    props: SafetyNetProps,
    name: 'Watchdog' | 'Relaunch',
    asset: 'watchdog' | 'relaunch',
    description: string,
  ): lambda.Function {
    const created = new lambda.Function(this, name, {
      description,
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromAsset(handlerAsset(asset)),
      timeout: Duration.minutes(2),
      memorySize: 256,
      environment: {
        ...props.environment,
        [ENV.maxAttempts]: String(props.maxAttempts),
        // The one function it serves: tasks and failure records of any other are refused.
        [ENV.failedFunction]: props.function.functionArn,
        ...(props.maxMemoryMiB ? { [ENV.maxMemoryMiB]: String(props.maxMemoryMiB) } : {}),
      },
      logGroup: new logs.LogGroup(this, `${name}Logs`, {
        retention: props.logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
    });
    for (const statement of [...props.runTaskStatements, ...props.recordStatements]) {
      created.addToRolePolicy(statement);
    }
    // Invoked asynchronously (by EventBridge, or as a destination): after Lambda's two retries
    // what still failed goes to the queue instead of being dropped.
    created.configureAsyncInvoke({ retryAttempts: 2, onFailure: new SqsDestination(this.undone) });
    return created;
  }

  /** The rule that delivers STOPPED runner tasks of the cluster and family to the watchdog. */
  #stoppedTasksRule(props: SafetyNetProps): events.Rule {
    return new events.Rule(this, 'StoppedRunnerTasks', {
      description: `STOPPED immortal-lambda runner tasks of ${props.function.node.path}`,
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          lastStatus: ['STOPPED'],
          clusterArn: [props.clusterArn],
          group: [`family:${props.family}`],
        },
      },
      targets: [
        // EventBridge's retries and dead-letter queue cover the delivery to the watchdog only.
        new targets.LambdaFunction(this.watchdog, {
          retryAttempts: 4,
          maxEventAge: Duration.hours(2),
          deadLetterQueue: this.undone,
        }),
      ],
    });
  }

  /**
   * The relaunch function as the function's on-failure destination, when it has none (no invoke
   * config, or one without an on-failure destination: its other settings are kept); otherwise the
   * watchdog may send to the destination the function has.
   */
  #failureDestination(props: SafetyNetProps): lambda.Function | undefined {
    const fn = props.function;
    const destination = invokeConfigOf(fn).destinations?.onFailure?.destination;
    if (destination) {
      this.watchdog.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'SendToTheFunctionFailureDestination',
          actions: ['sqs:SendMessage', 'sns:Publish', 'events:PutEvents', 'lambda:InvokeFunction'],
          resources: [destination],
        }),
      );
      return undefined;
    }
    const relaunch = this.#function(
      props,
      'Relaunch',
      'relaunch',
      `immortal-lambda: starts invocations of ${fn.node.path} that failed in Lambda on Fargate`,
    );
    // Lambda checks the role's permission when the destination is configured: grant it first.
    props.functionPolicy.addStatements(
      new iam.PolicyStatement({
        sid: 'SendFailuresToTheRelaunchFunction',
        actions: ['lambda:InvokeFunction'],
        resources: [relaunch.functionArn],
      }),
    );
    sendFailuresTo(fn, relaunch, props.functionPolicy);
    // The relaunch function starts failures and sends on the ones it does not start (a handler's
    // own error); the watchdog sends final failures, which the relaunch function would skip.
    for (const sender of [this.watchdog, relaunch]) {
      sender.addEnvironment(ENV.finalFailures, this.undone.queueArn);
      this.undone.grantSendMessages(sender);
    }
    // Aliases and versions have invoke configs of their own: theirs, too, unless they set one.
    Aspects.of(Stack.of(fn)).add(new QualifiedFailures(fn, relaunch, props.functionPolicy));
    return relaunch;
  }
}

/**
 * Makes the relaunch function the on-failure destination of a function, alias or version, its
 * other invoke settings kept, once the policy that lets it invoke the relaunch function exists.
 */
function sendFailuresTo(
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
class QualifiedFailures implements IAspect {
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
function acknowledge(created: lambda.Function): void {
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
