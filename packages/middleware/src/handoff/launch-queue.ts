import type { TaskOverride } from '@aws-sdk/client-ecs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { QUEUED_LAUNCH_KIND, QUEUED_LAUNCH_VERSION, type QueuedLaunch } from '@immortal-lambda/protocol';
import type { ResolvedConfig } from '../config.js';
import { HandoffError } from '../errors.js';
import { retryWithin } from '../retry.js';
import { loadSqs } from '../sdk.js';
import type { Clock } from '../types.js';

/** The launch queue's answer: the message that carries the launch. */
export interface QueuedMessage {
  launchQueue: string;
  messageId: string;
  queuedAt: string;
}

/**
 * The message that asks the launcher to start the invocation's task: the placement and overrides
 * of the RunTask call the handoff made, so that the launcher's call, with the same client token,
 * is the same request and ECS starts one task whatever was tried before.
 */
export function queuedLaunch(input: {
  config: ResolvedConfig;
  requestId: string;
  fn: { name: string; version: string };
  overrides: TaskOverride;
  envelopeLocation: string;
  envelopeBytes: number;
  handoffAt: number;
  queuedAt: number;
}): QueuedLaunch {
  const { config } = input;
  return {
    kind: QUEUED_LAUNCH_KIND,
    version: QUEUED_LAUNCH_VERSION,
    requestId: input.requestId,
    functionName: input.fn.name,
    functionVersion: input.fn.version,
    placement: {
      cluster: config.cluster,
      taskDefinition: config.taskDefinition,
      containerName: config.containerName,
      subnets: [...config.subnets],
      securityGroups: [...config.securityGroups],
      assignPublicIp: config.assignPublicIp,
      capacity: config.capacity,
    },
    overrides: input.overrides as QueuedLaunch['overrides'],
    records: { bucket: config.payloadBucket as string, prefix: config.outcomePrefix },
    envelopeLocation: input.envelopeLocation,
    envelopeBytes: input.envelopeBytes,
    queuedAt: new Date(input.queuedAt).toISOString(),
    handoffAt: input.handoffAt,
  };
}

/**
 * Sends the launch to the launch queue, retrying throttling and server errors with backoff until
 * the signal ends it. Throws {@link HandoffError} (`launch-queue-failed`) when it cannot.
 */
export async function sendToLaunchQueue(input: {
  queueUrl: string;
  launch: QueuedLaunch;
  sqs: () => Promise<SQSClient>;
  clock: Clock;
  random: () => number;
  signal: AbortSignal;
}): Promise<QueuedMessage> {
  const { SendMessageCommand } = await loadSqs();
  const client = await input.sqs();
  const body = JSON.stringify(input.launch);
  const { signal } = input;
  const sent = await retryWithin(
    () =>
      client.send(new SendMessageCommand({ QueueUrl: input.queueUrl, MessageBody: body }), {
        abortSignal: signal,
      }),
    { signal, clock: input.clock, random: input.random, baseMs: 50, capMs: 500 },
    (error) => {
      // An unanswered SendMessage may have been taken all the same: say what follows if it was.
      const why = signal.aborted
        ? `SendMessage did not answer before the deadline (${(error as Error).message}); if SQS took the message all the same, the launcher starts its task with this invocation's client token, and a retry of the invocation that hands off again is given that task`
        : `${(error as Error).message}; check the queue and the function's sqs:SendMessage permission`;
      throw new HandoffError(
        'launch-queue-failed',
        `the launch could not be queued on ${input.queueUrl}: ${why}`,
        {
          requestId: input.launch.requestId,
          cause: error,
        },
      );
    },
  );
  return { launchQueue: input.queueUrl, messageId: sent.MessageId ?? '', queuedAt: input.launch.queuedAt };
}
