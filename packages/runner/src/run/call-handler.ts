import { ENV, type Envelope, GIVEN_JOURNAL } from '@immortal-lambda/protocol';
import { createContext, type RunnerContext } from '../context.js';
import type { LoadedHandler } from '../handler-loader.js';
import type { RunnerSettings } from '../settings.js';
import type { Run } from './run.js';

/** How a handler settled: its value, or what it threw or rejected with. */
export type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * How the handler's run ended: it settled (after an abort at the maximum run time, when
 * `timedOut`), or it did not settle within the grace period after the stop signal (`stopped`) or
 * after the maximum run time (`timed-out`).
 */
export type HandlerEnd = { handlerMs: number } & (
  | { kind: 'settled'; settled: Settled; timedOut: boolean }
  | { kind: 'stopped' }
  | { kind: 'timed-out' }
);

/**
 * Calls the handler with the original event and a Lambda-shaped context, as Lambda does (a
 * promise, a callback, or a plain value), and waits until it settles, the task is stopped, or it
 * runs past its maximum run time; either of the last two aborts its signal and gives it a grace
 * period to finish.
 */
export async function callHandler(
  run: Run,
  settings: RunnerSettings,
  handler: LoadedHandler,
): Promise<HandlerEnd> {
  const { deps } = run;
  run.phase = 'running';
  const envelope = run.envelope as Envelope;
  const controller = new AbortController();
  let settle: (settled: Settled) => void = () => {};
  const settled = new Promise<Settled>((resolve) => {
    settle = resolve;
  });
  const callback = runnerCallback(run, controller.signal, settle);
  const context = createContext(envelope, {
    now: deps.now,
    maxRuntimeMs: settings.maxRuntimeMs,
    memoryLimitInMB: Number(deps.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? envelope.function.memoryLimitInMB),
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
  const handlerStarted = startTimeline(run, envelope, context);
  invoke(handler, envelope.event, context, callback, settle);
  const limits = new Limits(run, settings, controller);
  const result = await Promise.race([settled, limits.stopped, limits.pastMaxRuntime]);
  unsubscribeIdle();
  limits.dispose();
  const handlerMs = deps.now() - handlerStarted;
  if (result === 'stopped' || result === 'timed-out') return { kind: result, handlerMs };
  return { kind: 'settled', settled: result, timedOut: limits.timedOut, handlerMs };
}

/** The handler's callback; the wrapped handler (runner mode) takes its signal and journal from it. */
function runnerCallback(run: Run, signal: AbortSignal, settle: (settled: Settled) => void) {
  const store = run.journalStore;
  return Object.assign(
    (error: unknown, result?: unknown) =>
      settle(error == null ? { ok: true, value: result } : { ok: false, error }),
    {
      signal,
      journal: run.journal,
      onJournal: (changed: NonNullable<Envelope['journal']>) => {
        run.latestJournal = changed;
        store?.save(changed);
      },
    },
  );
}

/** Records how this attempt got to its handler (the run's timeline) and logs the call; returns when. */
function startTimeline(run: Run, envelope: Envelope, context: RunnerContext): number {
  const { deps, metadata } = run;
  const handlerCalledAt = deps.now();
  run.timeline = {
    handoffAt: envelope.invocation.handedOffAt,
    ...(metadata.pullStartedAt !== undefined ? { pullStartedAt: metadata.pullStartedAt } : {}),
    ...(metadata.pullStoppedAt !== undefined ? { pullStoppedAt: metadata.pullStoppedAt } : {}),
    processStartedAt: deps.processStartedAt ?? run.startedAt,
    codeReadyAt: run.codeReadyAt,
    ...(run.resumedAt !== undefined ? { resumedAt: run.resumedAt } : {}),
    handlerCalledAt,
    deadTimeMs: handlerCalledAt - envelope.invocation.handedOffAt,
  };
  run.recorder?.timeline(run.timeline);
  run.log('INFO', 'Calling the handler', {
    ...run.ids(),
    remainingMs: context.getRemainingTimeInMillis(),
    timeline: run.timeline,
  });
  return handlerCalledAt;
}

/** Calls the handler as Lambda does: a returned promise, the callback, or (without one) a plain value. */
function invoke(
  handler: LoadedHandler,
  event: unknown,
  context: RunnerContext,
  callback: (error: unknown, result?: unknown) => void,
  settle: (settled: Settled) => void,
): void {
  try {
    const returned = handler(event, context, callback);
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
}

/**
 * What ends a handler that does not settle: the stop signal (SIGTERM) and the maximum run time
 * (`FARGATE_FALLBACK_MAX_RUNTIME_MS`: a hung handler must not run, and be billed, forever). Each
 * aborts the handler's signal and resolves after the grace period.
 */
class Limits {
  readonly stopped: Promise<'stopped'>;
  readonly pastMaxRuntime: Promise<'timed-out'>;
  timedOut = false;
  readonly #timers: unknown[] = [];
  readonly #clear: (handle: unknown) => void;

  constructor(run: Run, settings: RunnerSettings, controller: AbortController) {
    const { deps } = run;
    this.#clear = deps.clearTimeout;
    const grace = (resolve: () => void) => this.#timers.push(deps.setTimeout(resolve, settings.stopGraceMs));
    this.stopped = new Promise((resolve) => {
      run.stop.onStop(() => {
        controller.abort(new Error('the task is being stopped (SIGTERM)'));
        run.log('ERROR', 'Stop requested: the handler was aborted and has a grace period to finish', {
          ...run.ids(),
          graceMs: settings.stopGraceMs,
        });
        grace(() => resolve('stopped'));
      });
    });
    this.pastMaxRuntime = new Promise((resolve) => {
      const overtime = deps.setTimeout(() => {
        this.timedOut = true;
        controller.abort(
          Object.assign(new Error(`the handler reached ${ENV.maxRuntimeMs} (${settings.maxRuntimeMs} ms)`), {
            name: 'TimeoutError',
          }),
        );
        run.log(
          'ERROR',
          'The handler reached its maximum run time: it was aborted and has a grace period to finish',
          {
            ...run.ids(),
            maxRuntimeMs: settings.maxRuntimeMs,
            graceMs: settings.stopGraceMs,
          },
        );
        grace(() => resolve('timed-out'));
      }, settings.maxRuntimeMs);
      // The limit alone must not keep the process alive: a handler with nothing left to wait on
      // is still reported as one that can never settle.
      (overtime as { unref?: () => void } | undefined)?.unref?.();
      this.#timers.push(overtime);
    });
  }

  dispose(): void {
    for (const timer of this.#timers) this.#clear(timer);
  }
}
