import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FallbackHandler, FargateFallbackOptions, HandoffReceipt } from '../../src/types.js';
import { lambdaContext, lambdaEnv, memoryLogger, mockedOptions, untilAborted } from '../helpers/lambda.js';

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

// A sandbox's first handoff would load the handoff module and the SDK clients first (about 150 ms
// of a full vCPU). They are loaded `loadAheadMs` before it, once, and only by an invocation that
// runs that long: one that finishes earlier loads nothing.
describe('loading ahead of the first handoff', () => {
  afterEach(() => {
    vi.doUnmock('../../src/handoff.js');
    for (const module of ['@aws-sdk/client-ecs', '@aws-sdk/client-s3', '@aws-sdk/client-sqs'])
      vi.doUnmock(module);
    vi.resetModules();
  });

  /** Fresh modules that count what is loaded: the handoff module, and each SDK client. */
  async function counted() {
    vi.resetModules();
    const loads = { handoff: 0, ecs: 0, s3: 0, sqs: 0 };
    vi.doMock('../../src/handoff.js', async (original) => {
      loads.handoff += 1;
      return original();
    });
    // Each SDK module counted where it is imported: once, however many clients ask for it.
    for (const [name, module] of [
      ['ecs', '@aws-sdk/client-ecs'],
      ['s3', '@aws-sdk/client-s3'],
      ['sqs', '@aws-sdk/client-sqs'],
    ] as const) {
      vi.doMock(module, async (original) => {
        loads[name] += 1;
        return original();
      });
    }
    const { adapters } = await import('../helpers/adapters.js');
    return { loads, adapters };
  }

  const MARGIN = 1_000;
  const LEAD = 1_500;
  // The handoff is due 2 s in; loading starts 0.5 s in.
  const REMAINING = MARGIN + 2_000;
  const finishingAfter =
    (ms: number): FallbackHandler<unknown, unknown> =>
    () =>
      new Promise((resolve) => setTimeout(() => resolve('done in Lambda'), ms));

  function options(loadAheadMs?: number): FargateFallbackOptions {
    const { ecsClient: _ecs, s3Client: _s3, ...rest } = mockedOptions(memoryLogger(), MARGIN);
    return {
      ...rest,
      env: lambdaEnv({
        FARGATE_FALLBACK_BUCKET: 'handoff-payloads',
        FARGATE_FALLBACK_LAUNCH_QUEUE: 'https://sqs.eu-west-1.amazonaws.com/123456789012/launches',
      }),
      ...(loadAheadMs === undefined ? {} : { loadAheadMs }),
    };
  }

  for (const name of ['withFargateFallback', 'middy 6 + fargateFallback', 'middy 5 + fargateFallback']) {
    it(`${name}: loads the handoff and its ECS, S3 and SQS clients once, while a handler that comes close still runs`, async () => {
      // Prepare
      const { loads, adapters } = await counted();
      const adapter = adapters.find((a) => a.name === name);
      if (!adapter) throw new Error(`no adapter ${name}`);
      const handler = adapter.wrap(finishingAfter(1_000), options(LEAD));

      // Act: two invocations that end 1 s in, past the lead, before the handoff
      const first = await handler({}, lambdaContext(REMAINING));
      const second = await handler({}, lambdaContext(REMAINING));

      // Assess
      expect([first, second]).toEqual(['done in Lambda', 'done in Lambda']);
      expect(loads).toEqual({ handoff: 1, ecs: 1, s3: 1, sqs: 1 });
    });

    it(`${name}: loads nothing for an invocation that finishes before the lead, or with loadAheadMs 0`, async () => {
      // Prepare
      const { loads, adapters } = await counted();
      const adapter = adapters.find((a) => a.name === name);
      if (!adapter) throw new Error(`no adapter ${name}`);
      const early = adapter.wrap(finishingAfter(50), options(LEAD));
      const off = adapter.wrap(finishingAfter(1_000), options(0));

      // Act
      await early({}, lambdaContext(REMAINING));
      await off({}, lambdaContext(REMAINING));

      // Assess
      expect(loads).toEqual({ handoff: 0, ecs: 0, s3: 0, sqs: 0 });
    });
  }
});
