import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { NoLauncher } from '../../src/launcher.js';
import type { SqsBatchEvent } from '../../src/plane/queues.js';
import { LocalControlPlane } from '../../src/plane.js';

describe('the plane’s SQS queues and event source mappings', () => {
  let plane: LocalControlPlane | undefined;

  afterEach(async () => {
    await plane?.stop();
    plane = undefined;
  });

  it('delivers messages sent with SQS in batches, deletes what succeeded, delivers a failure again after its visibility timeout, then moves it to the dead-letter queue', async () => {
    // Prepare
    plane = new LocalControlPlane({ launcher: new NoLauncher() });
    const url = await plane.start();
    const queue = plane.queues.create('launches', {
      visibilityTimeoutMs: 100,
      maxReceiveCount: 2,
      deadLetterQueue: 'launches-dlq',
    });
    const sqs = new SQSClient({
      region: 'eu-west-1',
      endpoint: url,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      useQueueUrlAsEndpoint: false,
    });
    const seen: { body: string; receives: string }[] = [];
    const batches: number[] = [];
    plane.queues.consume(
      queue,
      async (event: SqsBatchEvent) => {
        batches.push(event.Records.length);
        for (const record of event.Records)
          seen.push({ body: record.body, receives: record.attributes.ApproximateReceiveCount });
        return {
          batchItemFailures: event.Records.filter((r) => r.body === 'poison').map((r) => ({
            itemIdentifier: r.messageId,
          })),
        };
      },
      { batchSize: 10, pollMs: 10 },
    );

    // Act
    for (const body of ['a', 'b', 'poison'])
      await sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: body }));
    const deadline = Date.now() + 5_000;
    while (plane.queues.depth(plane.queues.url('launches-dlq')) === 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));

    // Assess
    expect(
      seen
        .filter((m) => m.body !== 'poison')
        .map((m) => m.body)
        .sort(),
    ).toEqual(['a', 'b']);
    expect(seen.filter((m) => m.body === 'poison').map((m) => m.receives)).toEqual(['1', '2']);
    expect(plane.queues.depth(queue)).toBe(0);
    expect(plane.queues.depth(plane.queues.url('launches-dlq'))).toBe(1);
    expect(Math.max(...batches)).toBeLessThanOrEqual(10);
  });

  describe('answers the calls a held batch makes, as SQS does', () => {
    let now = 1_000_000;
    const setUp = async () => {
      plane = new LocalControlPlane({ launcher: new NoLauncher(), now: () => now });
      const url = await plane.start();
      const queue = plane.queues.create('imports', { visibilityTimeoutMs: 30_000 });
      const sqs = new SQSClient({
        region: 'eu-west-1',
        endpoint: url,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        useQueueUrlAsEndpoint: false,
        maxAttempts: 1,
      });
      await sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'row 1' }));
      return { sqs, queue };
    };
    const receive = async (sqs: SQSClient, queue: string) => {
      const answer = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue, MaxNumberOfMessages: 10 }));
      return answer.Messages?.[0];
    };

    it('hands out a new receipt handle per receive; a delete with an earlier one succeeds and deletes nothing', async () => {
      // Prepare
      const { sqs, queue } = await setUp();
      const first = await receive(sqs, queue);
      now += 31_000;
      const second = await receive(sqs, queue);

      // Act
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: first?.ReceiptHandle }));

      // Assess
      expect(second?.MessageId).toBe(first?.MessageId);
      expect(second?.ReceiptHandle).not.toBe(first?.ReceiptHandle);
      expect(second?.Attributes?.ApproximateReceiveCount).toBe('2');
      expect(plane?.queues.depth(queue)).toBe(1);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: second?.ReceiptHandle }));
      expect(plane?.queues.depth(queue)).toBe(0);
    });

    it('extends a message in flight, and refuses a visible one, a stale handle and the 12-hour ceiling', async () => {
      // Prepare
      const { sqs, queue } = await setUp();
      const message = await receive(sqs, queue);
      const handle = message?.ReceiptHandle;

      // Act
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queue,
          ReceiptHandle: handle,
          VisibilityTimeout: 600,
        }),
      );
      now += 300_000;
      const hiddenStill = await receive(sqs, queue);
      const beyond = await sqs
        .send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: queue,
            ReceiptHandle: handle,
            VisibilityTimeout: 43_200,
          }),
        )
        .catch((error: Error) => error);
      const batch = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queue,
          Entries: [
            { Id: 'ok', ReceiptHandle: handle, VisibilityTimeout: 0 },
            { Id: 'stale', ReceiptHandle: 'not-a-handle', VisibilityTimeout: 60 },
          ],
        }),
      );
      const visibleAgain = await receive(sqs, queue);
      const notInFlight = await sqs
        .send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: queue,
            ReceiptHandle: handle,
            VisibilityTimeout: 60,
          }),
        )
        .catch((error: Error) => error);

      // Assess
      expect(hiddenStill).toBeUndefined();
      expect((beyond as Error).name).toBe('InvalidParameterValue');
      expect(batch.Successful?.map((entry) => entry.Id)).toEqual(['ok']);
      expect(batch.Failed?.map((entry) => [entry.Id, entry.Code])).toEqual([
        ['stale', 'ReceiptHandleIsInvalid'],
      ]);
      expect(visibleAgain?.MessageId).toBe(message?.MessageId);
      // The handle of the receive before is no longer the message's.
      expect((notInFlight as Error).name).toBe('ReceiptHandleIsInvalid');
    });

    it('deletes in batches, reads the visibility timeout, and records each delete', async () => {
      // Prepare
      const { sqs, queue } = await setUp();
      const message = await receive(sqs, queue);

      // Act
      const answer = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queue,
          Entries: [{ Id: 'm0', ReceiptHandle: message?.ReceiptHandle }],
        }),
      );
      const attributes = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queue, AttributeNames: ['VisibilityTimeout'] }),
      );
      const missing = await sqs
        .send(
          new GetQueueAttributesCommand({ QueueUrl: `${queue}-nope`, AttributeNames: ['VisibilityTimeout'] }),
        )
        .catch((error: Error) => error);

      // Assess
      expect(answer.Successful?.map((entry) => entry.Id)).toEqual(['m0']);
      expect(attributes.Attributes?.VisibilityTimeout).toBe('30');
      expect((missing as Error).name).toBe('QueueDoesNotExist');
      expect(
        plane?.queues.history.filter((event) => event.action === 'deleted').map((event) => event.messageId),
      ).toEqual([message?.MessageId]);
    });
  });
});
