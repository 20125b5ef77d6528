import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ENV, type Envelope } from '@immortal-lambda/protocol';
import { type FetchedCode, fetchCode } from '../code.js';
import { readEnvelope } from '../envelope-source.js';
import { handlerEnvironment } from '../environment.js';
import { BadInputError, HandlerLoadError } from '../errors.js';
import { type LoadedHandler, loadHandler } from '../handler-loader.js';
import { JournalStore, OutcomeRecorder, taskMetadata } from '../outcomes.js';
import type { RunnerDependencies } from '../runner.js';
import type { RunnerSettings } from '../settings.js';
import type { Run } from './run.js';

/** The oldest Node the runner runs on (an image function's own `node` runs it). */
const MIN_NODE_MAJOR = 20;

/**
 * What the preparation ends with: the handler, imported in this process, or the environment of a
 * fresh runner process that must run it (NODE_OPTIONS or an exec wrapper act only at a start).
 */
export type Prepared =
  | { kind: 'loaded'; handler: LoadedHandler }
  | {
      kind: 'fresh';
      env: Record<string, string | undefined>;
      wrapper: string | undefined;
      respawn: NonNullable<RunnerDependencies['respawn']>;
    };

/**
 * Gets the invocation ready to run: its envelope, its records and journal, the function's code
 * and layers, the handler's environment, and the handler itself. Throws a `RunnerError` whose
 * exit code says what failed.
 */
export async function prepare(run: Run, settings: RunnerSettings): Promise<Prepared> {
  const { deps } = run;
  const envelope = await readEnvelope(settings.envelope, () => deps.s3(settings.aws));
  run.envelope = envelope;
  await openRecords(run, settings, envelope);
  if (deps.env[ENV.prepared] === '1') {
    // The fresh process: the code and the handler's environment are in place.
    return loaded(settings.taskRoot, settings.layersRoot, deps.env._HANDLER, envelope);
  }
  announce(run, settings, envelope);
  requireNode(deps.nodeMajor, deps.nodeVersion);
  const code = await fetchFunctionCode(run, settings, envelope);
  await logExtensions(run, settings.layersRoot);
  const environment = handlerEnvironment({
    envelope,
    configuration: code.configuration,
    taskRoot: code.taskRoot,
    layersRoot: settings.layersRoot,
    runtimeModulePaths: deps.runtimeModulePaths,
    nodeMajor: deps.nodeMajor,
  });
  if (needsFreshProcess(environment) && deps.respawn) {
    return freshProcess(run, environment, code.taskRoot, settings.layersRoot, deps.respawn);
  }
  Object.assign(deps.env, environment);
  deps.refreshModulePaths();
  return loaded(code.taskRoot, settings.layersRoot, environment._HANDLER, envelope);
}

/**
 * Who this task is (its ARN), where this attempt's outcome records and the invocation's journal
 * go, and the journal it starts from: what an earlier attempt saved (a relaunch), else the
 * envelope's.
 */
async function openRecords(run: Run, settings: RunnerSettings, envelope: Envelope): Promise<void> {
  const { deps, log } = run;
  const s3 = () => deps.s3(settings.aws);
  run.metadata = await taskMetadata(deps.env, deps.fetch);
  run.recorder = new OutcomeRecorder(
    envelope,
    { ...settings.outcomes, attempt: settings.attempt, taskArn: run.taskArn },
    s3,
    deps.now,
    log,
  );
  run.journalStore = new JournalStore({
    envelope,
    ...settings.outcomes,
    s3,
    now: deps.now,
    log,
    timers: { set: deps.setTimeout, clear: deps.clearTimeout },
  });
  // A relaunch resumes from what the previous attempt saved: at least what the envelope holds.
  run.loadedJournal = settings.attempt > 1 ? await run.journalStore.load() : undefined;
  run.journal = run.loadedJournal ?? envelope.journal;
}

/** Says what this task does: get ready in standby, or resume the invocation (recorded `running`). */
function announce(run: Run, settings: RunnerSettings, envelope: Envelope): void {
  if (settings.standby) {
    run.log('INFO', 'Getting ready in standby: the handler is called once the wrapper hands off', {
      ...run.ids(),
      resumeLocation: settings.standby,
    });
    return;
  }
  run.recorder?.running();
  run.log('INFO', 'Resuming a handed-off invocation', {
    ...run.ids(),
    handler: envelope.function.handler ?? '(the configured handler)',
    handedOffAt: new Date(envelope.invocation.handedOffAt).toISOString(),
    ...(run.deps.sdkCodeCache ? { sdkCodeCache: run.deps.sdkCodeCache } : {}),
  });
}

function requireNode(major: number, version: string | undefined): void {
  if (major >= MIN_NODE_MAJOR) return;
  throw new BadInputError(
    `this task's node is ${version ?? `v${major}`} and the runner needs Node ${MIN_NODE_MAJOR} or later: for a container image function, build the image on a Node ${MIN_NODE_MAJOR}+ base (Lambda's nodejs20.x, nodejs22.x or nodejs24.x images)`,
  );
}

/**
 * The function's code and layers, in place: downloaded, verified and extracted (a zip function),
 * or found in the image (an image function, whose working directory the run then enters).
 */
async function fetchFunctionCode(
  run: Run,
  settings: RunnerSettings,
  envelope: Envelope,
): Promise<FetchedCode> {
  const { deps } = run;
  const started = deps.now();
  const fetched = await fetchCode({
    envelope,
    lambda: deps.lambda(settings.aws),
    fetch: deps.fetch,
    taskRoot: settings.taskRoot,
    taskRootGiven: settings.taskRootGiven,
    imageTaskRoot: deps.env.LAMBDA_TASK_ROOT,
    ...(deps.cwd ? { cwd: deps.cwd() } : {}),
    ...(deps.arch ? { arch: deps.arch } : {}),
    layersRoot: settings.layersRoot,
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    progress: (message, attributes) => run.log('INFO', message, { ...run.ids(), ...attributes }),
    throttleBudgetMs: settings.throttleBudgetMs,
    nodeMajor: deps.nodeMajor,
    allowRuntimeMismatch: settings.allowRuntimeMismatch,
    imageHandler: settings.imageHandler,
    now: deps.now,
  });
  run.codeFetchMs = deps.now() - started;
  // As Lambda starts an image function in its working directory (ImageConfig's, when set).
  if (fetched.image !== undefined && deps.chdir) deps.chdir(fetched.taskRoot);
  return fetched;
}

/** Lambda extensions in the layers are not run here: said once, with where they are. */
async function logExtensions(run: Run, layersRoot: string): Promise<void> {
  const extensions = await readdir(join(layersRoot, 'extensions')).catch(() => []);
  if (extensions.length === 0) return;
  run.log('INFO', 'Lambda extensions are not run by the runner', {
    ...run.ids(),
    extensions: extensions.map((name) => join(layersRoot, 'extensions', name)),
  });
}

/** The handler needs a process of its own: settings that act only when a Node process starts. */
function needsFreshProcess(environment: Record<string, string>): boolean {
  return Boolean(environment.NODE_OPTIONS?.trim() || environment.AWS_LAMBDA_EXEC_WRAPPER?.trim());
}

/**
 * NODE_OPTIONS and AWS_LAMBDA_EXEC_WRAPPER act only when a process starts: the handler runs in a
 * fresh runner process that starts with them, as on Lambda.
 */
function freshProcess(
  run: Run,
  environment: Record<string, string>,
  taskRoot: string,
  layersRoot: string,
  respawn: NonNullable<RunnerDependencies['respawn']>,
): Prepared {
  run.log('INFO', 'Running the handler in a fresh process, so that NODE_OPTIONS or the exec wrapper act', {
    ...run.ids(),
    nodeOptions: environment.NODE_OPTIONS,
    execWrapper: environment.AWS_LAMBDA_EXEC_WRAPPER,
  });
  return {
    kind: 'fresh',
    env: { ...run.deps.env, ...environment, [ENV.prepared]: '1', [ENV.taskRoot]: taskRoot },
    wrapper: localPath(environment.AWS_LAMBDA_EXEC_WRAPPER?.trim(), taskRoot, layersRoot),
    respawn,
  };
}

/** A path Lambda gives as /opt/… or /var/task/…, where this runner put those folders. */
function localPath(path: string | undefined, taskRoot: string, layersRoot: string): string | undefined {
  if (!path) return undefined;
  if (path.startsWith('/opt/')) return `${layersRoot}/${path.slice('/opt/'.length)}`;
  if (path.startsWith('/var/task/')) return `${taskRoot}/${path.slice('/var/task/'.length)}`;
  return path;
}

async function loaded(
  taskRoot: string,
  layersRoot: string,
  handlerName: string | undefined,
  envelope: Envelope,
): Promise<Prepared> {
  if (!handlerName) {
    throw new HandlerLoadError(
      `no handler to run: the envelope carries none (_HANDLER was unset where the handoff ran) and the configuration of ${envelope.function.name}:${envelope.function.version} names none; for a container image function, set ${ENV.imageHandler} on the task definition to its image's CMD (the construct's imageHandler prop)`,
    );
  }
  return {
    kind: 'loaded',
    handler: await loadHandler(taskRoot, handlerName, { allowedRoots: [layersRoot] }),
  };
}
