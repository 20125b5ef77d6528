import { createHash } from 'node:crypto';
import { CodeFetchError } from './errors.js';

/**
 * The part of a `fetch` response the runner reads: a WHATWG `Response` is one.
 *
 * @example
 * ```ts
 * import type { FetchResponse } from '@immortal-lambda/runner';
 * const answered = (response: FetchResponse) => response.ok;
 * ```
 */
export interface FetchResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  /** The body as chunks: a web `ReadableStream` or a Node stream. */
  readonly body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | null;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/**
 * The part of `fetch` the runner uses, injectable for tests. The runner's default is
 * {@link httpGet}; the global `fetch` fits too.
 *
 * @example
 * ```ts
 * import type { Fetch } from '@immortal-lambda/runner';
 * const offline: Fetch = async () => new Response(zip);
 * ```
 */
export type Fetch = (
  url: string,
  init?: { signal?: AbortSignal; headers?: Record<string, string> },
) => Promise<FetchResponse>;

export interface DownloadOptions {
  url: string;
  /** What is being downloaded, for messages. */
  label: string;
  /** The expected base64 SHA-256 (`CodeSha256`). */
  sha256: string;
  /** Refuse bodies larger than this many bytes. */
  maxBytes: number;
  fetch: Fetch;
  /** Attempts for broken or timed-out downloads (default 3). */
  attempts?: number;
  /** How long one attempt may take (default 120 s). */
  timeoutMs?: number;
  /** Waits between attempts; injectable so tests do not wait. */
  sleep?: (ms: number) => Promise<void>;
  /** Called when the presigned URL was refused (403): returns a fresh URL, or undefined. */
  refreshUrl?: () => Promise<string | undefined>;
}

/** How long one attempt of a download may take, where `timeoutMs` does not say. */
export const DOWNLOAD_TIMEOUT_MS = 120_000;

/** Resolves after `ms`: the default wait between attempts, where none is injected. */
export const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The download's SHA-256 is not the one expected: an error, never retried into success. */
export const shaMismatch = (options: DownloadOptions, actual: string) =>
  new CodeFetchError(
    `${options.label} does not match its CodeSha256 (expected ${options.sha256}, got ${actual}); refusing to run it`,
  );

/** A download failure that a new attempt can fix. */
class Retryable extends Error {}

/**
 * The download's memory, shared: the extraction's writer threads read the archive from it without
 * a copy.
 */
export const sharedBuffer = (size: number) => Buffer.from(new SharedArrayBuffer(size));

/** Reads the body within the size cap, hashing each chunk as it arrives; returns it and its base64 SHA-256. */
async function readBody(
  response: FetchResponse,
  options: DownloadOptions,
): Promise<{ body: Buffer; sha256: string }> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > options.maxBytes) {
    throw new CodeFetchError(
      `${options.label} is ${declared} bytes, over the ${options.maxBytes}-byte limit; refusing to download it`,
    );
  }
  if (!response.body) throw new Retryable('the response has no body');
  let buffer = sharedBuffer(Number.isFinite(declared) && declared > 0 ? declared : 1024 * 1024);
  let length = 0;
  const hash = createHash('sha256');
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (length + chunk.length > options.maxBytes) {
      throw new CodeFetchError(
        `${options.label} is larger than the ${options.maxBytes}-byte limit; download stopped`,
      );
    }
    if (length + chunk.length > buffer.length) {
      const grown = sharedBuffer(
        Math.min(options.maxBytes, Math.max(buffer.length * 2, length + chunk.length)),
      );
      buffer.copy(grown, 0, 0, length);
      buffer = grown;
    }
    buffer.set(chunk, length);
    length += chunk.length;
    hash.update(chunk);
  }
  if (Number.isFinite(declared) && length !== declared) {
    throw new Retryable(`the download ended after ${length} of ${declared} bytes`);
  }
  return { body: buffer.subarray(0, length), sha256: hash.digest('base64') };
}

/**
 * Downloads a presigned code URL with a size cap and verifies it against its SHA-256. Broken
 * and timed-out downloads are retried; a refused URL (403: expired or denied) is renewed once
 * through `refreshUrl`; a checksum mismatch is an error, never retried into success.
 *
 * @example
 * ```ts
 * import { downloadVerified } from '@immortal-lambda/runner';
 * const zip = await downloadVerified({ url, sha256: configuration.CodeSha256, label: 'the code', maxBytes: 262_144_000, fetch });
 * ```
 */
export async function downloadVerified(options: DownloadOptions): Promise<Buffer> {
  const attempts = options.attempts ?? 3;
  const sleep = options.sleep ?? wait;
  let url = options.url;
  let refreshed = false;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const signal = AbortSignal.timeout(options.timeoutMs ?? DOWNLOAD_TIMEOUT_MS);
    try {
      let response: FetchResponse;
      try {
        response = await options.fetch(url, { signal });
      } catch (error) {
        throw new Retryable(`the request failed: ${(error as Error).message}`, { cause: error });
      }
      if (response.status === 403 || response.status === 400) {
        const body = await response.text().catch(() => '');
        const expired = /expired/i.test(body);
        if (!refreshed && options.refreshUrl) {
          refreshed = true;
          const fresh = await options.refreshUrl();
          if (fresh) {
            url = fresh;
            attempt -= 1;
            continue;
          }
        }
        throw new CodeFetchError(
          expired
            ? `the download URL of ${options.label} has expired (presigned URLs are valid 10 minutes); check the task's clock and that the code is fetched right after GetFunction`
            : `access to ${options.label} was denied (HTTP ${response.status}); the URL may be expired or the task cannot reach S3`,
        );
      }
      if (response.status >= 500 || response.status === 429) throw new Retryable(`HTTP ${response.status}`);
      if (response.status !== 200) {
        throw new CodeFetchError(`downloading ${options.label} answered HTTP ${response.status}`);
      }
      let body: Buffer;
      let actual: string;
      try {
        ({ body, sha256: actual } = await readBody(response, options));
      } catch (error) {
        if (error instanceof CodeFetchError || error instanceof Retryable) throw error;
        throw new Retryable(`the download broke off: ${(error as Error).message}`, { cause: error });
      }
      if (actual !== options.sha256) throw shaMismatch(options, actual);
      return body;
    } catch (error) {
      if (!(error instanceof Retryable)) throw error;
      lastError = error;
      if (attempt < attempts) await sleep(250 * 2 ** (attempt - 1));
    }
  }
  throw new CodeFetchError(
    `${options.label} could not be downloaded after ${attempts} attempts: ${(lastError as Error).message}`,
    { cause: lastError },
  );
}
