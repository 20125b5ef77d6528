import { createHash } from 'node:crypto';
import {
  DOWNLOAD_TIMEOUT_MS,
  type DownloadOptions,
  type FetchResponse,
  shaMismatch,
  sharedBuffer,
} from './download.js';
import { CodeFetchError } from './errors.js';
import type { ArchiveArrival } from './zip/arrival.js';

/** How much of the archive's end is fetched ahead: the central directory of up to about 10,000 files. */
const TAIL_BYTES = 1024 * 1024;

/**
 * A download that can be extracted while it arrives (see {@link downloadArriving}).
 *
 * @example
 * ```ts
 * import type { ArrivingDownload } from '@immortal-lambda/runner';
 * const done = (download: ArrivingDownload) => download.verified;
 * ```
 */
export interface ArrivingDownload extends ArchiveArrival {
  /** The whole archive's memory, shared, filled from the start as the body arrives. */
  readonly zip: Buffer;
  /**
   * Resolves once the whole archive has arrived, matches its SHA-256, and its end matches the
   * bytes fetched ahead; rejects with the mismatch (a `CodeFetchError` to report) or with what
   * broke the download (see {@link broken}).
   */
  readonly verified: Promise<void>;
  /** Why the download broke off, once it has: a new download can mend it. */
  readonly broken: Error | undefined;
  /**
   * Whether the bytes fetched ahead are those of `zip`, a verified download of the same archive:
   * what was planned from them named that archive's entries.
   */
  aheadMatches(zip: Buffer): boolean;
}

/**
 * Starts downloading an archive so that it can be extracted while it arrives: the body is
 * received into shared memory and hashed as it comes, and the archive's last megabyte (its
 * central directory) is fetched ahead with a range request, so that the extraction can plan
 * every entry at once and write each as its bytes arrive. One attempt, no retries: undefined when
 * the first answer is not a 200 with its size, within `maxBytes` (the caller then downloads with
 * `downloadVerified`, which retries and reports). Nothing extracted counts until
 * {@link ArrivingDownload.verified} resolves.
 *
 * @example
 * ```ts
 * import { downloadArriving, extractZip } from '@immortal-lambda/runner';
 * const download = await downloadArriving({ url, sha256, label: 'the code', maxBytes: 262_144_000, fetch });
 * if (download) {
 *   await extractZip(download.zip, { root: '/var/task', maxBytes: 262_144_000, label: 'the code', arrival: download });
 *   await download.verified;
 * }
 * ```
 */
export async function downloadArriving(options: DownloadOptions): Promise<ArrivingDownload | undefined> {
  const tailAbort = new AbortController();
  const tail = options
    .fetch(options.url, { headers: { range: `bytes=-${TAIL_BYTES}` }, signal: tailAbort.signal })
    .catch(() => undefined);
  const signal = AbortSignal.timeout(options.timeoutMs ?? DOWNLOAD_TIMEOUT_MS);
  const response = await options.fetch(options.url, { signal }).catch(() => undefined);
  const size = Number(response?.headers.get('content-length') ?? Number.NaN);
  if (response?.status !== 200 || !response.body || !Number.isFinite(size) || size > options.maxBytes) {
    tailAbort.abort();
    discard(response);
    return undefined;
  }
  return new Arriving(size, options, response, tail, tailAbort);
}

/** Ends a response whose body will not be read. */
function discard(response: FetchResponse | undefined): void {
  const body = response?.body as { cancel?: () => Promise<void>; destroy?: () => void } | null | undefined;
  body?.cancel?.().catch(() => undefined);
  body?.destroy?.();
}

/**
 * The archive's end fetched ahead is not the end of the archive: what was extracted was planned
 * from other bytes than the ones verified. Never retried into success.
 */
export const aheadDiffers = (label: string) =>
  new CodeFetchError(
    `the end of ${label} fetched ahead with a range request differs from the downloaded archive (the object changed, or the server answers ranges wrongly); refusing to run it`,
  );

/** What was thrown, as an Error. */
const reason = (error: unknown) => (error instanceof Error ? error : new Error(String(error)));

class Arriving implements ArrivingDownload {
  readonly zip: Buffer;
  readonly tail: Promise<boolean>;
  readonly verified: Promise<void>;
  #arrived = 0;
  /** Where the bytes fetched ahead begin, once placed: from there the body must match them. */
  #placedFrom: number | undefined;
  /** Why the download failed, once it has: a mismatch (`CodeFetchError`), else what broke it. */
  #failure: Error | undefined;
  readonly #label: string;
  #waiters: { end: number; resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(
    size: number,
    options: DownloadOptions,
    response: FetchResponse,
    tail: Promise<FetchResponse | undefined>,
    tailAbort: AbortController,
  ) {
    this.zip = sharedBuffer(size);
    this.#label = options.label;
    this.verified = this.#receive(response, options).finally(() => tailAbort.abort());
    // Once the whole body is here, the end fetched ahead is no longer waited for. This also hears
    // `verified`'s failure: never an unhandled rejection when the extraction failed first.
    const bodyEnded = this.verified.then(
      () => false,
      () => false,
    );
    // A tail not placed, whatever the reason, is ended here, its request with it.
    const placed = this.#placeTail(tail)
      .catch(() => false)
      .then((done) => {
        if (!done) tailAbort.abort();
        return done;
      });
    this.tail = Promise.race([placed, bodyEnded]);
  }

  get broken(): Error | undefined {
    return this.#failure instanceof CodeFetchError ? undefined : this.#failure;
  }

  aheadMatches(zip: Buffer): boolean {
    const from = this.#placedFrom;
    return (
      from === undefined ||
      (zip.length === this.zip.length && zip.subarray(from).equals(this.zip.subarray(from)))
    );
  }

  until(end: number): Promise<void> {
    if (end <= this.#arrived) return Promise.resolve();
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ end, resolve, reject }));
  }

  /** Receives the body in order, hashing it; the bytes fetched ahead must match what arrives. */
  async #receive(response: FetchResponse, options: DownloadOptions): Promise<void> {
    const hash = createHash('sha256');
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        const at = this.#arrived;
        if (at + chunk.length > this.zip.length) {
          throw new Error(`the body ran past its declared ${this.zip.length} bytes`);
        }
        this.#checkAhead(chunk, at);
        this.zip.set(chunk, at);
        hash.update(chunk);
        this.#advance(at + chunk.length);
      }
      if (this.#arrived !== this.zip.length) {
        throw new Error(`the download ended after ${this.#arrived} of ${this.zip.length} bytes`);
      }
    } catch (error) {
      this.#fail(reason(error));
      throw error;
    }
    const actual = hash.digest('base64');
    if (actual !== options.sha256) {
      const mismatch = shaMismatch(options, actual);
      this.#fail(mismatch);
      throw mismatch;
    }
  }

  /** The part of a chunk that lands where bytes were fetched ahead must be those bytes. */
  #checkAhead(chunk: Uint8Array, at: number): void {
    const from = this.#placedFrom;
    const end = at + chunk.length;
    if (from === undefined || end <= from) return;
    const start = Math.max(at, from);
    if (Buffer.compare(chunk.subarray(start - at), this.zip.subarray(start, end)) !== 0) {
      throw aheadDiffers(this.#label);
    }
  }

  #advance(length: number): void {
    this.#arrived = length;
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (waiter.end <= length) waiter.resolve();
      else this.#waiters.push(waiter);
    }
  }

  #fail(error: Error): void {
    this.#failure = error;
    for (const waiter of this.#waiters) waiter.reject(error);
    this.#waiters = [];
  }

  /**
   * Places the archive's end, fetched ahead, where it belongs, past the bytes already arrived.
   * A server that does not answer the range (200, or another range) is ignored: the central
   * directory is then read once the whole archive is here. False when not placed (the caller
   * ends the request).
   */
  async #placeTail(pending: Promise<FetchResponse | undefined>): Promise<boolean> {
    const response = await pending;
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response?.headers.get('content-range') ?? '');
    const size = this.zip.length;
    if (response?.status !== 206 || !response.body || !range || Number(range[3]) !== size) {
      discard(response);
      return false;
    }
    const from = Number(range[1]);
    if (Number(range[2]) !== size - 1 || from > size - 1) return false;
    // Gathered whole before any of it is placed: a tail that breaks off leaves nothing behind.
    const bytes = Buffer.allocUnsafe(size - from);
    let length = 0;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      if (length + chunk.length > bytes.length) return false;
      bytes.set(chunk, length);
      length += chunk.length;
    }
    if (length !== bytes.length) return false;
    const at = Math.max(from, this.#arrived);
    this.zip.set(bytes.subarray(at - from), at);
    this.#placedFrom = at;
    return true;
  }
}
