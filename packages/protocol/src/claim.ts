/** Which leg of an invocation runs its handler to the end: Lambda's, or the pre-warmed runner's. */
export type Leg = 'lambda' | 'runner';

/** The kind of the object a leg creates to claim an invocation (`claim.json` beside its records). */
export const CLAIM_KIND = 'immortal-lambda.claim';

/**
 * Where a claim is made: a create that succeeds only when the object does not exist yet (S3's
 * `If-None-Match: *`: `true` created, `false` it existed: 412), and a read of what is there.
 */
export interface ClaimStore {
  create(body: string): Promise<boolean>;
  read(): Promise<string | undefined>;
}

/**
 * Claims an invocation for one leg, once: the first create of the claim object wins, and both legs
 * read the same winner. A pre-warmed runner claims before it calls the handler; the wrapper claims
 * when the handler finished in Lambda while the runner was being told to go. So exactly one leg
 * completes: the loser never calls the handler (the runner) or gives up its result for the
 * handoff's (the wrapper). A create that fails without an answer may still have landed: the object
 * is read before trying again. Resolves to the winning leg; rejects when no answer came in
 * `attempts` tries.
 *
 * @example
 * ```ts
 * import { claimInvocation } from '@immortal-lambda/protocol';
 * const winner = await claimInvocation(store, 'runner', requestId, Date.now());
 * if (winner !== 'runner') return notNeeded('the invocation finished in Lambda');
 * ```
 */
export async function claimInvocation(
  store: ClaimStore,
  leg: Leg,
  requestId: string,
  now: number,
  attempts = 3,
): Promise<Leg> {
  const body = JSON.stringify({ kind: CLAIM_KIND, requestId, leg, at: new Date(now).toISOString() });
  let failure: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      if (await store.create(body)) return leg;
    } catch (error) {
      failure = error;
    }
    const owner = claimOwner(await store.read().catch(() => undefined), requestId);
    if (owner) return owner;
  }
  throw new Error(`the claim of invocation ${requestId} got no answer in ${attempts} tries`, {
    cause: failure,
  });
}

/** The leg a claim object names, when it is a claim of this invocation. */
function claimOwner(text: string | undefined, requestId: string): Leg | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as { kind?: unknown; requestId?: unknown; leg?: unknown };
    if (value.kind !== CLAIM_KIND || value.requestId !== requestId) return undefined;
    return value.leg === 'lambda' || value.leg === 'runner' ? value.leg : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether an S3 error is the refusal of a conditional create whose key exists (412
 * `PreconditionFailed`): the claim was made before.
 *
 * @example
 * ```ts
 * import { isPreconditionFailed } from '@immortal-lambda/protocol';
 * const created = await put().then(() => true, (error) => (isPreconditionFailed(error) ? false : Promise.reject(error)));
 * ```
 */
export function isPreconditionFailed(error: unknown): boolean {
  return (
    (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode === 412
  );
}
