/**
 * `FARGATE_FALLBACK_` and the given suffix, typed as the literal it makes. Written this way, the
 * prefix is in a wrapped handler's bundle once rather than once per name.
 */
const variable = <const Suffix extends string>(suffix: Suffix) => `FARGATE_FALLBACK_${suffix}` as const;

/**
 * The environment variables that connect the wrapper, the runner, the task definition and the
 * local control plane. Every package reads these names from here and spells none itself.
 *
 * @example
 * ```ts
 * import { ENV } from '@immortal-lambda/protocol';
 * const inRunner = process.env[ENV.runner] === '1';
 * ```
 */
export const ENV = {
  cluster: variable('CLUSTER'),
  taskDefinition: variable('TASK_DEFINITION'),
  containerName: variable('CONTAINER'),
  subnets: variable('SUBNETS'),
  securityGroups: variable('SECURITY_GROUPS'),
  assignPublicIp: variable('ASSIGN_PUBLIC_IP'),
  capacity: variable('CAPACITY'),
  payloadBucket: variable('BUCKET'),
  /** Key prefix of envelopes in the payload bucket (default `immortal-lambda/envelopes/`). */
  payloadPrefix: variable('PAYLOAD_PREFIX'),
  marginMs: variable('MARGIN_MS'),
  disabled: variable('DISABLED'),
  /** `auto` (inline when it fits the override) or `s3` (always through the payload bucket). */
  envelopeTransport: variable('ENVELOPE_TRANSPORT'),
  /** Hand off at most this long after the invocation started (API Gateway's 29 s). */
  maxInLambdaMs: variable('MAX_IN_LAMBDA_MS'),
  /**
   * Start the runner task this long before the handoff, in standby (0: off): it gets the code and
   * imports the handler, then waits for the envelope at its resume location in the payload bucket.
   */
  prewarmMs: variable('PREWARM_MS'),
  /**
   * Load the handoff's code and AWS SDK clients this long before the first handoff of a sandbox
   * (default 3000; 0: at the handoff), so that the handoff itself makes only its calls.
   */
  loadAheadMs: variable('LOAD_AHEAD_MS'),
  /**
   * The SQS queue (its URL) of handoffs that met Fargate's launch rate: the wrapper queues the
   * task's start there, and the launcher starts it as soon as the rate allows.
   */
  launchQueue: variable('LAUNCH_QUEUE'),
  /**
   * `false` answers a handed-off SQS batch with the receipt (Lambda deletes it); by default it is
   * held: answered as failed, kept invisible until the runner deletes what it finished.
   */
  holdSqsBatches: variable('HOLD_SQS_BATCHES'),
  /**
   * `true` keeps a Kinesis or DynamoDB shard in order across a handoff: the shard does not move
   * past a handed-off batch until the runner's outcome is recorded. Default `false`.
   */
  ordered: variable('ORDERED'),
  /** `false` turns the wrapper's and the runner's CloudWatch metrics (EMF lines) off; default on. */
  metrics: variable('METRICS'),
  /** The metrics' namespace (default `ImmortalLambda`). */
  metricsNamespace: variable('METRICS_NAMESPACE'),
  /** Dimensions beside the function name: `Name=value` pairs, comma-separated. */
  metricsDimensions: variable('METRICS_DIMENSIONS'),
  /** Set on a pre-warmed task: the `s3://` URI where it waits for the envelope or the cancel marker. */
  standby: variable('STANDBY'),
  /** Set on a pre-warmed task: when the wrapper plans to hand off (epoch ms); it polls slowly until then. */
  standbyGoAt: variable('STANDBY_GO_AT'),
  /** The envelope: inline JSON or an `s3://bucket/key` URI. Set by RunTask's container override. */
  envelope: variable('ENVELOPE'),
  /** `1` inside the runner, set before the handler module is imported. */
  runner: variable('RUNNER'),
  /** Where the runner extracts the function's code (default `/var/task`). */
  taskRoot: variable('TASK_ROOT'),
  /** Where the runner extracts the function's layers (default `/opt`). */
  layersRoot: variable('LAYERS_ROOT'),
  /** What the runner's `context.getRemainingTimeInMillis()` counts down from. */
  maxRuntimeMs: variable('MAX_RUNTIME_MS'),
  /** How long the runner lets the handler finish after SIGTERM (set by the task definition). */
  stopGraceMs: variable('STOP_GRACE_MS'),
  /** How long one AWS call of the runner may go unanswered. */
  awsTimeoutMs: variable('AWS_TIMEOUT_MS'),
  /** Attempts per AWS call of the runner, the first included. */
  awsMaxAttempts: variable('AWS_MAX_ATTEMPTS'),
  /** How long the runner keeps retrying a throttled Lambda API call (a burst of runners). */
  throttleBudgetMs: variable('THROTTLE_BUDGET_MS'),
  /**
   * Set by the runner on the fresh process it starts for the handler when the function's
   * `NODE_OPTIONS` or `AWS_LAMBDA_EXEC_WRAPPER` must act from process start: the code is in
   * place, only the handler is left to run.
   */
  prepared: variable('PREPARED'),
  /** Which attempt at the invocation a runner task is (1 unless the watchdog relaunched it). */
  attempt: variable('ATTEMPT'),
  /** Key prefix of outcome records in the payload bucket (default `immortal-lambda/outcomes/`). */
  outcomePrefix: variable('OUTCOME_PREFIX'),
  /**
   * The function whose failures a `relaunchFailures` function starts on Fargate: dead-letter
   * messages do not name it (destination records do).
   */
  failedFunction: variable('FUNCTION_ARN'),
  /**
   * Where the watchdog sends an invocation's final failure instead of the function's on-failure
   * destination (an SQS queue, SNS topic, event bus or function ARN): set by the construct when
   * that destination is its own relaunch function, which starts failed invocations and so skips
   * final failures.
   */
  finalFailures: variable('FINAL_FAILURES'),
  /**
   * The most memory (MiB) the watchdog may give a relaunch of a task that ran out of memory: each
   * such relaunch doubles the task's memory up to this. Unset or at the task's memory: an
   * out-of-memory end is the invocation's result, never the same death again.
   */
  maxMemoryMiB: variable('MAX_MEMORY_MIB'),
  /**
   * The function's async destinations as its deployment configures them, by qualifier (`$LATEST`
   * for the function itself, else an alias name), as JSON: `{"$LATEST":{"onFailure":"arn:…"}}`.
   * Set by the construct; the runner and the watchdog use them instead of asking Lambda
   * (GetFunctionEventInvokeConfig) for the qualifiers it names.
   */
  destinations: variable('DESTINATIONS'),
  /** Attempts the watchdog makes at one invocation, the first included (default 3). */
  maxAttempts: variable('MAX_ATTEMPTS'),
  /**
   * A container image function's handler, as its image's CMD names it (`index.handler`): set by
   * the task definition, since GetFunction returns an image's CMD only when the function overrides it.
   */
  imageHandler: variable('IMAGE_HANDLER'),
  /** `true` lets the runner run a function whose runtime's Node major differs from its own. */
  allowRuntimeMismatch: variable('ALLOW_RUNTIME_MISMATCH'),
} as const;

/**
 * One of the `FARGATE_FALLBACK_*` variable names.
 *
 * @example
 * ```ts
 * import { ENV, type EnvName } from '@immortal-lambda/protocol';
 * const name: EnvName = ENV.cluster;
 * ```
 */
export type EnvName = (typeof ENV)[keyof typeof ENV];
