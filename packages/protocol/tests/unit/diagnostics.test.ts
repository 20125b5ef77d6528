import { AsyncLocalStorage } from 'node:async_hooks';
import { tracingChannel } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { DIAGNOSTICS, JournalRecorder } from '../../src/index.js';

describe('the diagnostics channels', () => {
  it("runs each step's work in the context a subscriber binds to the step, and skips replayed steps", async () => {
    // Prepare
    const store = new AsyncLocalStorage<string>();
    const start = tracingChannel(DIAGNOSTICS.step).start;
    const bind = (context: unknown) => (context as { name: string }).name;
    start.bindStore(store, bind);
    const journal = new JournalRecorder({ steps: { done: { result: 1 } } });
    const seen: (string | undefined)[] = [];

    try {
      // Act
      await journal.step('load', async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        seen.push(store.getStore());
      });
      await journal.step('done', async () => {
        seen.push('replayed step ran');
      });
      seen.push(store.getStore());
    } finally {
      start.unbindStore(store);
    }

    // Assess: inside the step its name, after it none; the replayed step's work never ran
    expect(seen).toEqual(['load', undefined]);
  });
});
