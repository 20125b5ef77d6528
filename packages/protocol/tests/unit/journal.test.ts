import { describe, expect, it } from 'vitest';
import { JournalRecorder, MAX_JOURNAL_BYTES, MAX_JOURNAL_STEPS, StepError } from '../../src/index.js';

describe('JournalRecorder', () => {
  it('runs a step once and answers it from the journal in a later run, by name', async () => {
    // Prepare
    const first = new JournalRecorder();
    let runs = 0;
    const load = () => {
      runs += 1;
      return { rows: 3 };
    };

    // Act
    const a = await first.step('load', load);
    const resumed = new JournalRecorder(first.snapshot());
    const b = await resumed.step('load', load);
    const c = await resumed.step('other', () => undefined);

    // Assess
    expect(a).toEqual({ rows: 3 });
    expect(b).toEqual({ rows: 3 });
    expect(c).toBeUndefined();
    expect(runs).toBe(1);
    expect([first.ran, resumed.replayed, resumed.ran]).toEqual([1, 1, 1]);
    expect(resumed.snapshot()).toEqual({ steps: { load: { result: { rows: 3 } }, other: {} } });
  });

  it.each(['constructor', 'toString', '__proto__', 'valueOf', 'hasOwnProperty'])(
    'runs a step named %s, records it and answers it later from the journal, like any other',
    async (name) => {
      // Prepare
      const first = new JournalRecorder();

      // Act
      const ran = await first.step(name, () => ({ rows: 3 }));
      const saved = JSON.parse(JSON.stringify(first.snapshot()));
      let calls = 0;
      const replayed = await new JournalRecorder(saved).step(name, () => {
        calls += 1;
        return { rows: 4 };
      });

      // Assess
      expect(ran).toEqual({ rows: 3 });
      expect(first.ran).toBe(1);
      expect(Object.keys(saved.steps)).toEqual([name]);
      expect(replayed).toEqual({ rows: 3 });
      expect(calls).toBe(0);
    },
  );

  it('records a copy: changing the result afterwards does not change the journal', async () => {
    const journal = new JournalRecorder();
    const result = await journal.step('s', () => ({ n: 1 }));
    result.n = 2;
    expect(journal.snapshot().steps.s).toEqual({ result: { n: 1 } });
  });

  it('does not record a step that threw, so it runs again', async () => {
    const journal = new JournalRecorder();
    await expect(journal.step('flaky', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(journal.snapshot().steps).toEqual({});
  });

  it('refuses a duplicate name in one run, an empty name and a missing function, saying what to do', async () => {
    const journal = new JournalRecorder();
    await journal.step('a', () => 1);
    await expect(journal.step('a', () => 2)).rejects.toThrow(/already used in this run.*add the item's id/);
    await expect(journal.step('', () => 1)).rejects.toBeInstanceOf(StepError);
    await expect(journal.step('x', undefined as never)).rejects.toThrow(/no function to run/);
  });

  it('refuses a result or a checkpoint JSON cannot carry, where the step ends', async () => {
    const journal = new JournalRecorder();
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    await expect(journal.step('big', () => 10n)).rejects.toThrow(
      /the result of step "big" cannot be recorded as JSON/,
    );
    expect(() => journal.checkpoint(cycle)).toThrow(/the checkpoint cannot be recorded as JSON/);
  });

  it('keeps the last checkpoint, from an earlier run or this one', () => {
    const first = new JournalRecorder();
    expect(first.lastCheckpoint).toBeUndefined();
    first.checkpoint({ page: 4 });
    const resumed = new JournalRecorder(first.snapshot());
    expect(resumed.lastCheckpoint).toEqual({ page: 4 });
    resumed.checkpoint({ page: 5 });
    expect(resumed.lastCheckpoint).toEqual({ page: 5 });
  });

  it('tells each change, for the runner to persist', async () => {
    const seen: unknown[] = [];
    const journal = new JournalRecorder(undefined, (snapshot) => seen.push(snapshot));
    await journal.step('a', () => 1);
    journal.checkpoint(7);
    expect(seen).toEqual([
      { steps: { a: { result: 1 } } },
      { steps: { a: { result: 1 } }, checkpoint: { value: 7 } },
    ]);
  });

  it('enforces its limits with a clear error', async () => {
    // Prepare
    const many = new JournalRecorder({
      steps: Object.fromEntries(Array.from({ length: MAX_JOURNAL_STEPS }, (_, i) => [`s${i}`, {}])),
    });
    const large = new JournalRecorder();

    // Act
    const tooMany = many.step('one-more', () => 1);
    const tooLarge = large.step('blob', () => 'x'.repeat(MAX_JOURNAL_BYTES));

    // Assess
    await expect(tooMany).rejects.toThrow(new RegExp(`holds at most ${MAX_JOURNAL_STEPS}`));
    await expect(tooLarge).rejects.toThrow(/over its limit of 262144: record small results/);
  });
});
