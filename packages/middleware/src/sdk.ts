// The AWS SDK is loaded on the first handoff only: importing this package, and every
// invocation that finishes in time, loads no SDK code.
type EcsModule = typeof import('@aws-sdk/client-ecs');
type S3Module = typeof import('@aws-sdk/client-s3');

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
