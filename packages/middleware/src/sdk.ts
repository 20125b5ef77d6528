// The AWS SDK is loaded on the first handoff only: importing this package, and every
// invocation that finishes in time, loads no SDK code.
type EcsModule = typeof import('@aws-sdk/client-ecs');
type S3Module = typeof import('@aws-sdk/client-s3');
type SqsModule = typeof import('@aws-sdk/client-sqs');

let ecs: Promise<EcsModule> | undefined;
let s3: Promise<S3Module> | undefined;

export const loadEcs = (): Promise<EcsModule> => {
  ecs ??= import('@aws-sdk/client-ecs');
  return ecs;
};

export const loadS3 = (): Promise<S3Module> => {
  s3 ??= import('@aws-sdk/client-s3');
  return s3;
};

let sqs: Promise<SqsModule> | undefined;

/** SQS, for the launch queue: loaded only when a handoff meets the launch rate. */
export const loadSqs = (): Promise<SqsModule> => {
  sqs ??= import('@aws-sdk/client-sqs');
  return sqs;
};

/**
 * How the safety net's and the status's own clients bound each call: no AWS call of theirs may
 * hang until the function's timeout (the SDK's default handler waits for ever).
 */
export const BOUNDED_CLIENT = {
  maxAttempts: 3,
  requestHandler: { connectionTimeout: 5_000, requestTimeout: 10_000, throwOnRequestTimeout: true },
} as const;
