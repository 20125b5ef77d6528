import { afterEach, describe, expect, it } from 'vitest';
import { LocalStreams } from '../../src/plane/streams.js';

describe('the plane’s Kinesis streams and their event source mappings', () => {
  let streams: LocalStreams | undefined;

  afterEach(async () => {
    await streams?.stop();
    streams = undefined;
  });

  const until = async (probe: () => boolean) => {
    const deadline = Date.now() + 5_000;
    while (!probe() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  };

  it('hands the shard over in order, one batch at a time, retrying from the lowest record a batch names as failed', async () => {
    // Prepare: five records; the first batch fails from its second record once
    streams = new LocalStreams('eu-west-1', Date.now);
    const arn = streams.create('ingest');
    const sequence = [1, 2, 3, 4, 5].map((n) => streams?.put(arn, { n }) as string);
    const batches: string[][] = [];
    let failOnce = true;

    // Act
    streams.consume(
      arn,
      async (event) => {
        batches.push(
          event.Records.map((record) => JSON.parse(Buffer.from(record.kinesis.data, 'base64').toString()).n),
        );
        if (failOnce) {
          failOnce = false;
          return {
            batchItemFailures: [
              { itemIdentifier: sequence[2] as string },
              { itemIdentifier: sequence[1] as string },
            ],
          };
        }
        return { batchItemFailures: [] };
      },
      { batchSize: 3, retryDelayMs: 10, pollMs: 5 },
    );
    await until(() => streams?.pending(arn) === 0);

    // Assess
    expect(batches).toEqual([[1, 2, 3], [2, 3, 4], [5]]);
    expect(
      streams.history.filter((event) => event.action === 'checkpoint').map((event) => event.first),
    ).toEqual([sequence[1], sequence[4]]);
  });

  it('retries a batch whose function threw, whole, before anything after it', async () => {
    // Prepare
    streams = new LocalStreams('eu-west-1', Date.now);
    const arn = streams.create('ingest');
    for (const n of [1, 2]) streams.put(arn, { n });
    let calls = 0;
    const sizes: number[] = [];

    // Act
    streams.consume(
      arn,
      async (event) => {
        sizes.push(event.Records.length);
        calls += 1;
        if (calls === 1) throw new Error('the function failed');
        return undefined;
      },
      { batchSize: 10, retryDelayMs: 10, pollMs: 5 },
    );
    await until(() => streams?.pending(arn) === 0);

    // Assess
    expect(sizes).toEqual([2, 2]);
  });
});
