import type { S3Client } from '@aws-sdk/client-s3';
import { type InvocationStatus, summarizeOutcomes } from '@immortal-lambda/protocol';
import type { ResolvedConfig } from './config.js';
import type { HandoffClients } from './handoff/clients.js';
import type { IsolatedLogger } from './logger.js';
import { readOutcomes } from './outcome-store.js';
import type { Clock } from './types.js';

/** What a look-up of a held batch uses: the settings, the clock, the log and the handoff's clients. */
export interface BatchLookup {
  config: ResolvedConfig;
  clock: Clock;
  logger: IsolatedLogger;
  clients: HandoffClients;
}

/** Statuses of an invocation that is still working on the batch it holds. */
const IN_WORK: ReadonlySet<InvocationStatus> = new Set([
  'standby',
  'queued',
  'handed-off',
  'running',
  'relaunching',
]);

/**
 * Where the invocation that holds a batch (or a message of one) is: still at work, finished with
 * a result, or neither (it failed, was not needed, or is long gone), when its batch runs again.
 */
export type Holder = { kind: 'in-work' } | { kind: 'finished'; result: unknown } | { kind: 'gone' };

/**
 * The holder's state from its records. Without any record yet, a marker younger than `freshMs`
 * counts as at work (the handoff is so recent that its first record is still being written). A
 * result too large for its record is not read: the batch then runs again, at least once.
 */
export async function holderOf(
  lookup: Pick<BatchLookup, 'config' | 'clock'>,
  s3: S3Client,
  at: { bucket: string; functionName: string; requestId: string; heldAt: number; freshMs: number },
): Promise<Holder> {
  const records = await readOutcomes(s3, {
    bucket: at.bucket,
    prefix: lookup.config.outcomePrefix,
    functionName: at.functionName,
    requestId: at.requestId,
  });
  const view = summarizeOutcomes(records);
  if (view === undefined)
    return lookup.clock.now() - at.heldAt < at.freshMs ? { kind: 'in-work' } : { kind: 'gone' };
  if (IN_WORK.has(view.status)) return { kind: 'in-work' };
  if (view.status === 'succeeded' && 'result' in view) return { kind: 'finished', result: view.result };
  return { kind: 'gone' };
}
