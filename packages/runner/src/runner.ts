import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import { ENV, type Envelope, emfLine, GIVEN_JOURNAL, type RunnerTimeline } from '@immortal-lambda/protocol';
import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
import { fetchCode } from './code.js';
import { createContext } from './context.js';
import type { Fetch } from './download.js';
import { readEnvelope } from './envelope-source.js';
import { handlerEnvironment } from './environment.js';
import { BadInputError, HandlerLoadError, RunnerError } from './errors.js';
import { EXIT_CODES, type ExitCode, OUTCOMES } from './exit-codes.js';
import { loadHandler } from './handler-loader.js';
import { JournalStore, OutcomeRecorder, sendFinalOutcome, taskMetadata } from './outcomes.js';
import { type AwsCallBounds, readSettings } from './settings.js';
import { STANDBY_GRACE_MS, waitForGo } from './standby.js';
import { daemonAddress, parseTraceHeader, runnerSegment, sendSegment } from './trace.js';

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

/** The oldest Node the runner runs on (an image function's own `node` runs it). */
const MIN_NODE_MAJOR = 20;

/** The handler needs a process of its own: settings that act only when a Node process starts. */
function needsFreshProcess(environment: Record<string, string>): boolean {
  return Boolean(environment.NODE_OPTIONS?.trim() || environment.AWS_LAMBDA_EXEC_WRAPPER?.trim());
}

class Stopped extends Error {}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

function describe(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const record: Record<string, unknown> = { name: error.name, message: error.message, stack: error.stack };
  if (error.cause !== undefined) record.cause = describe(error.cause);
  return record;
}

/** A path Lambda gives as /opt/… or /var/task/…, where this runner put those folders. */
function localPath(path: string | undefined, taskRoot: string, layersRoot: string): string | undefined {
  if (!path) return undefined;
  if (path.startsWith('/opt/')) return `${layersRoot}/${path.slice('/opt/'.length)}`;
  if (path.startsWith('/var/task/')) return `${taskRoot}/${path.slice('/var/task/'.length)}`;
  return path;
}

/** The fresh process ended by a signal before it wrote its outcome record. */
const CHILD_UNREPORTED = -1;

/** The exit code a fresh handler process reported, or {@link CHILD_UNREPORTED} when it was killed. */
function childExit(child: { code: number | null; signal: string | null }): number {
  if (child.code !== null) return child.code;
  return child.signal === 'SIGTERM' ? EXIT_CODES.stopped : CHILD_UNREPORTED;
}

function loadPrepared(
  taskRoot: string,
  layersRoot: string,
  handlerName: string | undefined,
  envelope: Envelope,
) {
  if (!handlerName) {
    throw new HandlerLoadError(
      `no handler to run: the envelope carries none (_HANDLER was unset where the handoff ran) and the configuration of ${envelope.function.name}:${envelope.function.version} names none`,
    );
  }
  return loadHandler(taskRoot, handlerName, { allowedRoots: [layersRoot] });
}

/**
 * Runs one handed-off invocation: reads the envelope, fetches and extracts the function's code
 * and layers, sets the handler's environment, imports the handler as Lambda does, and calls it
 * with the original event and a Lambda-shaped context. Writes one outcome record and resolves
 * to the exit code.
 *
 * @example
 * ```ts
 * import { runInvocation } from '@immortal-lambda/runner';
 * process.exitCode = await runInvocation(dependencies);
 * ```
 */
export async function runInvocation(deps: RunnerDependencies): Promise<ExitCode> {
  const started = deps.now();
  // Read before the handler's environment is applied: the task's own daemon, not Lambda's.
  const daemon = daemonAddress(deps.env.AWS_XRAY_DAEMON_ADDRESS);
  const log = (level: 'INFO' | 'ERROR', message: string, attributes: Record<string, unknown>) =>
    deps.write(
      JSON.stringify({
        level,
        message,
        timestamp: new Date(deps.now()).toISOString(),
        service: 'immortal-runner',
        ...attributes,
      }),
    );
  let envelope: Envelope | undefined;
  let stopRequested = false;
  let onStopped: () => void = () => {};
  const unsubscribe = deps.onStop(() => {
    stopRequested = true;
    onStopped();
  });
  const stopped = new Promise<never>((_resolve, reject) => {
    onStopped = () => reject(new Stopped('the task was asked to stop (SIGTERM) before the handler ran'));
  });
  stopped.catch(() => {});
  const ids = () =>
    envelope
      ? {
          requestId: envelope.invocation.awsRequestId,
          functionName: envelope.function.name,
          functionVersion: envelope.function.version,
        }
      : {};
  let recorder: OutcomeRecorder | undefined;
  let journalStore: JournalStore | undefined;
  let journal: Envelope['journal'];
  let latestJournal: Envelope['journal'];
  const stepCount = (of: Envelope['journal']) => Object.keys(of?.steps ?? {}).length;
  let taskArn: string | undefined;
  let metadata: Awaited<ReturnType<typeof taskMetadata>> = {};
  let loadedJournal: Envelope['journal'];
  let settingsRead: ReturnType<typeof readSettings> | undefined;
  // One EMF line per run (RunnerDuration, CodeFetch, DeadTime, Relaunches), by function name,
  // in the namespace and dimensions the wrapper passed; off with FARGATE_FALLBACK_METRICS=false.
  let codeFetchMs: number | undefined;
  let timeline: RunnerTimeline | undefined;
  const metric = (code: ExitCode) => {
    const settings = settingsRead?.metrics;
    if (!envelope || !settings?.enabled) return;
    deps.write(
      emfLine({
        namespace: settings.namespace,
        dimensions: { FunctionName: envelope.function.name, ...settings.dimensions },
        metrics: {
          RunnerDuration: { value: deps.now() - started, unit: 'Milliseconds' },
          ...(codeFetchMs !== undefined ? { CodeFetch: { value: codeFetchMs, unit: 'Milliseconds' } } : {}),
          ...(timeline ? { DeadTime: { value: timeline.deadTimeMs, unit: 'Milliseconds' } } : {}),
          Relaunches: { value: (settingsRead?.attempt ?? 1) - 1, unit: 'Count' },
        },
        properties: {
          outcome: OUTCOMES[code],
          exitCode: code,
          requestId: envelope.invocation.awsRequestId,
          ...(taskArn ? { taskArn } : {}),
        },
        timestamp: deps.now(),
      }),
    );
  };
  // The runner's leg continues the invocation's X-Ray trace, when it was sampled and a daemon is set.
  const traced = async (code: ExitCode) => {
    const trace = parseTraceHeader(envelope?.invocation.traceHeader);
    if (!envelope || !trace?.sampled || !daemon) return;
    await sendSegment(
      runnerSegment({
        trace,
        functionName: envelope.function.name,
        requestId: envelope.invocation.awsRequestId,
        taskArn,
        attempt: settingsRead?.attempt ?? 1,
        outcome: OUTCOMES[code],
        exitCode: code,
        startedAt: deps.processStartedAt ?? started,
        endedAt: deps.now(),
      }),
      daemon,
    );
  };
  const finish = async (
    code: ExitCode,
    attributes: Record<string, unknown>,
    value?: unknown,
  ): Promise<ExitCode> => {
    unsubscribe();
    // The metric line first: the run's last line stays its finished record.
    metric(code);
    log(code === EXIT_CODES.success ? 'INFO' : 'ERROR', 'immortal-runner finished', {
      outcome: OUTCOMES[code],
      exitCode: code,
      ...ids(),
      durationMs: deps.now() - started,
      ...attributes,
    });
    const error = attributes.error as Record<string, unknown> | undefined;
    await traced(code);
    await journalStore?.flush();
    await recorder?.finished(code, value, error, {
      inLambda: stepCount(envelope?.journal),
      fromJournal: stepCount(journal),
      total: stepCount(latestJournal ?? journal),
    });
    if (envelope && settingsRead && deps.destinations) {
      const { aws } = settingsRead;
      const clients = deps.destinations;
      await sendFinalOutcome({
        envelope,
        code,
        value,
        error,
        attempt: settingsRead.attempt,
        taskArn,
        clients: () => clients(aws),
        now: deps.now,
        log,
      });
    }
    return code;
  };

  // A pre-warmed task that was not needed ran nothing: no attempt record, no destination.
  const notNeeded = (why: string): ExitCode => {
    unsubscribe();
    log('INFO', 'immortal-runner finished', {
      outcome: 'not-needed',
      exitCode: EXIT_CODES.success,
      ...ids(),
      durationMs: deps.now() - started,
      reason: why,
    });
    return EXIT_CODES.success;
  };
  let codeReadyAt = started;
  let resumedAt: number | undefined;

  let handler: Awaited<ReturnType<typeof loadHandler>>;
  let settings: ReturnType<typeof readSettings>;
  try {
    settings = readSettings(deps.env);
    settingsRead = settings;
    const current = settings;
    type Fresh = { fresh: Record<string, string | undefined>; wrapper: string | undefined };
    const prepared = (async (): Promise<Awaited<ReturnType<typeof loadHandler>> | Fresh> => {
      envelope = await readEnvelope(current.envelope, () => deps.s3(current.aws));
      metadata = await taskMetadata(deps.env, deps.fetch);
      taskArn = metadata.taskArn;
      recorder = new OutcomeRecorder(
        envelope,
        { ...current.outcomes, attempt: current.attempt, taskArn },
        () => deps.s3(current.aws),
        deps.now,
        log,
      );
      journalStore = new JournalStore({
        envelope,
        ...current.outcomes,
        s3: () => deps.s3(current.aws),
        now: deps.now,
        log,
        timers: { set: deps.setTimeout, clear: deps.clearTimeout },
      });
      // A relaunch resumes from what the previous attempt saved: at least what the envelope holds.
      loadedJournal = current.attempt > 1 ? await journalStore.load() : undefined;
      journal = loadedJournal ?? envelope.journal;
      if (deps.env[ENV.prepared] === '1') {
        // The fresh process: the code and the handler's environment are in place.
        return loadPrepared(current.taskRoot, current.layersRoot, deps.env._HANDLER, envelope);
      }
      if (current.standby) {
        log('INFO', 'Getting ready in standby: the handler is called once the wrapper hands off', {
          ...ids(),
          resumeLocation: current.standby,
        });
      } else {
        recorder.running();
        log('INFO', 'Resuming a handed-off invocation', {
          ...ids(),
          handler: envelope.function.handler ?? '(the configured handler)',
          handedOffAt: new Date(envelope.invocation.handedOffAt).toISOString(),
        });
      }
      if (deps.nodeMajor < MIN_NODE_MAJOR) {
        throw new BadInputError(
          `this task's node is ${deps.nodeVersion ?? `v${deps.nodeMajor}`} and the runner needs Node ${MIN_NODE_MAJOR} or later: for a container image function, build the image on a Node ${MIN_NODE_MAJOR}+ base (Lambda's nodejs20.x, nodejs22.x or nodejs24.x images)`,
        );
      }
      const fetchStarted = deps.now();
      const fetched = await fetchCode({
        envelope,
        lambda: deps.lambda(current.aws),
        fetch: deps.fetch,
        taskRoot: current.taskRoot,
        taskRootGiven: current.taskRootGiven,
        ...(deps.cwd ? { cwd: deps.cwd() } : {}),
        ...(deps.arch ? { arch: deps.arch } : {}),
        layersRoot: current.layersRoot,
        ...(deps.sleep ? { sleep: deps.sleep } : {}),
        progress: (message, attributes) => log('INFO', message, { ...ids(), ...attributes }),
        throttleBudgetMs: current.throttleBudgetMs,
        nodeMajor: deps.nodeMajor,
        allowRuntimeMismatch: current.allowRuntimeMismatch,
        now: deps.now,
      });
      codeFetchMs = deps.now() - fetchStarted;
      const { taskRoot } = fetched;
      // As Lambda starts an image function in its working directory (ImageConfig's, when set).
      if (fetched.image !== undefined && deps.chdir) deps.chdir(taskRoot);
      const extensions = await readdir(join(current.layersRoot, 'extensions')).catch(() => []);
      if (extensions.length > 0) {
        log('INFO', 'Lambda extensions are not run by the runner', {
          ...ids(),
          extensions: extensions.map((name) => join(current.layersRoot, 'extensions', name)),
        });
      }
      const environment = handlerEnvironment({
        envelope,
        configuration: fetched.configuration,
        taskRoot,
        layersRoot: current.layersRoot,
        runtimeModulePaths: deps.runtimeModulePaths,
        nodeMajor: deps.nodeMajor,
      });
      if (needsFreshProcess(environment) && deps.respawn) {
        // NODE_OPTIONS and AWS_LAMBDA_EXEC_WRAPPER act only when a process starts: the handler
        // runs in a fresh runner process that starts with them, as on Lambda.
        log('INFO', 'Running the handler in a fresh process, so that NODE_OPTIONS or the exec wrapper act', {
          ...ids(),
          nodeOptions: environment.NODE_OPTIONS,
          execWrapper: environment.AWS_LAMBDA_EXEC_WRAPPER,
        });
        return {
          fresh: { ...deps.env, ...environment, [ENV.prepared]: '1', [ENV.taskRoot]: taskRoot },
          wrapper: localPath(environment.AWS_LAMBDA_EXEC_WRAPPER?.trim(), taskRoot, current.layersRoot),
        };
      }
      Object.assign(deps.env, environment);
      deps.refreshModulePaths();
      return loadPrepared(taskRoot, current.layersRoot, environment._HANDLER, envelope);
    })();
    const ready = await Promise.race([prepared, stopped]);
    if ('fresh' in ready) {
      // The fresh process writes its own outcome record and gets the stop signal forwarded.
      unsubscribe();
      // The `running` record lands before the fresh process can write the attempt's end.
      await recorder?.flush();
      let child: { code: number | null; signal: string | null };
      try {
        child = await (deps.respawn as NonNullable<typeof deps.respawn>)(ready.fresh, ready.wrapper);
      } catch (error) {
        throw new HandlerLoadError(
          `the handler process could not be started${ready.wrapper ? ` through AWS_LAMBDA_EXEC_WRAPPER ${ready.wrapper}` : ''}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      const code = childExit(child);
      // The fresh process wrote the attempt's record and sent its outcome.
      if (code !== CHILD_UNREPORTED) return code as ExitCode;
      return finish(EXIT_CODES.stopped, {
        error: {
          message: 'the handler process ended by a signal without an outcome record (killed: out of memory?)',
        },
      });
    }
    handler = ready;
    codeReadyAt = deps.now();
    if (settings.standby) {
      // Pre-warmed: the code is ready and the handler imported; the envelope to run comes at the
      // handoff, with the journal as it was then.
      const answer = await waitForGo({
        uri: settings.standby,
        requestId: (envelope as Envelope).invocation.awsRequestId,
        s3: () => deps.s3(settings.aws),
        now: deps.now,
        sleep: (ms) => new Promise((resolve) => deps.setTimeout(() => resolve(undefined), ms)),
        until: (envelope as Envelope).invocation.deadlineAt + STANDBY_GRACE_MS,
        stopped: () => stopRequested,
      });
      if ('notNeeded' in answer) return notNeeded(answer.notNeeded);
      envelope = answer.go;
      journal = loadedJournal ?? envelope.journal;
      resumedAt = deps.now();
      recorder?.running();
      log('INFO', 'Resuming a handed-off invocation in its pre-warmed task', {
        ...ids(),
        handler: envelope.function.handler ?? '(the configured handler)',
        handedOffAt: new Date(envelope.invocation.handedOffAt).toISOString(),
        waitedMs: resumedAt - codeReadyAt,
      });
    }
  } catch (error) {
    if (error instanceof Stopped) return finish(EXIT_CODES.stopped, { error: describe(error) });
    const code = error instanceof RunnerError ? error.exitCode : EXIT_CODES.badInput;
    return finish(code, { error: describe(error) });
  }

  const ready = envelope as Envelope;
  const controller = new AbortController();
  let settle: (outcome: Settled) => void = () => {};
  const outcome = new Promise<Settled>((resolve) => {
    settle = resolve;
  });
  const store = journalStore;
  // The wrapped handler (runner mode) takes its signal and journal from here.
  const callback = Object.assign(
    (error: unknown, result?: unknown) =>
      settle(error == null ? { ok: true, value: result } : { ok: false, error }),
    {
      signal: controller.signal,
      journal,
      onJournal: (changed: NonNullable<Envelope['journal']>) => {
        latestJournal = changed;
        store?.save(changed);
      },
    },
  );
  const context = createContext(ready, {
    now: deps.now,
    maxRuntimeMs: settings.maxRuntimeMs,
    memoryLimitInMB: Number(deps.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? ready.function.memoryLimitInMB),
    settle: (error, result) => callback(error, result),
  });
  // Adapters that cannot take the journal as the third argument (middy) find it on the context.
  Object.defineProperty(context, GIVEN_JOURNAL, {
    value: { journal: callback.journal, onJournal: callback.onJournal },
    enumerable: false,
  });
  // A handler promise with nothing left to wait on can never settle; Lambda would time it out.
  const unsubscribeIdle = deps.onIdle(() =>
    settle({
      ok: false,
      error: new Error(
        'the handler returned a promise that can never settle: the event loop is empty and nothing is left for it to wait on (on Lambda this invocation would time out)',
      ),
    }),
  );
  const handlerStarted = deps.now();
  timeline = {
    handoffAt: ready.invocation.handedOffAt,
    ...(metadata.pullStartedAt !== undefined ? { pullStartedAt: metadata.pullStartedAt } : {}),
    ...(metadata.pullStoppedAt !== undefined ? { pullStoppedAt: metadata.pullStoppedAt } : {}),
    processStartedAt: deps.processStartedAt ?? started,
    codeReadyAt,
    ...(resumedAt !== undefined ? { resumedAt } : {}),
    handlerCalledAt: handlerStarted,
    deadTimeMs: handlerStarted - ready.invocation.handedOffAt,
  };
  recorder?.timeline(timeline);
  log('INFO', 'Calling the handler', {
    ...ids(),
    remainingMs: context.getRemainingTimeInMillis(),
    timeline,
  });
  try {
    const returned = handler(ready.event, context, callback);
    if (returned !== null && typeof (returned as Promise<unknown>)?.then === 'function') {
      (returned as Promise<unknown>).then(
        (value) => settle({ ok: true, value }),
        (error: unknown) => settle({ ok: false, error }),
      );
    } else if (handler.length < 3) {
      settle({ ok: true, value: returned });
    }
  } catch (error) {
    settle({ ok: false, error });
  }

  let grace: unknown;
  const stopDuringHandler = new Promise<'stopped'>((resolve) => {
    onStopped = () => {
      controller.abort(new Error('the task is being stopped (SIGTERM)'));
      log('ERROR', 'Stop requested: the handler was aborted and has a grace period to finish', {
        ...ids(),
        graceMs: settings.stopGraceMs,
      });
      grace = deps.setTimeout(() => resolve('stopped'), settings.stopGraceMs);
    };
    if (stopRequested) onStopped();
  });
  // FARGATE_FALLBACK_MAX_RUNTIME_MS is enforced: a hung handler must not run, and be billed, forever.
  let timedOut = false;
  let overtime: unknown;
  let runtimeGrace: unknown;
  const pastMaxRuntime = new Promise<'timed-out'>((resolve) => {
    overtime = deps.setTimeout(() => {
      timedOut = true;
      controller.abort(
        Object.assign(new Error(`the handler reached ${ENV.maxRuntimeMs} (${settings.maxRuntimeMs} ms)`), {
          name: 'TimeoutError',
        }),
      );
      log(
        'ERROR',
        'The handler reached its maximum run time: it was aborted and has a grace period to finish',
        {
          ...ids(),
          maxRuntimeMs: settings.maxRuntimeMs,
          graceMs: settings.stopGraceMs,
        },
      );
      runtimeGrace = deps.setTimeout(() => resolve('timed-out'), settings.stopGraceMs);
    }, settings.maxRuntimeMs);
    // The limit alone must not keep the process alive: a handler with nothing left to wait on
    // is still reported as one that can never settle.
    (overtime as { unref?: () => void } | undefined)?.unref?.();
  });
  const result = await Promise.race([outcome, stopDuringHandler, pastMaxRuntime]);
  unsubscribeIdle();
  deps.clearTimeout(grace);
  deps.clearTimeout(overtime);
  deps.clearTimeout(runtimeGrace);
  const handlerMs = deps.now() - handlerStarted;
  if (result === 'stopped') {
    return finish(EXIT_CODES.stopped, {
      handlerDurationMs: handlerMs,
      error: {
        message: `the handler did not finish within the ${settings.stopGraceMs} ms grace period after SIGTERM`,
      },
    });
  }
  if (result === 'timed-out' || (timedOut && !result.ok)) {
    return finish(EXIT_CODES.timedOut, {
      handlerDurationMs: handlerMs,
      error: {
        name: 'TimeoutError',
        message: `the handler ran past ${ENV.maxRuntimeMs} (${settings.maxRuntimeMs} ms)${
          result === 'timed-out'
            ? ` and did not stop within the ${settings.stopGraceMs} ms grace period`
            : ', was aborted and stopped'
        }`,
      },
    });
  }
  if (result.ok) {
    const json = JSON.stringify(result.value);
    return finish(
      EXIT_CODES.success,
      { handlerDurationMs: handlerMs, resultBytes: json === undefined ? 0 : Buffer.byteLength(json) },
      result.value,
    );
  }
  return finish(stopRequested ? EXIT_CODES.stopped : EXIT_CODES.handlerError, {
    handlerDurationMs: handlerMs,
    error: describe(result.error),
  });
}
