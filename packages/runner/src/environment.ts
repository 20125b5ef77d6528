import type { FunctionConfiguration } from '@aws-sdk/client-lambda';
import { ENV, type Envelope, runtimeNodeMajor } from '@immortal-lambda/protocol';

/** Variables Lambda reserves: never copied from the function's configuration into the task. */
const RESERVED =
  /^(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AWS_REGION|AWS_DEFAULT_REGION|AWS_EXECUTION_ENV|AWS_LAMBDA_.*|AWS_XRAY_.*|_HANDLER|_X_AMZN_TRACE_ID|LAMBDA_.*|TZ)$/;

export interface EnvironmentInput {
  envelope: Envelope;
  configuration: FunctionConfiguration;
  taskRoot: string;
  layersRoot: string;
  /** Folders that hold the runtime's bundled AWS SDK, searched last (like /var/runtime/node_modules). */
  runtimeModulePaths: readonly string[];
  /** The running Node's major version, for the layer path /opt/nodejs/nodeNN/node_modules. */
  nodeMajor: number;
  /** Where the handler's X-Ray and log names come from: the original invocation. */
}

/**
 * The variables the handler sees, as Lambda would set them: the function's own (without the
 * reserved ones), then Lambda's, then `FARGATE_FALLBACK_RUNNER=1`.
 *
 * @example
 * ```ts
 * import { handlerEnvironment } from '@immortal-lambda/runner';
 * Object.assign(process.env, handlerEnvironment({ envelope, configuration, taskRoot: '/var/task', layersRoot: '/opt', runtimeModulePaths: [], nodeMajor: 22 }));
 * ```
 */
export function handlerEnvironment(input: EnvironmentInput): Record<string, string> {
  const { envelope, configuration, taskRoot, layersRoot } = input;
  const vars: Record<string, string> = {};
  for (const [key, value] of Object.entries(configuration.Environment?.Variables ?? {})) {
    // AWS_LAMBDA_EXEC_WRAPPER is the one AWS_LAMBDA_ variable a function sets itself.
    if (!RESERVED.test(key) || key === 'AWS_LAMBDA_EXEC_WRAPPER') vars[key] = value;
  }
  const region =
    envelope.function.region ??
    /^arn:aws[a-z-]*:lambda:([a-z0-9-]+):/.exec(configuration.FunctionArn ?? '')?.[1];
  const runtime = configuration.Runtime ?? `nodejs${input.nodeMajor}.x`;
  // Lambda's layer path for the function's runtime: /opt/nodejs/node22/node_modules on nodejs22.x.
  const runtimeMajor = runtimeNodeMajor(runtime) ?? input.nodeMajor;
  const nodePath = [
    `${layersRoot}/nodejs/node${runtimeMajor}/node_modules`,
    `${layersRoot}/nodejs/node_modules`,
    ...input.runtimeModulePaths,
    taskRoot,
  ].join(':');
  Object.assign(vars, {
    AWS_LAMBDA_FUNCTION_NAME: envelope.function.name,
    AWS_LAMBDA_FUNCTION_VERSION: envelope.function.version,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(configuration.MemorySize ?? envelope.function.memoryLimitInMB),
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_EXECUTION_ENV: `AWS_Lambda_${runtime}`,
    _HANDLER: envelope.function.handler || configuration.Handler || '',
    LAMBDA_TASK_ROOT: taskRoot,
    LAMBDA_RUNTIME_DIR: '/var/runtime',
    NODE_PATH: nodePath,
    TZ: ':UTC',
    [ENV.runner]: '1',
  });
  const { logGroupName, logStreamName } = envelope.invocation;
  if (logGroupName) vars.AWS_LAMBDA_LOG_GROUP_NAME = logGroupName;
  if (logStreamName) vars.AWS_LAMBDA_LOG_STREAM_NAME = logStreamName;
  if (region) {
    vars.AWS_REGION = region;
    vars.AWS_DEFAULT_REGION = region;
  }
  if (envelope.invocation.traceHeader) vars._X_AMZN_TRACE_ID = envelope.invocation.traceHeader;
  return vars;
}
