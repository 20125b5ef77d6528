import type { Envelope } from '@immortal-lambda/protocol';
import type { RunnerSettings } from '../settings.js';
import { STANDBY_GRACE_MS, type StandbyAnswer, waitForGo } from '../standby.js';
import type { Run } from './run.js';

/**
 * A pre-warmed runner, its code ready and its handler imported, waits for the wrapper's word.
 * Told to go, the run goes on with the envelope as it was at the handoff (and its journal),
 * recorded `running`.
 */
export async function waitToBeTold(
  run: Run,
  settings: RunnerSettings & { standby: string },
): Promise<StandbyAnswer> {
  const { deps } = run;
  run.phase = 'waiting';
  const prewarmed = run.envelope as Envelope;
  const answer = await waitForGo({
    uri: settings.standby,
    requestId: prewarmed.invocation.awsRequestId,
    s3: () => deps.s3(settings.aws),
    now: deps.now,
    sleep: (ms) => new Promise((resolve) => deps.setTimeout(() => resolve(undefined), ms)),
    until: prewarmed.invocation.deadlineAt + STANDBY_GRACE_MS,
    stopped: () => run.stop.requested,
  });
  if ('notNeeded' in answer) return answer;
  const envelope = answer.go;
  run.envelope = envelope;
  run.journal = run.loadedJournal ?? envelope.journal;
  run.resumedAt = deps.now();
  run.recorder?.running();
  run.log('INFO', 'Resuming a handed-off invocation in its pre-warmed task', {
    ...run.ids(),
    handler: envelope.function.handler ?? '(the configured handler)',
    handedOffAt: new Date(envelope.invocation.handedOffAt).toISOString(),
    waitedMs: run.resumedAt - run.codeReadyAt,
  });
  return answer;
}
