import { randomUUID } from 'node:crypto';
import type { RunTaskCommandInput } from '@aws-sdk/client-ecs';
import { ECSClient } from '@aws-sdk/client-ecs';
import { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { ENV } from '../../src/protocol/index.js';
import type { FallbackHandler, FallbackLogger, FargateFallbackOptions } from '../../src/types.js';

/** A Lambda-shaped context whose deadline is `remainingMs` from now, by `Date.now()`. */
export function lambdaContext(remainingMs: number, overrides: Partial<Context> = {}): Context {
  const deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'report-job',
    functionVersion: '7',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report-job:live',
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/report-job',
    logStreamName: '2026/11/26/[7]abcdef',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
    ...overrides,
  };
}

export interface LogRecord {
  level: 'INFO' | 'ERROR';
  message: string;
  attributes: Record<string, unknown>;
}

/** A logger that keeps its records for assertions. */
export function memoryLogger(): FallbackLogger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  return {
    records,
    info: (message, attributes) => {
      records.push({ level: 'INFO', message, attributes });
    },
    error: (message, attributes) => {
      records.push({ level: 'ERROR', message, attributes });
    },
  };
}

/** The environment Lambda gives a function version, plus the fallback settings. */
export function lambdaEnv(
  extra: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return {
    AWS_REGION: 'eu-west-1',
    AWS_LAMBDA_FUNCTION_NAME: 'report-job',
    AWS_LAMBDA_FUNCTION_VERSION: '7',
    _HANDLER: 'src/jobs/report.handler',
    _X_AMZN_TRACE_ID: 'Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1',
    FARGATE_FALLBACK_CLUSTER: 'jobs',
    FARGATE_FALLBACK_TASK_DEFINITION: 'immortal-runner:3',
    FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2',
    FARGATE_FALLBACK_SECURITY_GROUPS: 'sg-0ccccccccccccccc3',
    ...extra,
  };
}

/** An AWS-style error as the SDK raises it. */
export function awsError(name: string, message: string, status = 400): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Options for tests against mocked SDK clients: Lambda's environment, a short margin, no jitter. */
export function mockedOptions(logger: FallbackLogger, marginMs: number): FargateFallbackOptions {
  return {
    env: lambdaEnv(),
    marginMs,
    logger,
    ecsClient: new ECSClient({ region: 'eu-west-1' }),
    s3Client: new S3Client({ region: 'eu-west-1' }),
    random: () => 0.5,
  };
}

/** A handler that works until it is aborted, like a long job that honours its signal. */
export const untilAborted: FallbackHandler<unknown, unknown> = (_event, _context, { signal }) =>
  new Promise((_resolve, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });

/** The envelope a RunTask call carried in its container override. */
export function envelopeOf(input: RunTaskCommandInput | undefined): string {
  const value = input?.overrides?.containerOverrides?.[0]?.environment?.find(
    (e) => e.name === ENV.envelope,
  )?.value;
  if (value === undefined) throw new Error('RunTask carried no envelope');
  return value;
}
