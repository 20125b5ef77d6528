import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ENV } from '@immortal-lambda/protocol';
import { Aspects, Duration, Lazy, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { invokeConfigOf } from './parts/known-destinations.js';
import { acknowledge, QualifiedFailures, sendFailuresTo, sendTo } from './parts/safety-net-functions.js';

/** The folder of a bundled safety-net handler: `dist/handlers/<name>` of this package. */
function handlerAsset(name: 'watchdog' | 'relaunch' | 'launcher'): string {
  const manifest = createRequire(import.meta.url).resolve('@immortal-lambda/cdk/package.json');
  return join(dirname(manifest), 'dist', 'handlers', name);
}

/** The cluster a safety net watches, and how long its functions keep their logs. */
export interface SafetyNetProps {
  /** The cluster whose STOPPED runner tasks it follows. */
  cluster: ecs.ICluster;
  logRetention: logs.RetentionDays;
}

/** What the safety net needs of one function it serves: its grants, limits and runner family. */
export interface ServedFunction {
  /** The function the fallback is attached to. */
  function: lambda.Function;
  /** Where the grants of a function after the first go (its own policy on the safety net's roles). */
  scope: Construct;
  /** Statements that start, find and stop its runner tasks (RunTask, TagResource, ListTasks, …). */
  runTaskStatements: iam.PolicyStatement[];
  /** Reads its envelopes and outcome records; writes records (and envelopes). */
  recordStatements: iam.PolicyStatement[];
  /** Its runner's task definition family, for the rule on its STOPPED tasks. */
  family: string;
  /**
   * A policy on the function's role that the function does not wait for: the grant to invoke the
   * relaunch function goes there (the role's default policy would make a dependency cycle).
   */
  functionPolicy: iam.Policy;
  /** Acknowledges the wildcards of its statements on a construct that holds them. */
  acknowledge: (construct: Construct) => void;
}

/**
 * Functions one safety net serves at most. The first function's grants are in its roles' default
 * policies (IAM allows 10,240 characters of inline policy per role); each later one's in a managed
 * policy of its own (6,144 characters each, 10 attached per role, Lambda's logging policy one of them).
 *
 * @example
 * ```ts
 * import { SAFETY_NET_FUNCTIONS } from '@immortal-lambda/cdk';
 * const nets = Math.ceil(functionsOnTheCluster / SAFETY_NET_FUNCTIONS);
 * ```
 */
export const SAFETY_NET_FUNCTIONS = 8;

/** The safety nets of each cluster, in order: a full one is followed by another. */
const netsOfCluster = new WeakMap<ecs.ICluster, SafetyNet[]>();

/**
 * The safety net of the runner tasks of one cluster, shared by every {@link FargateFallback} on it
 * (up to {@link SAFETY_NET_FUNCTIONS} functions each): a watchdog function on an EventBridge rule
 * for STOPPED runner tasks of its cluster and its functions' families, which relaunches tasks that
 * ended before a result; and a relaunch function as the on-failure destination of each function
 * that has none, which starts invocations that failed in Lambda on Fargate. Both read each served
 * function's placement from the function's own configuration, for the version that ran.
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
  /** What the watchdog was granted for the functions served so far, a function made later gets too. */
  #catchUp(created: lambda.Function): void {
    for (const grant of this.#grants) {
      if (grant.policy) {
        created.role?.addManagedPolicy(grant.policy);
        continue;
      }
      for (const statement of grant.statements) created.addToRolePolicy(statement);
      grant.served.acknowledge(created);
    }
  }

  /**
   * Gives a served function the launch queue: its handoffs that meet the launch rate are queued
   * there (`FARGATE_FALLBACK_LAUNCH_QUEUE`, and the grant to send to it).
   */
  launchQueueFor(fn: lambda.Function): sqs.Queue {
    const { queue } = this.#launcher ?? this.#makeLauncher();
    queue.grantSendMessages(fn);
    fn.addEnvironment(ENV.launchQueue, queue.queueUrl);
    return queue;
  }

  /** The launch queue and the launcher on it, with the grants of every function served so far. */
  #makeLauncher(): { function: lambda.Function; queue: sqs.Queue } {
    const launcher = this.#function(
      'Launcher',
      'launcher',
      `immortal-lambda: starts the runner tasks of cluster ${this.#props.cluster.node.path} that met Fargate's launch rate`,
    );
    const queue = new sqs.Queue(this, 'Launches', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Lambda's advice for a queue behind a function: at least six times the function's timeout.
      visibilityTimeout: Duration.minutes(12),
      deadLetterQueue: { queue: this.undone, maxReceiveCount: 5 },
    });
    // Ten launches a batch, two batches at once: about the RunTask rate of 20 a second.
    launcher.addEventSource(
      new SqsEventSource(queue, { batchSize: 10, maxConcurrency: 2, reportBatchItemFailures: true }),
    );
    this.#launcher = { function: launcher, queue };
    this.#catchUp(launcher);
    return this.#launcher;
  }

  /** The rule that delivers STOPPED runner tasks of its functions' families to the watchdog. */
  readonly rule: events.Rule;
  /**
   * What the safety net could not do, kept for 14 days: an event EventBridge could not deliver to
   * the watchdog, and an event or failure record the watchdog or the relaunch function still failed
   * on after Lambda's two retries (Lambda's destination record: the event, the error). Alarm on
   * its depth; a message here is an invocation that needs a look.
   */
  readonly undone: sqs.Queue;
  readonly #props: SafetyNetProps;
  readonly #served: ServedFunction[] = [];
  readonly #grants: {
    served: ServedFunction;
    statements: iam.PolicyStatement[];
    policy?: iam.ManagedPolicy;
  }[] = [];
  #relaunch: lambda.Function | undefined;
  #launcher: { function: lambda.Function; queue: sqs.Queue } | undefined;

  /**
   * The safety net of a cluster with room for one more function, made in `scope` (the first
   * fallback on it, so that a lone function's safety net keeps the logical ids it always had).
   */
  static forCluster(scope: Construct, props: SafetyNetProps): SafetyNet {
    const nets = netsOfCluster.get(props.cluster) ?? [];
    netsOfCluster.set(props.cluster, nets);
    const stack = Stack.of(scope);
    const open = nets.find((net) => Stack.of(net) === stack && net.#served.length < SAFETY_NET_FUNCTIONS);
    if (open) return open;
    const made = new SafetyNet(scope, 'SafetyNet', props);
    nets.push(made);
    return made;
  }

  constructor(scope: Construct, id: string, props: SafetyNetProps) {
    super(scope, id);
    this.#props = props;
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
      'Watchdog',
      'watchdog',
      `immortal-lambda: relaunches runner tasks of cluster ${props.cluster.node.path} that stop before a result`,
    );
    this.rule = this.#stoppedTasksRule();
  }

  /** The functions' on-failure destination (`relaunchFailures`) for those that had none. */
  get relaunch(): lambda.Function | undefined {
    return this.#relaunch;
  }

  /**
   * The launch queue and its launcher (`launchQueued`), made when the first function that takes
   * them comes: handoffs that meet Fargate's launch rate or find no capacity wait there, and the
   * launcher starts their tasks as soon as the rate allows. What it still cannot start after five
   * receives goes to {@link SafetyNet.undone}.
   */
  get launcher(): { function: lambda.Function; queue: sqs.Queue } | undefined {
    return this.#launcher;
  }

  /** The functions it serves, in the order they were added. */
  get functions(): lambda.Function[] {
    return this.#served.map((served) => served.function);
  }

  /**
   * Serves one more function: its runner family joins the rule, its grants the safety net's roles,
   * and its failures go to the relaunch function unless it has an on-failure destination.
   */
  serve(served: ServedFunction): void {
    if (this.#served.length >= SAFETY_NET_FUNCTIONS) {
      throw new Error(
        `SafetyNet ${this.node.path} serves ${SAFETY_NET_FUNCTIONS} functions already: use SafetyNet.forCluster, which starts another`,
      );
    }
    const first = this.#served.length === 0;
    this.#served.push(served);
    const fn = served.function;
    const statements = [
      ...served.runTaskStatements,
      ...served.recordStatements,
      new iam.PolicyStatement({
        // Its placement as each version was deployed, and its own destinations.
        sid: 'ReadTheFunctionSettingsAndDestinations',
        actions: ['lambda:GetFunctionConfiguration', 'lambda:GetFunctionEventInvokeConfig'],
        resources: [fn.functionArn, `${fn.functionArn}:*`],
      }),
    ];
    // Final failures go to its own on-failure destination when it has one, else to the relaunch function.
    const destination = invokeConfigOf(fn).destinations?.onFailure?.destination;
    this.#grant(served, destination ? [...statements, sendTo(destination)] : statements, first);
    if (!destination) this.#sendFailuresToRelaunch(served);
  }

  /**
   * A served function's statements on the safety net's roles: the first function's in their
   * default policies (the logical ids a lone function always had), each later one's in a managed
   * policy of its own in its fallback (inline policies share one 10,240-character budget per role;
   * statement ids are unique within a policy only).
   */
  #grant(served: ServedFunction, statements: iam.PolicyStatement[], first: boolean): void {
    const functions = [
      this.watchdog,
      ...(this.#relaunch ? [this.#relaunch] : []),
      ...(this.#launcher ? [this.#launcher.function] : []),
    ];
    if (first) {
      for (const created of functions) for (const statement of statements) created.addToRolePolicy(statement);
      for (const created of functions) served.acknowledge(created);
      this.#grants.push({ served, statements });
      return;
    }
    const policy = new iam.ManagedPolicy(served.scope, 'SafetyNetGrants', {
      roles: functions.flatMap((created) => (created.role ? [created.role] : [])),
      statements,
    });
    served.acknowledge(policy);
    this.#grants.push({ served, statements, policy });
  }

  /** The relaunch function (made on first need) as the function's on-failure destination. */
  #sendFailuresToRelaunch(served: ServedFunction): void {
    const relaunch = this.#relaunch ?? this.#makeRelaunch();
    const fn = served.function;
    // Lambda checks the role's permission when the destination is configured: grant it first.
    served.functionPolicy.addStatements(
      new iam.PolicyStatement({
        sid: 'SendFailuresToTheRelaunchFunction',
        actions: ['lambda:InvokeFunction'],
        resources: [relaunch.functionArn],
      }),
    );
    sendFailuresTo(fn, relaunch, served.functionPolicy);
    // The relaunch function skips final failures: the watchdog sends this function's to the queue.
    fn.addEnvironment(ENV.finalFailures, this.undone.queueArn);
    // Aliases and versions have invoke configs of their own: theirs, too, unless they set one.
    Aspects.of(Stack.of(fn)).add(new QualifiedFailures(fn, relaunch, served.functionPolicy));
  }

  /**
   * The relaunch function, made when the first served function without an on-failure destination
   * comes, with the grants of every function served so far.
   */
  #makeRelaunch(): lambda.Function {
    const relaunch = this.#function(
      'Relaunch',
      'relaunch',
      `immortal-lambda: starts invocations of cluster ${this.#props.cluster.node.path} that failed in Lambda on Fargate`,
    );
    this.#relaunch = relaunch;
    this.#catchUp(relaunch);
    // It starts failures and sends on the ones it does not start (a handler's own error); it may
    // send to the queue as each of the safety net's functions may.
    relaunch.addEnvironment(ENV.finalFailures, this.undone.queueArn);
    return relaunch;
  }

  /** One of the safety net's functions, from its bundled handler, watching the cluster. */
  #function(
    name: 'Watchdog' | 'Relaunch' | 'Launcher',
    asset: 'watchdog' | 'relaunch' | 'launcher',
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
        [ENV.cluster]: this.#props.cluster.clusterName,
        // The functions it serves: tasks and failure records of any other are refused; each one's
        // placement is read from its own configuration.
        [ENV.failedFunction]: Lazy.string({
          produce: () => this.#served.map((served) => served.function.functionArn).join(','),
        }),
      },
      logGroup: new logs.LogGroup(this, `${name}Logs`, {
        retention: this.#props.logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
    });
    // Invoked asynchronously (by EventBridge, or as a destination): after Lambda's two retries
    // what still failed goes to the queue instead of being dropped.
    created.configureAsyncInvoke({ retryAttempts: 2, onFailure: new SqsDestination(this.undone) });
    this.undone.grantSendMessages(created);
    acknowledge(created);
    return created;
  }

  /** The rule that delivers STOPPED runner tasks of the cluster and its functions' families to the watchdog. */
  #stoppedTasksRule(): events.Rule {
    return new events.Rule(this, 'StoppedRunnerTasks', {
      description: `STOPPED immortal-lambda runner tasks of cluster ${this.#props.cluster.node.path}`,
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          lastStatus: ['STOPPED'],
          clusterArn: [this.#props.cluster.clusterArn],
          group: Lazy.list({ produce: () => this.#served.map((served) => `family:${served.family}`) }),
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
}
