import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
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
});
