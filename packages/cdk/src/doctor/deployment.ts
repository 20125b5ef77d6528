import {
  DEFAULT_CONTAINER_NAME,
  DEFAULT_MARGIN_MS,
  DEFAULT_OUTCOME_PREFIX,
  DEFAULT_PAYLOAD_PREFIX,
  ENV,
  runtimeNodeMajor,
} from '@immortal-lambda/protocol';
import { type Check, fail, pass } from './check.js';

/** What the function's configuration says of its fallback: the settings the other checks use. */
export interface Deployment {
  functionName: string;
  functionArn: string;
  region: string;
  account: string;
  role: string;
  architecture: 'x86_64' | 'arm64';
  cluster: string;
  taskDefinition: string;
  container: string;
  subnets: string[];
  assignPublicIp: boolean;
  capacity: string;
  bucket: string | undefined;
  payloadPrefix: string;
  outcomePrefix: string;
}

/** The parts of GetFunction's `Configuration` the doctor reads. */
export interface FunctionConfiguration {
  FunctionName?: string;
  FunctionArn?: string;
  Role?: string;
  Runtime?: string;
  PackageType?: string;
  Timeout?: number;
  Architectures?: string[];
  Environment?: { Variables?: Record<string, string>; Error?: { Message?: string } };
}

/**
 * The function's own settings: a Node runtime Lambda and the runner both run, a timeout above the
 * margin, and the fallback's variables set (what the construct sets).
 */
export function checkFunction(config: FunctionConfiguration): { checks: Check[]; deployment?: Deployment } {
  const name = String(config.FunctionName);
  const env = config.Environment?.Variables ?? {};
  const checks: Check[] = [];
  if (config.Environment?.Error) {
    return {
      checks: [
        fail(
          'function settings',
          `Lambda did not return ${name}'s environment: ${config.Environment.Error.Message}`,
          "run the doctor with credentials that may kms:Decrypt the function's environment key",
        ),
      ],
    };
  }
  const major = runtimeNodeMajor(config.Runtime);
  if (config.PackageType === 'Image')
    checks.push(pass('runtime', 'a container image function (its image sets the runtime)'));
  else if (major !== undefined && major >= 20) checks.push(pass('runtime', String(config.Runtime)));
  else
    checks.push(
      fail(
        'runtime',
        `${config.Runtime} is not a Node.js runtime the runner runs`,
        'use nodejs20.x or later',
      ),
    );
  const marginMs = Number(env[ENV.marginMs] ?? DEFAULT_MARGIN_MS);
  const timeoutMs = (config.Timeout ?? 3) * 1000;
  checks.push(
    timeoutMs > marginMs
      ? pass('timeout', `${timeoutMs / 1000} s, handed off ${marginMs / 1000} s before it`)
      : fail(
          'timeout',
          `${timeoutMs / 1000} s is not above the ${marginMs / 1000} s margin: every invocation is handed off at once`,
          `raise the function's timeout above the margin, or lower ${ENV.marginMs}`,
        ),
  );
  const missing = [ENV.cluster, ENV.taskDefinition, ENV.subnets].filter((variable) => !env[variable]?.trim());
  if (missing.length > 0) {
    checks.push(
      fail(
        'fallback settings',
        `${missing.join(', ')} not set on ${name}`,
        'attach FargateFallback to the function (it sets them), or set them to the cluster, task definition family and subnets',
      ),
    );
    return { checks };
  }
  const arn = String(config.FunctionArn).replace(/:(\$LATEST|\d+)$/, '');
  const [, , , region = '', account = ''] = arn.split(':');
  const deployment: Deployment = {
    functionName: name,
    functionArn: arn,
    region,
    account,
    role: String(config.Role),
    architecture: config.Architectures?.[0] === 'arm64' ? 'arm64' : 'x86_64',
    cluster: String(env[ENV.cluster]).trim(),
    taskDefinition: String(env[ENV.taskDefinition]).trim(),
    container: env[ENV.containerName]?.trim() || DEFAULT_CONTAINER_NAME,
    subnets: String(env[ENV.subnets])
      .split(',')
      .map((subnet) => subnet.trim())
      .filter(Boolean),
    assignPublicIp: env[ENV.assignPublicIp]?.trim() === 'true',
    capacity: env[ENV.capacity]?.trim() || 'FARGATE',
    bucket: env[ENV.payloadBucket]?.trim() || undefined,
    payloadPrefix: env[ENV.payloadPrefix]?.trim() || DEFAULT_PAYLOAD_PREFIX,
    outcomePrefix: env[ENV.outcomePrefix]?.trim() || DEFAULT_OUTCOME_PREFIX,
  };
  checks.push(
    pass(
      'fallback settings',
      `cluster ${deployment.cluster}, task definition ${deployment.taskDefinition}, ${deployment.subnets.length} subnet(s)${deployment.bucket ? `, bucket ${deployment.bucket}` : ', no payload bucket'}`,
    ),
  );
  return { checks, deployment };
}
