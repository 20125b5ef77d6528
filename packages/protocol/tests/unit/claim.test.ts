import { describe, expect, it } from 'vitest';
import { type ClaimStore, claimInvocation } from '../../src/claim.js';

/** A store that creates once, as S3's `If-None-Match: *` does, and can fail as asked. */
function memoryStore(options: { failCreates?: number; landEvenIfFailed?: boolean } = {}) {
  let object: string | undefined;
  let failures = options.failCreates ?? 0;
  const store: ClaimStore = {
    create: async (body) => {
      if (failures > 0) {
        failures--;
        if (options.landEvenIfFailed && object === undefined) object = body;
        throw new Error('socket hang up');
      }
      if (object !== undefined) return false;
      object = body;
      return true;
    },
    read: async () => object,
  };
  return store;
}

describe('claiming an invocation for one leg', () => {
  it('gives it to the first leg to claim, and both legs read the same winner', async () => {
    // Prepare
    const store = memoryStore();

    // Act
    const [runner, lambda] = await Promise.all([
      claimInvocation(store, 'runner', 'r-1', 0),
      claimInvocation(store, 'lambda', 'r-1', 0),
    ]);

    // Assess
    expect(runner).toBe('runner');
    expect(lambda).toBe('runner');
  });

  it('reads back a create that failed without an answer but landed, instead of losing its own claim', async () => {
    const store = memoryStore({ failCreates: 1, landEvenIfFailed: true });
    expect(await claimInvocation(store, 'lambda', 'r-2', 0)).toBe('lambda');
  });

  it('tries a failed create again', async () => {
    const store = memoryStore({ failCreates: 2 });
    expect(await claimInvocation(store, 'runner', 'r-3', 0)).toBe('runner');
  });

  it('ignores a claim object of another invocation, and fails when no answer comes', async () => {
    // Prepare: the object exists but names another request, so no create can succeed.
    const store: ClaimStore = {
      create: async () => false,
      read: async () => JSON.stringify({ kind: 'immortal-lambda.claim', requestId: 'other', leg: 'lambda' }),
    };

    // Act
    const claiming = claimInvocation(store, 'runner', 'r-4', 0);

    // Assess
    await expect(claiming).rejects.toThrow(/the claim of invocation r-4 got no answer in 3 tries/);
  });
});
