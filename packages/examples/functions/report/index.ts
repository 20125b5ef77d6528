import { withFargateFallback } from '@immortal-lambda/middleware';
import type { Context } from 'aws-lambda';
import { pause } from '../../lib/pause.js';

/** A report job: `steps` steps of `stepMs` each; large inputs may carry `rows`. */
export interface ReportEvent {
  reportId: string;
  steps?: number;
  stepMs?: number;
  rows?: string[];
}

/**
 * The long report job. In Lambda it works until the handoff; on Fargate the same handler runs
 * the job to completion. It stops as soon as its signal aborts, so no work happens twice.
 */
export const handler = withFargateFallback(
  async (event: ReportEvent, context: Context, { signal, runtime }) => {
    const steps = event.steps ?? 8;
    const stepMs = event.stepMs ?? 1_000;
    const title = process.env.REPORT_TITLE ?? 'Report';
    for (let step = 1; step <= steps; step++) {
      await pause(stepMs, signal);
      console.log(
        JSON.stringify({ message: `${title} ${event.reportId}: step ${step}/${steps} done`, runtime }),
      );
    }
    const result = {
      reportId: event.reportId,
      steps,
      rows: event.rows?.length ?? 0,
      finishedOn: runtime,
      requestId: context.awsRequestId,
    };
    console.log(JSON.stringify({ message: `${title} ${event.reportId} finished`, result, runtime }));
    return result;
  },
);
