import { emfLine } from '@immortal-lambda/protocol';
import { EXIT_CODES, type ExitCode, OUTCOMES } from '../exit-codes.js';
import { sendFinalOutcome } from '../outcomes.js';
import { parseTraceHeader, runnerSegment, sendSegment } from '../trace.js';
import { type Ending, NOT_NEEDED } from './exit.js';
import type { Run } from './run.js';

type Journal = Run['journal'];
const stepCount = (of: Journal) => Object.keys(of?.steps ?? {}).length;

/**
 * Ends the run: its metric line, its last log line, its X-Ray segment, the journal saved, the
 * attempt's outcome record, and the outcome sent to the function's destinations. None of these
 * changes the exit code it resolves to.
 */
export async function finish(run: Run, ending: Ending): Promise<ExitCode> {
  const { code, attributes, value } = ending;
  const { deps, envelope, settings } = run;
  run.stop.unsubscribe();
  // The metric line first: the run's last line stays its finished record.
  writeMetric(run, code);
  run.log(code === EXIT_CODES.success ? 'INFO' : 'ERROR', 'immortal-runner finished', {
    outcome: OUTCOMES[code],
    exitCode: code,
    ...run.ids(),
    durationMs: deps.now() - run.startedAt,
    ...attributes,
  });
  const error = attributes.error as Record<string, unknown> | undefined;
  await sendTrace(run, code);
  await run.journalStore?.flush();
  await run.recorder?.finished(
    code,
    value,
    error,
    {
      inLambda: stepCount(envelope?.journal),
      fromJournal: stepCount(run.journal),
      total: stepCount(run.latestJournal ?? run.journal),
    },
    typeof attributes.resultNote === 'string' ? attributes.resultNote : undefined,
  );
  // The batch's messages are deleted (or handed back) once the attempt's outcome is recorded.
  await run.held?.finish(code, value).catch((failure: unknown) =>
    run.log('ERROR', 'The held SQS batch could not be released', {
      ...run.ids(),
      error: { name: (failure as Error).name, message: (failure as Error).message },
      consequence: 'its messages come back to the queue when their hold lapses, and are found finished',
    }),
  );
  if (envelope && settings && deps.destinations) {
    const { aws } = settings;
    const clients = deps.destinations;
    await sendFinalOutcome({
      envelope,
      code,
      value,
      error,
      attempt: settings.attempt,
      taskArn: run.taskArn,
      clients: () => clients(aws),
      now: deps.now,
      log: run.log,
      store: run.recorder?.destinationStore(),
      known: settings.knownDestinations,
    });
  }
  return code;
}

/** A pre-warmed task that was not needed ran nothing: no attempt record, no destination. */
export function notNeeded(run: Run, why: string): ExitCode {
  run.stop.unsubscribe();
  run.log('INFO', 'immortal-runner finished', {
    outcome: 'not-needed',
    exitCode: NOT_NEEDED,
    ...run.ids(),
    durationMs: run.deps.now() - run.startedAt,
    reason: why,
  });
  return NOT_NEEDED;
}

/**
 * A pre-warmed task ended while it got ready, before it waited to be told to go: nothing of the
 * invocation ran, so it writes no attempt record and sends nothing to a destination (the wrapper
 * hands off with a task of its own when it finds the standby task stopped, and the watchdog
 * follows one that was told). Stopped, it was not needed; any other failure keeps its exit code,
 * so that ECS shows the task failed.
 */
export function standbyEnded(run: Run, ending: Ending): ExitCode {
  if (ending.code === EXIT_CODES.stopped) return notNeeded(run, 'the task was stopped while it got ready');
  run.stop.unsubscribe();
  run.log('ERROR', 'immortal-runner finished', {
    outcome: OUTCOMES[ending.code],
    exitCode: ending.code,
    ...run.ids(),
    durationMs: run.deps.now() - run.startedAt,
    standby: true,
    note: 'the standby task failed while it got ready: nothing of the invocation ran, and nothing is recorded for it',
    ...ending.attributes,
  });
  return ending.code;
}

/**
 * One EMF line per run (RunnerDuration, CodeFetch, DeadTime, Relaunches), by function name, in
 * the namespace and dimensions the wrapper passed; off with FARGATE_FALLBACK_METRICS=false.
 */
function writeMetric(run: Run, code: ExitCode): void {
  const { deps, envelope, settings, timeline } = run;
  if (!envelope || !settings?.metrics.enabled) return;
  deps.write(
    emfLine({
      namespace: settings.metrics.namespace,
      dimensions: { FunctionName: envelope.function.name, ...settings.metrics.dimensions },
      metrics: {
        RunnerDuration: { value: deps.now() - run.startedAt, unit: 'Milliseconds' },
        ...(run.codeFetchMs !== undefined
          ? { CodeFetch: { value: run.codeFetchMs, unit: 'Milliseconds' } }
          : {}),
        ...(timeline ? { DeadTime: { value: timeline.deadTimeMs, unit: 'Milliseconds' } } : {}),
        Relaunches: { value: settings.attempt - 1, unit: 'Count' },
      },
      properties: {
        outcome: OUTCOMES[code],
        exitCode: code,
        requestId: envelope.invocation.awsRequestId,
        ...(run.taskArn ? { taskArn: run.taskArn } : {}),
      },
      timestamp: deps.now(),
    }),
  );
}

/** The runner's leg continues the invocation's X-Ray trace, when it was sampled and a daemon is set. */
async function sendTrace(run: Run, code: ExitCode): Promise<void> {
  const { envelope, daemon, deps } = run;
  const trace = parseTraceHeader(envelope?.invocation.traceHeader);
  if (!envelope || !trace?.sampled || !daemon) return;
  await sendSegment(
    runnerSegment({
      trace,
      functionName: envelope.function.name,
      requestId: envelope.invocation.awsRequestId,
      taskArn: run.taskArn,
      attempt: run.settings?.attempt ?? 1,
      outcome: OUTCOMES[code],
      exitCode: code,
      startedAt: deps.processStartedAt ?? run.startedAt,
      endedAt: deps.now(),
    }),
    daemon,
  );
}
