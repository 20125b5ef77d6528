import { withFargateFallback } from '@immortal-lambda/middleware';
import type { Context } from 'aws-lambda';
import { pause } from '../../lib/pause.js';

/** A report job: `steps` steps of `stepMs` each; large inputs may carry `rows`. */
export interface ReportEvent {
  reportId: string;
  steps?: number;
  stepMs?: number;
  rows?: string[];
  /** An "export all": known to be long, so it goes straight to Fargate (`routeToFargate`). */
  exportAll?: boolean;
}

/**
 * The long report job, in steps. In Lambda it works until the handoff; on Fargate the same
 * handler runs the job to completion, skipping the steps already done. It stops as soon as its
 * signal aborts, so no finished work happens twice.
 */
export const handler = withFargateFallback(
  async (event: ReportEvent, context: Context, { signal, runtime, step }) => {
    const steps = event.steps ?? 8;
    const stepMs = event.stepMs ?? 1_000;
    const title = process.env.REPORT_TITLE ?? 'Report';
    let ranHere = 0;
    for (let n = 1; n <= steps; n++) {
      // A step finished before the handoff (or before a relaunch) is not run again.
      await step(`section-${n}`, async () => {
        await pause(stepMs, signal);
        ranHere += 1;
        console.log(
          JSON.stringify({ message: `${title} ${event.reportId}: step ${n}/${steps} done`, runtime }),
        );
        return n;
      });
    }
    const result = {
      reportId: event.reportId,
      steps,
      stepsRunHere: ranHere,
      rows: event.rows?.length ?? 0,
      finishedOn: runtime,
      requestId: context.awsRequestId,
    };
    console.log(JSON.stringify({ message: `${title} ${event.reportId} finished`, result, runtime }));
    return result;
  },
  // Work known to be long skips Lambda: handed off before the handler runs there.
  { routeToFargate: (event) => event.exportAll === true },
);
