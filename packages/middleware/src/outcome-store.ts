import type { S3Client } from '@aws-sdk/client-s3';
import {
  formatS3Uri,
  type OutcomeRecord,
  outcomeFolder,
  outcomeKey,
  outcomeRecord,
  parseOutcome,
} from '@immortal-lambda/protocol';
import { loadS3 } from './sdk.js';

/** Where an invocation's outcome records are: the bucket, the prefix, the function and request. */
export interface OutcomeLocation {
  bucket: string;
  prefix: string;
  functionName: string;
  requestId: string;
}

/**
 * Whether an object of an invocation's folder is an outcome record: the spilled results, the
 * journal, a standby task's resume object (an envelope, or the cancel marker) and the claim of a
 * pre-warmed invocation sit beside them.
 */
function isRecordKey(key: string): boolean {
  return (
    key.endsWith('.json') &&
    !key.endsWith('.result.json') &&
    !key.endsWith('.destination.json') &&
    !key.endsWith('/journal.json') &&
    !key.endsWith('/resume.json') &&
    !key.endsWith('/claim.json')
  );
}

/**
 * Every outcome record of one invocation (the spilled results beside them are not records). An
 * object of its folder that is no record this version can read, or a record of another
 * invocation, is skipped, and `skipped` hears of it.
 */
export async function readOutcomes(
  s3: S3Client,
  at: OutcomeLocation,
  skipped: (key: string, why: string) => void = () => undefined,
): Promise<OutcomeRecord[]> {
  const { GetObjectCommand, ListObjectsV2Command } = await loadS3();
  const folder = outcomeFolder(at.prefix, at.functionName, at.requestId);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: at.bucket,
        Prefix: folder,
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
    for (const object of page.Contents ?? []) {
      const key = object.Key;
      if (key && isRecordKey(key)) keys.push(key);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const records = await Promise.all(
    keys.map(async (key) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: at.bucket, Key: key }));
      const record = parseOutcome((await object.Body?.transformToString()) ?? '');
      if (!record) skipped(key, 'it is not an outcome record this version reads (unknown writer or status?)');
      else if (record.requestId !== at.requestId || record.functionName !== at.functionName) {
        skipped(key, `it is a record of ${record.functionName} ${record.requestId}, not of this invocation`);
        return undefined;
      }
      return record;
    }),
  );
  return records.filter((record): record is OutcomeRecord => record !== undefined);
}

/** Writes one record as its writer's own object (`relaunch-N`, `final`, …). */
export async function writeOutcome(
  s3: S3Client,
  at: OutcomeLocation,
  entry: 'final' | 'launched' | `relaunch-${number}`,
  fields: Omit<OutcomeRecord, 'kind' | 'version' | 'functionName' | 'requestId'>,
): Promise<void> {
  const { PutObjectCommand } = await loadS3();
  const record = outcomeRecord({ functionName: at.functionName, requestId: at.requestId, ...fields });
  await s3.send(
    new PutObjectCommand({
      Bucket: at.bucket,
      Key: outcomeKey(at.prefix, at.functionName, at.requestId, entry),
      Body: JSON.stringify(record),
      ContentType: 'application/json',
    }),
  );
}

/**
 * Keeps a destination record too large for its destination beside the invocation's records
 * (`final.destination.json`), and resolves to its `s3://` location.
 */
export function storeDestinationRecord(s3: () => Promise<S3Client>, at: OutcomeLocation) {
  return async (body: string): Promise<string> => {
    const { PutObjectCommand } = await loadS3();
    const key = outcomeKey(at.prefix, at.functionName, at.requestId, 'final.destination');
    await (await s3()).send(
      new PutObjectCommand({ Bucket: at.bucket, Key: key, Body: body, ContentType: 'application/json' }),
    );
    return formatS3Uri({ bucket: at.bucket, key });
  };
}

/**
 * The text of one object of the records (a record, a marker), or undefined when there is none
 * (`NoSuchKey`: the role may list the function's records, so a missing key is answered 404). Any
 * other error is S3's own.
 */
export async function readObjectText(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  const { GetObjectCommand } = await loadS3();
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await object.Body?.transformToString()) ?? '';
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
    throw error;
  }
}
