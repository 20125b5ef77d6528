import { type OutcomeRecord, outcomeRecord } from '@immortal-lambda/protocol';
import { describe, expect, it } from 'vitest';
import {
  decide,
  memoryLimits,
  type StoppedRunner,
  screenEvent,
  toldStandbyVerdict,
} from '../../src/safety-net/watchdog-verdict.js';

const relaunchable: StoppedRunner['verdict'] = {
  kind: 'relaunch',
  reason: 'SpotInterruption',
  onDemand: true,
  exitCode: 143,
};
const handlerError: StoppedRunner['verdict'] = { kind: 'result', reason: 'the runner exited 1', exitCode: 1 };
const exited0: StoppedRunner['verdict'] = { kind: 'success', reason: 'the runner exited 0' };
const cancelled: StoppedRunner['verdict'] = {
  kind: 'cancelled',
  reason: 'cancelled: StopTask',
  exitCode: 143,
};

const record = (fields: Partial<OutcomeRecord> & Pick<OutcomeRecord, 'status' | 'attempt' | 'writer'>) =>
  outcomeRecord({
    functionName: 'report',
    requestId: 'r-1',
    updatedAt: '2026-12-02T00:00:00.000Z',
    ...fields,
  });

describe('the watchdog decides from the stop, the attempt and the records alone', () => {
  it.each([
    ['an exit 0', exited0, 1, [], { kind: 'succeeded' }],
    [
      'a relaunchable stop whose runner recorded success',
      relaunchable,
      1,
      [record({ status: 'succeeded', attempt: 1, writer: 'runner' })],
      { kind: 'succeeded' },
    ],
    [
      'a handler error the runner recorded',
      handlerError,
      1,
      [
        record({
          status: 'failed',
          attempt: 1,
          writer: 'runner',
          error: { name: 'E', message: 'm', retryable: false },
        }),
      ],
      { kind: 'result', record: false },
    ],
    ['a result nobody recorded', handlerError, 1, [], { kind: 'result', record: true }],
    [
      'a relaunchable stop after a non-retryable failure record',
      relaunchable,
      2,
      [
        record({
          status: 'failed',
          attempt: 2,
          writer: 'runner',
          error: { name: 'E', message: 'm', retryable: false },
        }),
      ],
      { kind: 'result', record: false },
    ],
    ['a task cancelled by StopTask', cancelled, 1, [], { kind: 'result', record: true }],
    [
      'a cancelled task whose runner recorded a retryable failure',
      cancelled,
      1,
      [
        record({
          status: 'failed',
          attempt: 1,
          writer: 'runner',
          error: { name: 'Stopped', message: 'SIGTERM', retryable: true },
        }),
      ],
      { kind: 'result', record: true },
    ],
    [
      'a cancelled task whose runner recorded a final failure',
      cancelled,
      1,
      [
        record({
          status: 'failed',
          attempt: 1,
          writer: 'runner',
          error: { name: 'E', message: 'm', retryable: false },
        }),
      ],
      { kind: 'result', record: false },
    ],
    [
      'a cancelled task whose handler finished in its grace period',
      cancelled,
      1,
      [record({ status: 'succeeded', attempt: 1, writer: 'runner' })],
      { kind: 'succeeded' },
    ],
    [
      'a standby told to go that exited 0 unrecorded',
      toldStandbyVerdict(exited0),
      1,
      [],
      { kind: 'relaunch', next: 2 },
    ],
    [
      'a standby told to go whose runner recorded success',
      toldStandbyVerdict(exited0),
      1,
      [record({ status: 'succeeded', attempt: 1, writer: 'runner' })],
      { kind: 'succeeded' },
    ],
    [
      'an event delivered again after the relaunch',
      relaunchable,
      1,
      [record({ status: 'relaunching', attempt: 2, writer: 'watchdog', taskArn: 'arn:task/2' })],
      { kind: 'already-relaunched', taskArn: 'arn:task/2' },
    ],
    ['the last attempt', relaunchable, 3, [], { kind: 'gave-up' }],
    [
      'an interruption with attempts left',
      relaunchable,
      1,
      [],
      { kind: 'relaunch', next: 2, onDemand: true },
    ],
    [
      'a retryable failure record with attempts left',
      { ...relaunchable, onDemand: false },
      2,
      [
        record({
          status: 'failed',
          attempt: 2,
          writer: 'runner',
          error: { name: 'E', message: 'm', retryable: true },
        }),
      ],
      { kind: 'relaunch', next: 3, onDemand: false },
    ],
  ] as const)('%s', (_name, verdict, attempt, records, expected) => {
    // Act
    const decision = decide({ verdict, attempt, maxAttempts: 3, records: [...records] });

    // Assess
    expect(decision).toMatchObject(expected);
  });

  const outOfMemory: StoppedRunner['verdict'] = {
    kind: 'relaunch',
    reason: 'EssentialContainerExited: OutOfMemoryError: Container killed due to memory usage',
    onDemand: false,
    exitCode: 137,
    outOfMemory: true,
  };

  it.each([
    ['under the ceiling: twice the memory', { cpu: 1024, memory: 2048 }, 8192, { cpu: 1024, memory: 4096 }],
    ['up to the ceiling, not past it', { cpu: 1024, memory: 6144 }, 8192, { cpu: 1024, memory: 8192 }],
    ['with the CPU the memory needs', { cpu: 256, memory: 2048 }, 4096, { cpu: 512, memory: 4096 }],
  ])('relaunches a task killed for its memory with more, %s', (_what, size, ceiling, expected) => {
    // Act
    const decision = decide({
      verdict: outOfMemory,
      attempt: 1,
      maxAttempts: 3,
      records: [],
      memory: { size, ceiling },
    });

    // Assess
    expect(decision).toEqual({
      kind: 'relaunch',
      reason: outOfMemory.reason,
      next: 2,
      onDemand: false,
      size: expected,
    });
  });

  it.each([
    [
      'at the ceiling',
      { cpu: 1024, memory: 8192 },
      8192,
      /at 8192 MiB, and FARGATE_FALLBACK_MAX_MEMORY_MIB \(8192 MiB\) allows no more/,
    ],
    [
      'with no ceiling set',
      { cpu: 1024, memory: 2048 },
      undefined,
      /at 2048 MiB, and FARGATE_FALLBACK_MAX_MEMORY_MIB is not set/,
    ],
  ])(
    'records running out of memory %s as the result, never the same death again',
    (_what, size, ceiling, reason) => {
      // Act
      const decision = decide({
        verdict: outOfMemory,
        attempt: 1,
        maxAttempts: 3,
        records: [],
        memory: { size, ceiling },
      });

      // Assess
      expect(decision).toMatchObject({ kind: 'result', record: true });
      expect(decision.reason).toMatch(reason);
    },
  );

  it('reads the size a task ran with from its overrides first', () => {
    expect(
      memoryLimits({ cpu: '1024', memory: '2048', overrides: { cpu: '2048', memory: '4096' } }, 8192),
    ).toEqual({
      size: { cpu: 2048, memory: 4096 },
      ceiling: 8192,
    });
    expect(memoryLimits({}, 8192)).toEqual({ size: undefined, ceiling: 8192 });
  });

  it('says how often the task stopped when it gives up', () => {
    // Act
    const decision = decide({ verdict: relaunchable, attempt: 3, maxAttempts: 3, records: [] });

    // Assess
    expect(decision.reason).toBe(
      'the runner task stopped before a result 3 times, the last time: SpotInterruption',
    );
  });
});

describe('screening an event', () => {
  it.each([
    ['not an ECS event', { source: 'aws.s3' }, 'not an ECS Task State Change event'],
    [
      'a task without an envelope',
      {
        source: 'aws.ecs',
        'detail-type': 'ECS Task State Change',
        detail: { taskArn: 't', lastStatus: 'STOPPED' },
      },
      'task t carries no FARGATE_FALLBACK_ENVELOPE',
    ],
  ])('ignores %s', (_name, event, reason) => {
    // Act
    const screened = screenEvent(event);

    // Assess
    expect(screened).toEqual({ ignored: { action: 'ignored', reason } });
  });

  it('follows a stopped runner task with its override and verdict', () => {
    // Prepare
    const detail = {
      lastStatus: 'STOPPED',
      stopCode: 'SpotInterruption',
      containers: [{ name: 'runner', exitCode: 143 }],
      overrides: {
        containerOverrides: [
          { name: 'runner', environment: [{ name: 'FARGATE_FALLBACK_ENVELOPE', value: '{}' }] },
        ],
      },
    };

    // Act
    const screened = screenEvent({ source: 'aws.ecs', 'detail-type': 'ECS Task State Change', detail });

    // Assess
    expect(screened).toMatchObject({
      override: { name: 'runner' },
      verdict: { kind: 'relaunch', onDemand: true },
    });
  });
});
