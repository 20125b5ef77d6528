import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { DeadlineTimer, type Due } from '../../src/deadline-timer.js';
import type { Clock } from '../../src/types.js';

/** A clock whose timers fire only when the test says so, with handles that record ref/unref. */
function manualClock() {
  let now = 1_000;
  const armed: {
    callback: () => void;
    at: number;
    handle: { refs: string[]; ref(): void; unref(): void };
  }[] = [];
  const cleared: unknown[] = [];
  const clock: Clock = {
    now: () => now,
    setTimeout: (callback, ms) => {
      const handle = {
        refs: [] as string[],
        ref() {
          this.refs.push('ref');
        },
        unref() {
          this.refs.push('unref');
        },
      };
      armed.push({ callback, at: now + ms, handle });
      return handle;
    },
    clearTimeout: (handle) => {
      cleared.push(handle);
    },
  };
  const live = () => armed.filter((timer) => !cleared.includes(timer.handle));
  return {
    clock,
    armed,
    live,
    /** Moves the clock to the next live timer and fires it. */
    fireNext() {
      const next = live().sort((a, b) => a.at - b.at)[0];
      if (!next) throw new Error('no timer armed');
      now = Math.max(now, next.at);
      cleared.push(next.handle);
      next.callback();
    },
    advance(ms: number) {
      now += ms;
    },
  };
}

const due = (dueAt: number, fired: number[]): Due => ({ dueAt, onDue: () => fired.push(dueAt) });

describe('DeadlineTimer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('arms one timer for the first invocation and reuses it for a later one', () => {
    // Prepare
    const manual = manualClock();
    const timer = new DeadlineTimer(manual.clock);
    const fired: number[] = [];
    const first = due(5_000, fired);

    // Act
    timer.watch(first);
    timer.unwatch(first);
    timer.watch(due(6_000, fired));

    // Assess
    expect(manual.armed).toHaveLength(1);
    expect(manual.armed[0]?.at).toBe(5_000);
    expect(manual.armed[0]?.handle.refs).toEqual(['unref', 'ref']);
  });

  it('fires nothing for a stale time and re-arms for the invocation still watched', () => {
    // Prepare
    const manual = manualClock();
    const timer = new DeadlineTimer(manual.clock);
    const fired: number[] = [];
    const first = due(5_000, fired);
    timer.watch(first);
    timer.unwatch(first);
    timer.watch(due(6_000, fired));

    // Act
    manual.fireNext();
    const afterStale = [...fired];
    manual.fireNext();

    // Assess
    expect(afterStale).toEqual([]);
    expect(manual.armed.map((t) => t.at)).toEqual([5_000, 6_000]);
    expect(fired).toEqual([6_000]);
  });

  it('re-arms at once for an invocation due before the armed time', () => {
    // Prepare
    const manual = manualClock();
    const timer = new DeadlineTimer(manual.clock);
    const fired: number[] = [];
    timer.watch(due(9_000, fired));

    // Act
    timer.watch(due(2_000, fired));
    manual.fireNext();

    // Assess
    expect(manual.live().map((t) => t.at)).toEqual([9_000]);
    expect(fired).toEqual([2_000]);
  });

  it('fires everything due by the armed time even when the wall clock reads a little earlier', () => {
    // Prepare
    const manual = manualClock();
    const timer = new DeadlineTimer(manual.clock);
    const fired: number[] = [];
    timer.watch(due(3_000, fired));
    timer.watch(due(3_000, fired));

    // Act: the callback runs without the clock having moved
    manual.armed[0]?.callback();

    // Assess
    expect(fired).toEqual([3_000, 3_000]);
  });

  it('never fires an invocation that finished in time', () => {
    // Prepare
    const manual = manualClock();
    const timer = new DeadlineTimer(manual.clock);
    const fired: number[] = [];
    const finished = due(4_000, fired);
    timer.watch(finished);

    // Act
    timer.unwatch(finished);
    manual.fireNext();

    // Assess
    expect(fired).toEqual([]);
    expect(manual.live()).toEqual([]);
  });

  it('arms anew under fake timers installed after its timer was armed with the real ones', async () => {
    // Prepare
    const timer = new DeadlineTimer(systemClock);
    const fired: number[] = [];
    const first = due(Date.now() + 60_000, fired);
    timer.watch(first);
    timer.unwatch(first);
    vi.useFakeTimers();
    const second = due(Date.now() + 120_000, fired);

    // Act
    timer.watch(second);
    await vi.advanceTimersByTimeAsync(120_000);

    // Assess
    expect(fired).toEqual([second.dueAt]);
  });
  describe('with work ahead of the first handoff', () => {
    const ahead = (leadMs: number) => {
      const near: number[] = [];
      return { near, ahead: { leadMs, onNear: () => near.push(near.length + 1) } };
    };

    it('runs it once, leadMs before the first invocation that comes that close, then fires at the due time', () => {
      // Prepare
      const manual = manualClock();
      const { near, ahead: work } = ahead(3_000);
      const timer = new DeadlineTimer(manual.clock, work);
      const fired: number[] = [];
      timer.watch(due(10_000, fired));

      // Act
      manual.fireNext();
      const afterFirstWake = { near: [...near], fired: [...fired] };
      manual.fireNext();
      timer.watch(due(20_000, fired));
      manual.fireNext();

      // Assess
      expect(afterFirstWake).toEqual({ near: [1], fired: [] });
      expect(manual.armed.map((t) => t.at)).toEqual([7_000, 10_000, 20_000]);
      expect(near).toEqual([1]);
      expect(fired).toEqual([10_000, 20_000]);
    });

    it('never runs it while every invocation finishes before coming that close', () => {
      // Prepare
      const manual = manualClock();
      const { near, ahead: work } = ahead(3_000);
      const timer = new DeadlineTimer(manual.clock, work);
      const fired: number[] = [];
      const finished = due(10_000, fired);
      timer.watch(finished);

      // Act
      timer.unwatch(finished);
      manual.fireNext();
      const later = due(30_000, fired);
      timer.watch(later);

      // Assess: still pending, so the next invocation wakes the timer early again
      expect(near).toEqual([]);
      expect(manual.live().map((t) => t.at)).toEqual([27_000]);
      expect(fired).toEqual([]);
    });

    it('runs it before an invocation already within the lead is handed off', () => {
      // Prepare
      const manual = manualClock();
      const order: string[] = [];
      const timer = new DeadlineTimer(manual.clock, { leadMs: 3_000, onNear: () => order.push('near') });

      // Act: due 1 s from now, inside the 3 s lead
      timer.watch({ dueAt: 2_000, onDue: () => order.push('due') });
      manual.fireNext();
      manual.fireNext();

      // Assess
      expect(order).toEqual(['near', 'due']);
    });

    it('does nothing ahead with a lead of 0', () => {
      // Prepare
      const manual = manualClock();
      const { near, ahead: work } = ahead(0);
      const timer = new DeadlineTimer(manual.clock, work);
      const fired: number[] = [];

      // Act
      timer.watch(due(10_000, fired));
      manual.fireNext();

      // Assess
      expect(manual.armed.map((t) => t.at)).toEqual([10_000]);
      expect(near).toEqual([]);
      expect(fired).toEqual([10_000]);
    });
  });
});
