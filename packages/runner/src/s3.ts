import type { S3Client } from '@aws-sdk/client-s3';
import { isPreconditionFailed } from '@immortal-lambda/protocol';
import { KeyUnknownError } from './errors.js';

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

/**
 * Creates a JSON object only if its key does not exist yet (S3's `If-None-Match: *`): `true`
 * created, `false` when it exists (412). Any other answer throws (a 409 of a concurrent create,
 * too: what is there is then read).
 *
 * @example
 * ```ts
 * import { createJson } from '@immortal-lambda/runner';
 * const created = await createJson(() => s3, 'bucket', 'immortal-lambda/outcomes/report/r-1/claim.json', '{}');
 * ```
 */
export async function createJson(s3: S3Source, bucket: string, key: string, body: string): Promise<boolean> {
  const { PutObjectCommand } = await s3Module();
  try {
    await (await s3()).send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentType: 'application/json',
        IfNoneMatch: '*',
      }),
    );
    return true;
  } catch (error) {
    if (isPreconditionFailed(error)) return false;
    throw error;
  }
}

/**
 * An object's text, or `undefined` when there is no such key. S3 answers a missing key with 403
 * `AccessDenied` instead of 404 to a caller that may not `s3:ListBucket` the bucket (the task
 * role may list only its function's records, by prefix): a 403 is then told apart by listing
 * exactly that key; a key the listing shows is read again (it may have been written in between).
 * Throws S3's error when the key exists and may not be read, and a
 * {@link KeyUnknownError} when neither the read nor the listing is allowed.
 *
 * @example
 * ```ts
 * import { getObjectIfPresent } from '@immortal-lambda/runner';
 * const journal = await getObjectIfPresent(() => s3, 'bucket', 'immortal-lambda/outcomes/report/r-1/journal.json');
 * ```
 */
export async function getObjectIfPresent(
  s3: S3Source,
  bucket: string,
  key: string,
): Promise<string | undefined> {
  try {
    return await getObjectText(s3, bucket, key);
  } catch (error) {
    if (isMissing(error)) return undefined;
    if (!isDenied(error)) throw error;
    const { ListObjectsV2Command } = await s3Module();
    let listed: { Contents?: { Key?: string | undefined }[] | undefined };
    try {
      listed = await (await s3()).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, MaxKeys: 1 }));
    } catch (listError) {
      throw new KeyUnknownError(
        `s3://${bucket}/${key} answered 403 and its key may not be listed either, so whether it exists cannot be told: grant the task role s3:ListBucket on the bucket with the s3:prefix of its function's records (the construct does)`,
        { cause: listError },
      );
    }
    if (!listed.Contents?.some((object) => object.Key === key)) return undefined;
    // Listed: written since the read (a standby's envelope arriving as it polls), or denied. A
    // second read tells which; a second 403 is a denial.
    return await getObjectText(s3, bucket, key);
  }
}

/** Whether S3 answered that the key does not exist. */
export function isMissing(error: unknown): boolean {
  const name = (error as { name?: string }).name;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(error) === 404;
}

/** Whether S3 refused the call (403). */
export function isDenied(error: unknown): boolean {
  return (error as { name?: string }).name === 'AccessDenied' || httpStatus(error) === 403;
}

const httpStatus = (error: unknown) =>
  (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
