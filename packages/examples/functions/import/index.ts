import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { withFargateFallback } from '@immortal-lambda/middleware';
import type { S3Event } from 'aws-lambda';

const s3 = new S3Client({});

/**
 * Imports every uploaded CSV, line by line. A large file is handed off and imported to the end
 * on Fargate, with the same S3 event.
 */
export const handler = withFargateFallback(async (event: S3Event, _context, { signal, runtime }) => {
  let lines = 0;
  for (const record of event.Records) {
    const object = await s3.send(
      new GetObjectCommand({
        Bucket: record.s3.bucket.name,
        Key: decodeURIComponent(record.s3.object.key.replace(/\+/g, ' ')),
      }),
      { abortSignal: signal },
    );
    const text = (await object.Body?.transformToString()) ?? '';
    for (const _line of text.split('\n')) {
      signal.throwIfAborted();
      lines += 1;
    }
  }
  console.log(JSON.stringify({ message: 'import finished', lines, runtime }));
  return { lines };
});
