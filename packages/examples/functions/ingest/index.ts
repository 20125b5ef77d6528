import { withFargateFallback } from '@immortal-lambda/middleware';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { pause } from '../../lib/pause.js';

/**
 * A Kinesis stream of ingest jobs whose order matters. A batch that would outlast the function is
 * handed off with `ordered`: the shard waits for the runner, and its next batch runs only once the
 * runner's outcome is recorded: see "Event sources" in the middleware's README.
 */
export const handler = withFargateFallback(
  async (event: KinesisStreamEvent, _context, { signal, runtime }): Promise<KinesisStreamBatchResponse> => {
    for (const record of event.Records) {
      const job = JSON.parse(Buffer.from(record.kinesis.data, 'base64').toString('utf8')) as {
        steps?: number;
        stepMs?: number;
      };
      for (let step = 0; step < (job.steps ?? 1); step++) await pause(job.stepMs ?? 100, signal);
      console.log(
        JSON.stringify({ message: 'ingested', sequenceNumber: record.kinesis.sequenceNumber, runtime }),
      );
    }
    return { batchItemFailures: [] };
  },
);
