import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HandoffReceipt } from '../../src/types.js';
import { lambdaContext, memoryLogger, mockedOptions, untilAborted } from '../helpers/lambda.js';

// The handoff mechanism is imported on the first handoff. A deployment that lost its file must
// still fail loudly, with a HandoffError Lambda records, not with a bare import error.
describe('the handoff module, loaded on first use', () => {
  afterEach(() => {
    vi.doUnmock('../../src/handoff.js');
    vi.resetModules();
  });

  it('fails the invocation with a HandoffError naming the package when it cannot be loaded', async () => {
    // Prepare
    vi.resetModules();
    vi.doMock('../../src/handoff.js', () => {
      throw new Error('Cannot find module ./handoff-XYZ.js');
    });
    const { withFargateFallback } = await import('../../src/wrapper.js');
    const logger = memoryLogger();
    const handler = withFargateFallback(untilAborted, mockedOptions(logger, 1_000));

    // Act
    const outcome = handler({}, lambdaContext(1_600));

    // Assess
    await expect(outcome).rejects.toMatchObject({
      name: 'HandoffError',
      reason: 'sdk-unavailable',
      message: expect.stringContaining('@immortal-lambda/middleware could not be loaded'),
    });
  });

  it('loads the module once for every later handoff of the process', async () => {
    // Prepare
    vi.resetModules();
    let loads = 0;
    vi.doMock('../../src/handoff.js', async (original) => {
      loads += 1;
      return original();
    });
    const { createCore } = await import('../../src/core.js');
    const options = mockedOptions(memoryLogger(), 1_000);
    let stops = 0;
    const ecsClient = {
      send: async () => {
        stops += 1;
        return {};
      },
    } as unknown as NonNullable<typeof options.ecsClient>;
    const core = createCore({ ...options, ecsClient }, options.env ?? {});
    const target = {
      event: {},
      context: lambdaContext(5_000),
      startedAt: Date.now(),
      deadlineAt: Date.now() + 5_000,
      handOffAt: Date.now(),
      immediate: false,
    };

    // Act: two stops at once, then one more
    const started = (taskArn: string) => ({ status: 'handed-off', taskArn }) as HandoffReceipt;
    await Promise.all([
      core.handoff.withdraw(started('arn:a'), target),
      core.handoff.withdraw(started('arn:b'), target),
    ]);
    await core.handoff.withdraw(started('arn:c'), target);

    // Assess
    expect(loads).toBe(1);
    expect(stops).toBe(3);
  });
});
