import { EnvelopeError } from './errors.js';
import { digest } from './run-task.js';

/**
 * A bucket and key, as named by an `s3://bucket/key` URI.
 *
 * @example
 * ```ts
 * import type { S3Location } from '@immortal-lambda/protocol';
 * const location: S3Location = { bucket: 'envelopes', key: 'report/c0ffee.json' };
 * ```
 */
export interface S3Location {
  bucket: string;
  key: string;
}

/**
 * Tells an envelope reference (`s3://…`) from inline envelope JSON.
 *
 * @example
 * ```ts
 * import { isS3Uri } from '@immortal-lambda/protocol';
 * isS3Uri('s3://bucket/key.json'); // true
 * ```
 */
export function isS3Uri(value: string): boolean {
  return value.startsWith('s3://');
}

/**
 * Splits an `s3://bucket/key` URI. Throws {@link EnvelopeError} for anything else.
 *
 * @example
 * ```ts
 * import { parseS3Uri } from '@immortal-lambda/protocol';
 * parseS3Uri('s3://payloads/envelopes/fn/id.json'); // { bucket: 'payloads', key: 'envelopes/fn/id.json' }
 * ```
 */
export function parseS3Uri(uri: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) {
    throw new EnvelopeError(`"${uri}" is not an s3://bucket/key URI`);
  }
  return { bucket: match[1], key: match[2] };
}

/**
 * Formats an `s3://bucket/key` URI.
 *
 * @example
 * ```ts
 * import { formatS3Uri } from '@immortal-lambda/protocol';
 * formatS3Uri({ bucket: 'payloads', key: 'a/b.json' }); // 's3://payloads/a/b.json'
 * ```
 */
export function formatS3Uri(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}

/** The longest function or request id part of an envelope's key; longer ones are shortened. */
const KEY_PART_LIMIT = 128;

/**
 * The S3 key under which the envelope of one invocation is stored: derived from the function
 * and the request id, so that a retried invocation writes the same object. Characters outside
 * `[A-Za-z0-9._-]` become `_`; a part longer than 128 characters keeps its first 95 and a digest
 * of the whole, so distinct ids keep distinct keys and every key stays well inside S3's 1,024
 * bytes.
 *
 * @example
 * ```ts
 * import { envelopeKey } from '@immortal-lambda/protocol';
 * envelopeKey('immortal-lambda/envelopes/', 'report', 'c0ffee'); // 'immortal-lambda/envelopes/report/c0ffee.json'
 * ```
 */
export function envelopeKey(prefix: string, functionName: string, requestId: string): string {
  const safe = (part: string) => {
    const cleaned = part.replace(/[^A-Za-z0-9._-]/g, '_');
    return cleaned.length <= KEY_PART_LIMIT ? cleaned : `${cleaned.slice(0, 95)}-${digest(part)}`;
  };
  return `${prefix}${safe(functionName)}/${safe(requestId)}.json`;
}
