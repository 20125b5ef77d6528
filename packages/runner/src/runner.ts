import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
import type { SqsSender } from '@immortal-lambda/protocol/sqs';
import type { Fetch } from './download.js';
import type { ExitCode } from './exit-codes.js';
import type { LoadedHandler } from './handler-loader.js';
import { callHandler } from './run/call-handler.js';
import { handlerEnded, preparationFailed } from './run/exit.js';
import { finish, notNeeded, standbyEnded } from './run/finish.js';
import { runInFreshProcess } from './run/fresh-process.js';
import { HeldBatch } from './run/held-batch.js';
import { prepare } from './run/prepare.js';
import { Run } from './run/run.js';
import { waitToBeTold } from './run/standby-wait.js';
import { type AwsCallBounds, type RunnerSettings, readSettings } from './settings.js';

/**
 * Everything the runner touches outside itself, injected so that every exit path can be tested
 * without AWS, real signals or real waiting.
 *
 * @example
 * ```ts
 * import type { RunnerDependencies } from '@immortal-lambda/runner';
 * const quiet: Pick<RunnerDependencies, 'write'> = { write: () => {} };
 * ```
 */
export interface RunnerDependencies {
  /** The process environment: read for settings, written with the handler's before import. */
  env: Record<string, string | undefined>;
  /** The Lambda client, built with the runner's bounds on every call. */
  lambda: (bounds: AwsCallBounds) => LambdaClient;
  /** The S3 client (for an envelope spilled to S3), built with the same bounds. */
  s3: (bounds: AwsCallBounds) => S3Client | Promise<S3Client>;
  fetch: Fetch;
  now: () => number;
  setTimeout: (callback: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
  /** Subscribes to the stop signal (SIGTERM); returns the unsubscribe function. */
  onStop: (listener: () => void) => () => void;
  /** Subscribes to the event loop running empty (`beforeExit`); returns the unsubscribe function. */
  onIdle: (listener: () => void) => () => void;
  /** Writes one log line (stdout). */
  write: (line: string) => void;
  /** Folders holding the runtime's bundled AWS SDK, put last on NODE_PATH. */
  runtimeModulePaths: readonly string[];
  nodeMajor: number;
  /** The running Node's version string, for messages (`process.version`). */
  nodeVersion?: string;
  /** The running process's architecture as Node names it (default `process.arch`). */
  arch?: string;
  /** The folder the process started in (an image's working directory; default `process.cwd()`). */
  cwd?: () => string;
  /** Changes the working directory: an image function runs in its image's working directory. */
  chdir?: (folder: string) => void;
  /** Makes CommonJS pick up the new NODE_PATH (Module._initPaths). */
  refreshModulePaths: () => void;
  /** Waits between download attempts. */
  sleep?: (ms: number) => Promise<void>;
  /** When this runner process started (epoch ms), for the outcome record's timeline. */
  processStartedAt?: number;
  /**
   * How the image's entry started its Lambda client: from V8's compiled code written when the
   * image was built (`used`), or from source (`rejected`: another Node made it; `absent`). Logged
   * in the run's first line.
   */
  sdkCodeCache?: 'used' | 'rejected' | 'absent' | undefined;
  /** The SQS client that keeps a held batch (see `run/held-batch.ts`); without it a held batch is not kept. */
  sqs?: (bounds: AwsCallBounds) => SqsSender | Promise<SqsSender>;
  /** Clients for the function's async destinations; without them no destination is sent to. */
  destinations?: (bounds: AwsCallBounds) => DestinationClients | Promise<DestinationClients>;
  /**
   * Runs the handler in a fresh runner process with this environment, through `wrapper` when
   * given (AWS_LAMBDA_EXEC_WRAPPER), forwarding the stop signal; resolves to how it ended.
   */
  respawn?: (
    env: Record<string, string | undefined>,
    wrapper: string | undefined,
  ) => Promise<{ code: number | null; signal: string | null }>;
}

/**
 * Runs one handed-off invocation: reads the envelope, fetches and extracts the function's code
 * and layers, sets the handler's environment, imports the handler as Lambda does, and calls it
 * with the original event and a Lambda-shaped context. Writes one outcome record and resolves
 * to the exit code.
 *
 * The run is a sequence: settings → envelope, records and journal → code → environment →
 * handler imported (or a fresh process for it) → standby wait (a pre-warmed task) → handler
 * called → outcome recorded → destinations → exit code ({@link handlerEnded} and
 * {@link preparationFailed} decide it). A stop signal before the handler runs ends the run as
 * stopped; a pre-warmed task that ends before it is told to go records nothing.
 *
 * @example
 * ```ts
 * import { runInvocation } from '@immortal-lambda/runner';
 * process.exitCode = await runInvocation(dependencies);
 * ```
 */
export async function runInvocation(deps: RunnerDependencies): Promise<ExitCode> {
  const run = new Run(deps);
  let settings: RunnerSettings;
  let handler: LoadedHandler;
  try {
    settings = readSettings(deps.env);
    run.settings = settings;
    const prepared = await run.stop.race(prepare(run, settings));
    if (prepared.kind === 'fresh') return await runInFreshProcess(run, prepared);
    handler = prepared.handler;
    run.codeReadyAt = deps.now();
    if (settings.standby) {
      const answer = await waitToBeTold(run, { ...settings, standby: settings.standby });
      if ('notNeeded' in answer) return notNeeded(run, answer.notNeeded);
    }
  } catch (error) {
    // A standby task that ends before it is told to go ran nothing of the invocation.
    if (run.settings?.standby && run.resumedAt === undefined)
      return standbyEnded(run, preparationFailed(error));
    return finish(run, preparationFailed(error));
  }
  run.held = await HeldBatch.open(run, settings).catch((error: unknown) => {
    run.log('ERROR', 'The held SQS batch could not be taken over; the handler runs', {
      ...run.ids(),
      error: { name: (error as Error).name, message: (error as Error).message },
    });
    return undefined;
  });
  const end = await callHandler(run, settings, handler);
  return finish(run, handlerEnded(end, settings, run.stop.requested));
}
