import { withFargateFallback } from '@immortal-lambda/middleware';
import type { Context } from 'aws-lambda';
import { pause } from '../../lib/pause.js';

/** A media job: a clip cut into `segments` segments of `segmentMs` each. */
export interface TranscodeEvent {
  clipId: string;
  segments?: number;
  segmentMs?: number;
}

/**
 * The transcode job, deployed as a container image (its Dockerfile sits beside it): where such
 * jobs need native tools (ffmpeg and the like) that a zip cannot hold. On Fargate the task runs
 * this same image, so the handler finds the same files; finished segments are not redone.
 */
export const handler = withFargateFallback(
  async (event: TranscodeEvent, context: Context, { signal, runtime, step }) => {
    const segments = event.segments ?? 6;
    const segmentMs = event.segmentMs ?? 1_000;
    let encodedHere = 0;
    for (let n = 1; n <= segments; n++) {
      await step(`segment-${n}`, async () => {
        await pause(segmentMs, signal);
        encodedHere += 1;
        console.log(
          JSON.stringify({ message: `clip ${event.clipId}: segment ${n}/${segments} encoded`, runtime }),
        );
        return n;
      });
    }
    return {
      clipId: event.clipId,
      segments,
      segmentsEncodedHere: encodedHere,
      finishedOn: runtime,
      requestId: context.awsRequestId,
      // The file the handler was loaded from: inside the image, its task root.
      module: __filename,
      node: process.version,
    };
  },
);
