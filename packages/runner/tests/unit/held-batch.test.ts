import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  HELD_MESSAGE_KIND,
  HELD_MESSAGE_VERSION,
  RUNNER_EXTEND_EVERY_MS,
  RUNNER_VISIBILITY_S,
} from '@immortal-lambda/protocol';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { handedOffEnvelope } from '../../../local/src/envelopes.js';
import { EXIT_CODES } from '../../src/exit-codes.js';
import { HeldBatch } from '../../src/run/held-batch.js';
import { Run } from '../../src/run/run.js';
import type { RunnerDependencies } from '../../src/runner.js';
import type { RunnerSettings } from '../../src/settings.js';

const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/imports';
const START = Date.parse('2026-12-03T00:00:00Z');

const record = (id: string) => ({
  messageId: id,
  receiptHandle: `handle-${id}`,
  body: '{}',
  attributes: { ApproximateReceiveCount: '1' },
  eventSource: 'aws:sqs',
  eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:imports',
});

describe('HeldBatch: the SQS batch the wrapper held for this run', () => {
  const s3 = mockClient(S3Client);
  let now: number;
  let sent: { command: string; input: Record<string, unknown> }[];
  let timers: { callback: () => void; ms: number }[];
  let lines: string[];
  let run: Run;
  let settings: RunnerSettings;

  const prepare = (options: { held?: boolean; bucket?: string; queueTimeoutS?: number } = {}) => {
    const envelope = handedOffEnvelope({
      functionName: 'imports',
      requestId: 'held-1',
      event: { Records: ['m0', 'm1', 'm2'].map(record) },
    });
    envelope.invocation.startedAt = START;
    if (options.held !== false) envelope.held = 'sqs';
    const deps = {
      env: {},
      now: () => now,
      s3: () => new S3Client({ region: 'eu-west-1' }),
      setTimeout: (callback: () => void, ms: number) => timers.push({ callback, ms }),
      clearTimeout: () => {
        timers.length = 0;
      },
      onStop: () => () => undefined,
      write: (line: string) => lines.push(line),
      sqs: () => ({
        send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
          sent.push({ command: command.constructor.name, input: command.input });
          if (command.constructor.name === 'GetQueueAttributesCommand')
            return { Attributes: { VisibilityTimeout: String(options.queueTimeoutS ?? 45) } };
          return { Successful: [], Failed: [] };
        },
      }),
    } as unknown as RunnerDependencies;
    run = new Run(deps);
    run.envelope = envelope;
    settings = {
      aws: { maxAttempts: 1, timeoutMs: 1_000 },
      outcomes: { bucket: options.bucket, prefix: 'immortal-lambda/outcomes/' },
    } as RunnerSettings;
  };

  const handles = (entry: { input: Record<string, unknown> } | undefined) =>
    ((entry?.input.Entries ?? []) as { ReceiptHandle: string; VisibilityTimeout?: number }[]).map((e) => [
      e.ReceiptHandle,
      e.VisibilityTimeout,
    ]);

  beforeEach(() => {
    s3.reset();
    now = START + 60_000;
    sent = [];
    timers = [];
    lines = [];
  });

  it('takes nothing over when the envelope holds no batch', async () => {
    // Prepare
    prepare({ held: false });

    // Act
    const held = await HeldBatch.open(run, settings);

    // Assess
    expect(held).toBeUndefined();
    expect(sent).toEqual([]);
  });

  it('keeps every message invisible at once, and again each time its timer fires', async () => {
    // Prepare
    prepare();

    // Act
    await HeldBatch.open(run, settings);
    now += RUNNER_EXTEND_EVERY_MS;
    timers.shift()?.callback();
    await new Promise((resolve) => setTimeout(resolve, 10));

    // Assess
    expect(sent.map((entry) => entry.command)).toEqual([
      'ChangeMessageVisibilityBatchCommand',
      'ChangeMessageVisibilityBatchCommand',
    ]);
    expect(handles(sent[1])).toEqual(['m0', 'm1', 'm2'].map((id) => [`handle-${id}`, RUNNER_VISIBILITY_S]));
    expect(timers.map((timer) => timer.ms)).toEqual([RUNNER_EXTEND_EVERY_MS]);
  });

  it('uses the receipt handle a redelivery left in the marker', async () => {
    // Prepare
    prepare({ bucket: 'payloads' });
    s3.on(GetObjectCommand).callsFake((input: { Key: string }) => {
      const id = input.Key.split('/').pop()?.replace('.json', '') ?? '';
      const marker = {
        kind: HELD_MESSAGE_KIND,
        version: HELD_MESSAGE_VERSION,
        functionName: 'imports',
        requestId: 'held-1',
        messageId: id,
        queueUrl: QUEUE,
        receiptHandle: id === 'm1' ? 'handle-m1-again' : `handle-${id}`,
        heldAt: now,
      };
      return { Body: { transformToString: async () => JSON.stringify(marker) } };
    });

    // Act
    await HeldBatch.open(run, settings);

    // Assess
    expect(handles(sent[0])?.map(([handle]) => handle)).toEqual([
      'handle-m0',
      'handle-m1-again',
      'handle-m2',
    ]);
  });

  it('deletes what the handler finished and hands the failed ones back after the queue’s visibility timeout', async () => {
    // Prepare
    prepare({ queueTimeoutS: 45 });
    const held = await HeldBatch.open(run, settings);
    sent.length = 0;

    // Act
    await held?.finish(EXIT_CODES.success, { batchItemFailures: [{ itemIdentifier: 'm2' }] });

    // Assess
    expect(sent.map((entry) => entry.command)).toEqual([
      'DeleteMessageBatchCommand',
      'GetQueueAttributesCommand',
      'ChangeMessageVisibilityBatchCommand',
    ]);
    expect(handles(sent[0])?.map(([handle]) => handle)).toEqual(['handle-m0', 'handle-m1']);
    expect(handles(sent[2])).toEqual([['handle-m2', 45]]);
    expect(timers).toEqual([]);
  });

  it('hands every message back when the handler failed, and leaves them held for a relaunch', async () => {
    // Prepare
    prepare();
    const failed = await HeldBatch.open(run, settings);
    const stopped = await HeldBatch.open(run, settings);
    sent.length = 0;

    // Act
    await stopped?.finish(EXIT_CODES.stopped, undefined);
    const afterStop = [...sent];
    await failed?.finish(EXIT_CODES.handlerError, undefined);

    // Assess
    expect(afterStop).toEqual([]);
    expect(sent.map((entry) => entry.command)).toEqual([
      'GetQueueAttributesCommand',
      'ChangeMessageVisibilityBatchCommand',
    ]);
    expect(handles(sent[1])?.map(([handle]) => handle)).toEqual(['handle-m0', 'handle-m1', 'handle-m2']);
  });

  it('stops extending at SQS’s 12-hour ceiling, and says so once per message', async () => {
    // Prepare: nearly 12 hours after the invocation started
    prepare();
    now = START + 12 * 60 * 60 * 1000 - 10 * 60 * 1000;

    // Act
    const held = await HeldBatch.open(run, settings);
    await held?.extend();

    // Assess
    expect(sent).toEqual([]);
    const said = lines.filter((line) => line.includes('could not be kept invisible'));
    expect(said).toHaveLength(3);
    expect(said[0]).toContain('12 hours');
  });
});
