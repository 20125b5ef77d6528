import { claimInvocation, type Envelope, formatS3Uri, type Leg, parseS3Uri } from '@immortal-lambda/protocol';
import { createJson, getObjectIfPresent } from '../s3.js';
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
    ...(settings.standbyGoAt ? { goAt: settings.standbyGoAt } : {}),
  });
  if ('notNeeded' in answer) return answer;
  const envelope = answer.go;
  if ((await claimFor(run, settings, envelope)) === 'lambda')
    return { notNeeded: 'the invocation finished in Lambda while this task was told to go' };
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

/**
 * Claims the invocation for this runner before its handler is called: the wrapper claims it when
 * the handler finished in Lambda while the task was being told to go, and only one claim wins.
 * A claim that gets no answer lets the run go on (a lost invocation is worse than a doubled one).
 */
async function claimFor(
  run: Run,
  settings: RunnerSettings & { standby: string },
  envelope: Envelope,
): Promise<Leg> {
  const { bucket, key } = parseS3Uri(settings.standby);
  const at = { bucket, key: key.replace(/resume\.json$/, 'claim.json') };
  const s3 = () => run.deps.s3(settings.aws);
  try {
    return await claimInvocation(
      {
        create: (body) => createJson(s3, at.bucket, at.key, body),
        read: () => getObjectIfPresent(s3, at.bucket, at.key),
      },
      'runner',
      envelope.invocation.awsRequestId,
      run.deps.now(),
    );
  } catch (error) {
    run.log('ERROR', 'The invocation could not be claimed for this task; it runs here', {
      ...run.ids(),
      claim: formatS3Uri(at),
      error: { name: (error as Error).name, message: (error as Error).message },
    });
    return 'runner';
  }
}
