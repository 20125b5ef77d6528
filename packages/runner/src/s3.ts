import type { S3Client } from '@aws-sdk/client-s3';

/** The S3 client, made on first use: a run whose envelope is inline and has no bucket loads no S3 code. */
export type S3Source = () => S3Client | Promise<S3Client>;

let module: Promise<typeof import('@aws-sdk/client-s3')> | undefined;

/** The S3 client package, imported once, when a run first needs it. */
export function s3Module(): Promise<typeof import('@aws-sdk/client-s3')> {
  module ??= import('@aws-sdk/client-s3');
  return module;
}

/** An object's text (GetObject). Errors are S3's own, for the caller to explain. */
export async function getObjectText(s3: S3Source, bucket: string, key: string): Promise<string> {
  const { GetObjectCommand } = await s3Module();
  const object = await (await s3()).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await object.Body?.transformToString('utf8')) ?? '';
}

/** Writes one JSON object to the payload bucket: a record, a large result, the journal. */
export async function putJson(s3: S3Source, bucket: string, key: string, body: string): Promise<void> {
  const { PutObjectCommand } = await s3Module();
  await (await s3()).send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' }),
  );
}
