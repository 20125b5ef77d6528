#!/usr/bin/env node
// immortal-runner: runs one handed-off invocation, configured only through its environment.
import { createRequire, Module } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
import { httpGet } from './http-get.js';
import { runInvocation } from './runner.js';
import { s3Module } from './s3.js';
import type { AwsCallBounds } from './settings.js';
import { codeCacheStatus } from './standalone/cached-sdk.js';

const require = createRequire(import.meta.url);
// Handlers that rely on the runtime's bundled SDK find it as on Lambda: /var/runtime/node_modules
// in the image, and next to the runner's own SDK clients when it runs as a local process.
const runtimeModulePaths = ['/var/runtime/node_modules', '/var/runtime'];
try {
  runtimeModulePaths.push(dirname(dirname(dirname(require.resolve('@aws-sdk/client-s3/package.json')))));
} catch {
  // The runner's own SDK is always installed; this only guards odd layouts.
}

let lambda: LambdaClient | undefined;
let s3: S3Client | undefined;
let destinations: DestinationClients | undefined;
let sqs: import('@aws-sdk/client-sqs').SQSClient | undefined;
// Every call answers within the timeout or is abandoned; the SDK retries it within the budget.
const bounded = (bounds: AwsCallBounds) => ({
  maxAttempts: bounds.maxAttempts,
  requestHandler: {
    connectionTimeout: bounds.timeoutMs,
    requestTimeout: bounds.timeoutMs,
    throwOnRequestTimeout: true,
  },
});
const lambdaClient = (bounds: AwsCallBounds) => {
  lambda ??= new LambdaClient(bounded(bounds));
  return lambda;
};
const code = await runInvocation({
  env: process.env,
  // When Node started this process, for the timeline in the outcome record (from the uptime:
  // reading \`performance\` loads a module of Node's on Node 20, at every start).
  processStartedAt: Date.now() - Math.round(process.uptime() * 1000),
  sdkCodeCache: codeCacheStatus(),
  lambda: lambdaClient,
  // Loaded when a run first reads or writes the bucket: an inline envelope without a bucket never does.
  s3: async (bounds) => {
    const { S3Client } = await s3Module();
    s3 ??= new S3Client(bounded(bounds));
    return s3;
  },
  // A held SQS batch's client loads when the run takes the batch over.
  sqs: async (bounds) => {
    const { SQSClient } = await import('@aws-sdk/client-sqs');
    sqs ??= new SQSClient({ ...bounded(bounds), useQueueUrlAsEndpoint: false });
    return sqs;
  },
  // The SQS, SNS and EventBridge clients load when an outcome is sent, not at start.
  destinations: async (bounds) => {
    const { destinationClients } = await import('@immortal-lambda/protocol/destinations');
    destinations ??= destinationClients(bounded(bounds), lambdaClient(bounds));
    return destinations;
  },
  fetch: httpGet,
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  onStop: (listener) => {
    process.on('SIGTERM', listener);
    return () => process.off('SIGTERM', listener);
  },
  onIdle: (listener) => {
    process.on('beforeExit', listener);
    return () => process.off('beforeExit', listener);
  },
  write: (line) => process.stdout.write(`${line}\n`),
  runtimeModulePaths,
  nodeMajor: Number(process.versions.node.split('.')[0]),
  nodeVersion: process.version,
  chdir: (folder) => process.chdir(folder),
  refreshModulePaths: () => (Module as unknown as { _initPaths: () => void })._initPaths(),
  // Loaded only for a run that needs a fresh process: a few ms of every start otherwise.
  respawn: async (env, wrapper) => {
    const { spawn } = await import('node:child_process');
    return new Promise((resolve, reject) => {
      // As Lambda runs `wrapper /var/runtime/bootstrap`: the wrapper gets the command to exec.
      const command = [process.execPath, fileURLToPath(import.meta.url)];
      const child = wrapper
        ? spawn(wrapper, command, { env, stdio: 'inherit' })
        : spawn(command[0] as string, command.slice(1), { env, stdio: 'inherit' });
      const forward = () => child.kill('SIGTERM');
      process.on('SIGTERM', forward);
      child.on('error', (error) => {
        process.off('SIGTERM', forward);
        reject(error);
      });
      child.on('exit', (code, signal) => {
        process.off('SIGTERM', forward);
        resolve({ code, signal });
      });
    });
  },
});
// The handler may leave timers or sockets open; the invocation is over, so is the task.
process.stdout.write('', () => process.exit(code));
