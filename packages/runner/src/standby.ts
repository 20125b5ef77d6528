import { type Envelope, isCancelMarker, parseEnvelope, parseS3Uri } from '@immortal-lambda/protocol';
import { BadInputError, KeyUnknownError } from './errors.js';
import { getObjectIfPresent, isDenied, type S3Source } from './s3.js';

/** How often a pre-warmed runner looks for its envelope: it resumes within this of the handoff. */
export const STANDBY_POLL_MS = 200;
/** The longest wait between two looks while the planned handoff is still far (a cancel is seen within it). */
export const STANDBY_IDLE_POLL_MS = 2_000;
/** How long before the planned handoff a pre-warmed runner looks every {@link STANDBY_POLL_MS} (clocks differ a little). */
export const STANDBY_WATCH_MS = 1_000;
/** How long past the invocation's Lambda deadline a pre-warmed runner still waits for its envelope. */
export const STANDBY_GRACE_MS = 30_000;

/** What a pre-warmed runner was told: go with this envelope, or it is not needed (and why). */
export type StandbyAnswer = { go: Envelope } | { notNeeded: string };

/**
 * Waits, as a pre-warmed runner, for the wrapper's word at the resume location: the envelope to
 * run (with the journal as it was at the handoff), or the cancel marker. Gives up, not needed,
 * past the Lambda deadline plus {@link STANDBY_GRACE_MS} (the wrapper either wrote by then or its
 * invocation ended in Lambda) or when the task is stopped. A location the task may not read is a
 * {@link BadInputError}: a handed-off invocation must not be dropped for want of a permission.
 *
 * @example
 * ```ts
 * import { waitForGo } from '@immortal-lambda/runner';
 * const answer = await waitForGo({ uri, requestId, s3, now: Date.now, sleep, until, stopped: () => false });
 * ```
 */
export async function waitForGo(input: {
  uri: string;
  requestId: string;
  s3: S3Source;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Epoch ms after which nothing is awaited any more. */
  until: number;
  stopped: () => boolean;
  pollMs?: number;
  /**
   * When the wrapper plans to hand off (epoch ms, `FARGATE_FALLBACK_STANDBY_GO_AT`): until a second
   * before it the runner looks less often (a quarter of the time left, at most every
   * {@link STANDBY_IDLE_POLL_MS}), then every `pollMs`. Without it, every `pollMs` throughout.
   */
  goAt?: number;
}): Promise<StandbyAnswer> {
  const { bucket, key } = parseS3Uri(input.uri);
  const poll = input.pollMs ?? STANDBY_POLL_MS;
  for (;;) {
    if (input.stopped()) return { notNeeded: 'the task was stopped before it was told to go' };
    const text = await read(input.s3, bucket, key, input.uri);
    if (text !== undefined) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        throw new BadInputError(`the resume object at ${input.uri} is not JSON`, { cause: error });
      }
      if (isCancelMarker(value)) return { notNeeded: 'the invocation finished in Lambda' };
      let envelope: Envelope;
      try {
        envelope = parseEnvelope(text);
      } catch (error) {
        throw new BadInputError(`the envelope at ${input.uri} is invalid: ${(error as Error).message}`, {
          cause: error,
        });
      }
      if (envelope.invocation.awsRequestId !== input.requestId) {
        throw new BadInputError(
          `the envelope at ${input.uri} is for request ${envelope.invocation.awsRequestId}, not ${input.requestId}`,
        );
      }
      return { go: envelope };
    }
    if (input.now() >= input.until) {
      return { notNeeded: 'no envelope arrived by the Lambda deadline and its grace' };
    }
    await input.sleep(nextLook(input.now(), poll, input.goAt));
  }
}

/** The wait before the next look: `poll` near (or past) the planned handoff, longer while it is far. */
function nextLook(now: number, poll: number, goAt: number | undefined): number {
  if (goAt === undefined) return poll;
  const far = goAt - STANDBY_WATCH_MS - now;
  if (far <= 0) return poll;
  return Math.min(far, Math.max(poll, Math.min(STANDBY_IDLE_POLL_MS, Math.floor((goAt - now) / 4))));
}

/** The object's text, or undefined while it does not exist (or S3 did not answer: tried again). */
async function read(s3: S3Source, bucket: string, key: string, uri: string): Promise<string | undefined> {
  try {
    return await getObjectIfPresent(s3, bucket, key);
  } catch (error) {
    if (isDenied(error) || error instanceof KeyUnknownError) {
      throw new BadInputError(
        `the task role may not read the resume location ${uri}, so a pre-warmed task can never be told to go: grant it s3:GetObject there and s3:ListBucket with its prefix (the construct does)`,
        { cause: error },
      );
    }
    // Throttling, a 5xx or the network: the next poll tries again.
    return undefined;
  }
}
