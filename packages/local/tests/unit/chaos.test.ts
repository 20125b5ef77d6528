import { describe, expect, it } from 'vitest';
import { describeFinding, doneTwice, gather } from '../../src/dev/chaos.js';
import type { ChaosEffect } from '../../src/dev/chaos-recorder.js';

const effect = (
  fields: Partial<ChaosEffect> & Pick<ChaosEffect, 'leg' | 'kind' | 'target' | 'at'>,
): ChaosEffect => ({
  requestId: 'r-1',
  ...fields,
});
// The handoff began at 100 and its receipt was returned at 150.
const times = { handoffBeganAt: 100, handedOffAt: 150 };

describe('what a handed-off invocation did twice', () => {
  it('finds work outside step() done in both legs, and only that', () => {
    // Prepare
    const effects = [
      effect({ leg: 'lambda', kind: 'file', target: '/tmp/started', at: 10 }),
      effect({ leg: 'lambda', kind: 'call', target: 'POST https://api.example.com/charge', at: 20 }),
      effect({ leg: 'lambda', kind: 'file', target: '/tmp/part-0', step: 'part-0', at: 30 }),
      effect({ leg: 'fargate', kind: 'file', target: '/tmp/started', at: 400 }),
      effect({ leg: 'fargate', kind: 'file', target: '/tmp/part-0', step: 'part-0', at: 410 }),
      effect({ leg: 'fargate', kind: 'call', target: 'POST https://api.example.com/receipt', at: 420 }),
    ];

    // Act
    const found = doneTwice(effects, times);

    // Assess: the write in a step and the calls made by one leg only are not findings
    expect(found).toEqual([{ kind: 'file', target: '/tmp/started' }]);
  });

  it('finds a checkpoint the runner recorded again, not one Lambda recorded while the handoff ran', () => {
    // Prepare: 1 and 2 before the handoff began; 3 while it ran (the envelope carries 2)
    const effects = [
      effect({ leg: 'lambda', kind: 'checkpoint', target: '1', at: 40 }),
      effect({ leg: 'lambda', kind: 'checkpoint', target: '2', at: 80 }),
      effect({ leg: 'lambda', kind: 'checkpoint', target: '3', at: 120 }),
      effect({ leg: 'fargate', kind: 'checkpoint', target: '3', at: 500 }),
    ];
    const restarted = [...effects, effect({ leg: 'fargate', kind: 'checkpoint', target: '1', at: 450 })];

    // Act
    const resumed = doneTwice(effects, times);
    const again = doneTwice(restarted, times);

    // Assess
    expect(resumed).toEqual([]);
    expect(again).toEqual([{ kind: 'checkpoint', target: '1' }]);
  });

  it('finds work the Lambda leg did outside a step after its receipt was returned', () => {
    // Act
    const found = doneTwice(
      [effect({ leg: 'lambda', kind: 'file', target: '/tmp/summary', at: 300 })],
      times,
    );

    // Assess
    expect(found).toEqual([{ kind: 'late', target: 'file /tmp/summary' }]);
  });

  it('gathers findings over runs and says what to do about each', () => {
    // Act
    const gathered = gather([
      [{ kind: 'call', target: 'POST https://api.example.com/charge' }],
      [],
      [{ kind: 'call', target: 'POST https://api.example.com/charge' }],
    ]);

    // Assess
    expect(gathered).toEqual([{ kind: 'call', target: 'POST https://api.example.com/charge', runs: [1, 3] }]);
    expect(describeFinding(gathered[0] as (typeof gathered)[number])).toMatch(
      /made outside step\(\) in both legs \(runs 1, 3\): make it inside a step, or give it an idempotency key/,
    );
  });
});
