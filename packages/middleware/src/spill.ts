import type { S3Client } from '@aws-sdk/client-s3';
import { formatS3Uri } from '@immortal-lambda/protocol';
import { HandoffError } from './errors.js';
import { retryWithin } from './retry.js';
import { loadS3 } from './sdk.js';
import type { Clock } from './types.js';

export interface SpillParams {
  client: S3Client;
  bucket: string;
  key: string;
  body: string;
  requestId: string;
  clock: Clock;
  random: () => number;
  signal: AbortSignal;
  /** What is written, for the error: the envelope (default) or a record. */
  what?: string;
}

/**
 * Writes JSON to the payload bucket and returns its `s3://` URI: an envelope too large for the
 * container override, or the handed-off record. Throttling and server errors are retried inside
 * the time the signal allows.
 */
export async function spillEnvelope(params: SpillParams): Promise<string> {
  const { PutObjectCommand } = await loadS3();
  const { client, signal, clock, random } = params;
  await retryWithin(
    () =>
      client.send(
        new PutObjectCommand({
          Bucket: params.bucket,
          Key: params.key,
          Body: params.body,
          ContentType: 'application/json',
        }),
        { abortSignal: signal },
      ),
    { signal, clock, random },
    (error) => {
      if (error instanceof HandoffError) throw error;
      const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new HandoffError(
        'payload-upload-failed',
        `${params.what ?? 'the envelope'} could not be written to s3://${params.bucket}/${params.key} (${detail}); check that the bucket exists and the function may s3:PutObject under its prefix`,
        { requestId: params.requestId, cause: error },
      );
    },
  );
  return formatS3Uri({ bucket: params.bucket, key: params.key });
}
