import { ECSClient, ListTasksCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/errors.js';
import { fallbackExtras, fargateFallback } from '../../src/middy.js';
import { GIVEN_JOURNAL, type Journal, parseEnvelope, StepError } from '../../src/protocol/index.js';
import type { HandoffReceipt } from '../../src/types.js';
import { withFargateFallback } from '../../src/wrapper.js';
import { envelopeOf, lambdaContext, memoryLogger, mockedOptions } from '../helpers/lambda.js';

const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef';
const MARGIN = 1_000;

describe('steps and checkpoints through withFargateFallback', () => {
  const ecs = mockClient(ECSClient);

  beforeEach(() => {
    ecs.reset();
    ecs.on(ListTasksCommand).resolves({ taskArns: [] });
  });

  it('carries the finished steps and the last checkpoint across the handoff, not the step in flight', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = withFargateFallback(
      async (_event, _context, { step, checkpoint, signal }) => {
        await step('fetch', async () => ({ rows: 2 }));
        checkpoint({ page: 3 });
        await step(
          'render',
          () =>
            new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
        );
        return 'done in Lambda';
      },
      mockedOptions(memoryLogger(), MARGIN),
    );

    // Act
    const receipt = (await handler({}, lambdaContext(MARGIN + 60))) as HandoffReceipt;

    // Assess
    expect(receipt.status).toBe('handed-off');
    const envelope = parseEnvelope(envelopeOf(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input));
    expect(envelope.journal).toEqual({
      steps: { fetch: { result: { rows: 2 } } },
      checkpoint: { value: { page: 3 } },
    });
  });

  it('sends no journal for a handler that uses no step', async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = withFargateFallback(
      (_event, _context, { signal }) =>
        new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      mockedOptions(memoryLogger(), MARGIN),
    );
    await handler({}, lambdaContext(MARGIN + 60));
    expect(
      parseEnvelope(envelopeOf(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input)).journal,
    ).toBeUndefined();
  });

  it('in the runner, answers the carried steps without running them and reports each new one', async () => {
    // Prepare
    const journal: Journal = {
      steps: { fetch: { result: { rows: 2 } } },
      checkpoint: { value: { page: 3 } },
    };
    const changes: Journal[] = [];
    const ran: string[] = [];
    const handler = withFargateFallback(
      async (_event, _context, { step, lastCheckpoint }) => {
        const fetched = await step('fetch', () => {
          ran.push('fetch');
          return { rows: 0 };
        });
        const rendered = await step('render', () => {
          ran.push('render');
          return 'pdf';
        });
        return { fetched, rendered, lastCheckpoint };
      },
      { env: { FARGATE_FALLBACK_RUNNER: '1' } },
    );

    // Act
    const result = await handler({}, lambdaContext(1), { journal, onJournal: (j) => changes.push(j) });

    // Assess
    expect(result).toEqual({ fetched: { rows: 2 }, rendered: 'pdf', lastCheckpoint: { page: 3 } });
    expect(ran).toEqual(['render']);
    expect(changes).toEqual([
      {
        steps: { fetch: { result: { rows: 2 } }, render: { result: 'pdf' } },
        checkpoint: { value: { page: 3 } },
      },
    ]);
  });

  it('fails the step, not the handoff, for a result JSON cannot carry', async () => {
    const handler = withFargateFallback(
      async (_event, _context, { step }) => step('bad', () => 1n as unknown),
      mockedOptions(memoryLogger(), MARGIN),
    );
    await expect(handler({}, lambdaContext(60_000))).rejects.toBeInstanceOf(StepError);
    expect(ecs.commandCalls(RunTaskCommand)).toHaveLength(0);
  });
});

describe('steps and checkpoints through the middy adapter (fallbackExtras(context))', () => {
  const ecs = mockClient(ECSClient);

  beforeEach(() => {
    ecs.reset();
    ecs.on(ListTasksCommand).resolves({ taskArns: [] });
  });

  it('carries the finished steps and the checkpoint across the handoff', async () => {
    // Prepare
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const handler = middy(
      async (_event: unknown, context: Context, { signal }: { signal: AbortSignal }) => {
        const { step, checkpoint } = fallbackExtras(context);
        await step('fetch', async () => ({ rows: 2 }));
        checkpoint({ page: 3 });
        await new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason)),
        );
      },
      { timeoutEarlyInMillis: MARGIN },
    ).use(fargateFallback(mockedOptions(memoryLogger(), MARGIN)));

    // Act
    const receipt = (await handler({}, lambdaContext(MARGIN + 60))) as unknown as HandoffReceipt;

    // Assess
    expect(receipt.status).toBe('handed-off');
    const envelope = parseEnvelope(envelopeOf(ecs.commandCalls(RunTaskCommand)[0]?.args[0].input));
    expect(envelope.journal).toEqual({
      steps: { fetch: { result: { rows: 2 } } },
      checkpoint: { value: { page: 3 } },
    });
  });

  it('in the runner, answers the steps the runner left on the context without running them', async () => {
    // Prepare
    const changes: Journal[] = [];
    const ran: string[] = [];
    const handler = middy(async (_event: unknown, context: Context) => {
      const { step, lastCheckpoint, runtime } = fallbackExtras(context);
      const fetched = await step('fetch', () => {
        ran.push('fetch');
        return 0;
      });
      const rendered = await step('render', () => {
        ran.push('render');
        return 'pdf';
      });
      return { fetched, rendered, lastCheckpoint, runtime };
    }).use(fargateFallback({ env: { FARGATE_FALLBACK_RUNNER: '1' } }));
    const context = lambdaContext(1);
    Object.defineProperty(context, GIVEN_JOURNAL, {
      value: { journal: { steps: { fetch: { result: 2 } } }, onJournal: (j: Journal) => changes.push(j) },
    });

    // Act
    const result = await handler({}, context);

    // Assess
    expect(result).toEqual({ fetched: 2, rendered: 'pdf', lastCheckpoint: undefined, runtime: 'fargate' });
    expect(ran).toEqual(['render']);
    expect(changes).toHaveLength(1);
  });

  it('says how to fix a handler that asks for the extras without the middleware', () => {
    expect(() => fallbackExtras(lambdaContext(1))).toThrow(ConfigurationError);
    expect(() => fallbackExtras(lambdaContext(1))).toThrow(/add \.use\(fargateFallback\(\)\)/);
  });
});
