import type { LocalControlPlane, TaskStateChangeEvent } from '@immortal-lambda/local';
import type { taskWatchdog, WatchdogOutcome } from '@immortal-lambda/middleware/safety-net';
import { getInvocationStatus, type InvocationStatusResult } from '@immortal-lambda/middleware/status';

/**
 * What the construct's EventBridge rule does: every STOPPED runner task goes to the watchdog.
 * Each verdict's promise goes to `watched`, and each verdict, once given, to `verdicts`.
 */
export function watchStoppedTasks(
  plane: LocalControlPlane,
  watchdog: ReturnType<typeof taskWatchdog>,
  watched: Promise<WatchdogOutcome>[],
  verdicts: WatchdogOutcome[],
): void {
  plane.on('task-state-change', (event: TaskStateChangeEvent) => {
    if (event.detail.lastStatus !== 'STOPPED') return;
    const verdict = watchdog(event, { getRemainingTimeInMillis: () => 60_000 });
    watched.push(verdict);
    verdict.then(
      (given) => verdicts.push(given),
      () => undefined,
    );
  });
}

/** Resolves with an invocation's status once it is one of `states`, read from its records. */
export async function statusBecomes(
  at: { functionName: string; requestId: string; bucket: string },
  states: InvocationStatusResult['status'][],
  timeoutMs = 30_000,
): Promise<InvocationStatusResult> {
  const started = Date.now();
  for (;;) {
    const now = await getInvocationStatus(at, { bucket: at.bucket });
    if (now && states.includes(now.status)) return now;
    if (Date.now() - started > timeoutMs) {
      throw new Error(`${at.requestId} is ${now?.status}, never ${states.join(' or ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
