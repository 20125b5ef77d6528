import { withFargateFallback } from '@immortal-lambda/middleware';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { pause } from '../../lib/pause.js';

/**
 * An SQS batch of render jobs, with partial batch responses. A batch that would outlast the
 * function is handed off and held in its queue: Lambda deletes none of it, the runner finishes
 * every message, deletes those it rendered and hands the ones it could not parse back to SQS for
 * their redelivery and redrive: see "Event sources" in the middleware's README.
 */
export const handler = withFargateFallback(
  async (event: SQSEvent, _context, { signal, runtime }): Promise<SQSBatchResponse> => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    for (const record of event.Records) {
      let job: { frames?: number; frameMs?: number };
      try {
        job = JSON.parse(record.body) as typeof job;
      } catch {
        batchItemFailures.push({ itemIdentifier: record.messageId });
        continue;
      }
      for (let frame = 0; frame < (job.frames ?? 1); frame++) await pause(job.frameMs ?? 100, signal);
      console.log(JSON.stringify({ message: 'rendered', messageId: record.messageId, runtime }));
    }
    return { batchItemFailures };
  },
);
