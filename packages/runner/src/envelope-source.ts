import { ENV, type Envelope, isS3Uri, parseEnvelope, parseS3Uri } from '@immortal-lambda/protocol';
import { attemptsNote, isNoAnswer } from './code.js';
import { BadInputError } from './errors.js';
import { getObjectText, isDenied, isMissing, type S3Source } from './s3.js';

/**
 * Reads the envelope from `FARGATE_FALLBACK_ENVELOPE`: inline JSON, or an `s3://bucket/key`
 * URI of the envelope the wrapper spilled to S3. Validated with the middleware's protocol.
 *
 * @example
 * ```ts
 * import { readEnvelope } from '@immortal-lambda/runner';
 * const envelope = await readEnvelope(process.env.FARGATE_FALLBACK_ENVELOPE, () => new S3Client({}));
 * ```
 */
export async function readEnvelope(value: string | undefined, s3: S3Source): Promise<Envelope> {
  if (value === undefined || value.trim() === '') {
    throw new BadInputError(
      `${ENV.envelope} is not set: the runner only runs invocations handed off by @immortal-lambda/middleware, which sets it in RunTask's container override`,
    );
  }
  let text = value;
  if (isS3Uri(value.trim())) {
    const location = parseS3Uri(value.trim());
    try {
      text = await getObjectText(s3, location.bucket, location.key);
    } catch (error) {
      const name = (error as { name?: string }).name;
      const why = isNoAnswer(error)
        ? `S3 did not answer${attemptsNote(error)} (${name}); check that the task can reach S3 (a gateway endpoint or NAT in private subnets)`
        : isMissing(error)
          ? 'it does not exist (expired by a lifecycle rule, or written to another bucket?)'
          : isDenied(error)
            ? 'S3 answered 403: the task role may not s3:GetObject it, or it does not exist (S3 answers a missing key with 403 to a role that may not s3:ListBucket the bucket)'
            : `${name}: ${(error as Error).message}`;
      throw new BadInputError(`the envelope at ${value.trim()} cannot be read: ${why}`, { cause: error });
    }
  }
  try {
    return parseEnvelope(text);
  } catch (error) {
    throw new BadInputError((error as Error).message, { cause: error });
  }
}
