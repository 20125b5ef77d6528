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
  cluster: 'FARGATE_FALLBACK_CLUSTER',
  taskDefinition: 'FARGATE_FALLBACK_TASK_DEFINITION',
  containerName: 'FARGATE_FALLBACK_CONTAINER',
  subnets: 'FARGATE_FALLBACK_SUBNETS',
  securityGroups: 'FARGATE_FALLBACK_SECURITY_GROUPS',
  assignPublicIp: 'FARGATE_FALLBACK_ASSIGN_PUBLIC_IP',
  capacity: 'FARGATE_FALLBACK_CAPACITY',
  payloadBucket: 'FARGATE_FALLBACK_BUCKET',
  /** Key prefix of envelopes in the payload bucket (default `immortal-lambda/envelopes/`). */
  payloadPrefix: 'FARGATE_FALLBACK_PAYLOAD_PREFIX',
  marginMs: 'FARGATE_FALLBACK_MARGIN_MS',
  disabled: 'FARGATE_FALLBACK_DISABLED',
  /** `auto` (inline when it fits the override) or `s3` (always through the payload bucket). */
  envelopeTransport: 'FARGATE_FALLBACK_ENVELOPE_TRANSPORT',
  /** Hand off at most this long after the invocation started (API Gateway's 29 s). */
  maxInLambdaMs: 'FARGATE_FALLBACK_MAX_IN_LAMBDA_MS',
  /**
   * Start the runner task this long before the handoff, in standby (0: off): it gets the code and
   * imports the handler, then waits for the envelope at its resume location in the payload bucket.
   */
  prewarmMs: 'FARGATE_FALLBACK_PREWARM_MS',
  /** `false` turns the wrapper's and the runner's CloudWatch metrics (EMF lines) off; default on. */
  metrics: 'FARGATE_FALLBACK_METRICS',
  /** The metrics' namespace (default `ImmortalLambda`). */
  metricsNamespace: 'FARGATE_FALLBACK_METRICS_NAMESPACE',
  /** Dimensions beside the function name: `Name=value` pairs, comma-separated. */
  metricsDimensions: 'FARGATE_FALLBACK_METRICS_DIMENSIONS',
  /** Set on a pre-warmed task: the `s3://` URI where it waits for the envelope or the cancel marker. */
  standby: 'FARGATE_FALLBACK_STANDBY',
  /** The envelope: inline JSON or an `s3://bucket/key` URI. Set by RunTask's container override. */
  envelope: 'FARGATE_FALLBACK_ENVELOPE',
  /** `1` inside the runner, set before the handler module is imported. */
  runner: 'FARGATE_FALLBACK_RUNNER',
  /** Where the runner extracts the function's code (default `/var/task`). */
  taskRoot: 'FARGATE_FALLBACK_TASK_ROOT',
  /** Where the runner extracts the function's layers (default `/opt`). */
  layersRoot: 'FARGATE_FALLBACK_LAYERS_ROOT',
  /** What the runner's `context.getRemainingTimeInMillis()` counts down from. */
  maxRuntimeMs: 'FARGATE_FALLBACK_MAX_RUNTIME_MS',
  /** How long the runner lets the handler finish after SIGTERM (set by the task definition). */
  stopGraceMs: 'FARGATE_FALLBACK_STOP_GRACE_MS',
  /** How long one AWS call of the runner may go unanswered. */
  awsTimeoutMs: 'FARGATE_FALLBACK_AWS_TIMEOUT_MS',
  /** Attempts per AWS call of the runner, the first included. */
  awsMaxAttempts: 'FARGATE_FALLBACK_AWS_MAX_ATTEMPTS',
  /** How long the runner keeps retrying a throttled Lambda API call (a burst of runners). */
  throttleBudgetMs: 'FARGATE_FALLBACK_THROTTLE_BUDGET_MS',
  /**
   * Set by the runner on the fresh process it starts for the handler when the function's
   * `NODE_OPTIONS` or `AWS_LAMBDA_EXEC_WRAPPER` must act from process start: the code is in
   * place, only the handler is left to run.
   */
  prepared: 'FARGATE_FALLBACK_PREPARED',
  /** Which attempt at the invocation a runner task is (1 unless the watchdog relaunched it). */
  attempt: 'FARGATE_FALLBACK_ATTEMPT',
  /** Key prefix of outcome records in the payload bucket (default `immortal-lambda/outcomes/`). */
  outcomePrefix: 'FARGATE_FALLBACK_OUTCOME_PREFIX',
  /**
   * The function whose failures a `relaunchFailures` function starts on Fargate: dead-letter
   * messages do not name it (destination records do).
   */
  failedFunction: 'FARGATE_FALLBACK_FUNCTION_ARN',
  /** Attempts the watchdog makes at one invocation, the first included (default 3). */
  maxAttempts: 'FARGATE_FALLBACK_MAX_ATTEMPTS',
  /** `true` lets the runner run a function whose runtime's Node major differs from its own. */
  allowRuntimeMismatch: 'FARGATE_FALLBACK_ALLOW_RUNTIME_MISMATCH',
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
