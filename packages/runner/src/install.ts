import { type ArrivingDownload, aheadDiffers, downloadArriving } from './arriving-download.js';
import { type DownloadOptions, downloadVerified, type Fetch } from './download.js';
import { type ExtractResult, extractZip } from './zip/extract.js';

/**
 * Lambda's limit on code and layers together, unzipped: 250 MB.
 *
 * @example
 * ```ts
 * import { extractZip, LAMBDA_UNZIPPED_LIMIT } from '@immortal-lambda/runner';
 * await extractZip(zip, { root: '/var/task', maxBytes: LAMBDA_UNZIPPED_LIMIT, label: 'the code' });
 * ```
 */
export const LAMBDA_UNZIPPED_LIMIT = 262_144_000;
/** The largest zip the runner downloads: Lambda's limit for code uploaded through S3. */
export const MAX_ZIP_BYTES = LAMBDA_UNZIPPED_LIMIT;

/**
 * Zips of this size or more are extracted while they download: below it, the download takes less
 * time than the request that fetches the archive's end ahead.
 */
const EXTRACT_WHILE_DOWNLOADING_FROM = 8 * 1024 * 1024;

/**
 * Options of {@link installArchive}.
 *
 * @example
 * ```ts
 * import type { InstallOptions } from '@immortal-lambda/runner';
 * const options: InstallOptions = { url, sha256, label: 'the code', root: '/var/task', maxBytes: 262_144_000, fetch };
 * ```
 */
export interface InstallOptions {
  /** The archive's presigned URL. */
  url: string;
  /** Its base64 SHA-256 (`CodeSha256`). */
  sha256: string;
  /** What the archive is, for messages. */
  label: string;
  /** The folder it is extracted into. */
  root: string;
  /** How many bytes it may unpack to. */
  maxBytes: number;
  /**
   * The zip's size as Lambda reports it (`CodeSize`): one of `extractWhileDownloadingFrom` bytes or
   * more is extracted while it arrives. Unknown: after its download.
   */
  size?: number | undefined;
  fetch: Fetch;
  /** Called when the URL was refused (403): returns a fresh one, or undefined. */
  refreshUrl?: () => Promise<string | undefined>;
  sleep?: (ms: number) => Promise<void>;
  progress?: (message: string, attributes: Record<string, unknown>) => void;
  /** Zips of at least this many bytes are extracted while they download (default 8 MiB). */
  extractWhileDownloadingFrom?: number;
}

/**
 * Downloads an archive and extracts it into `root`, as the runner installs a function's code and
 * each layer: a large zip while it arrives (see {@link downloadArriving}), the extraction counted
 * only once the whole zip matches its SHA-256 (and its end the bytes fetched ahead); a smaller
 * one after its download. A download that breaks off during the extraction is made again whole,
 * with the retries of any download, and extracted over what was written.
 *
 * @example
 * ```ts
 * import { httpGet, installArchive } from '@immortal-lambda/runner';
 * const { files } = await installArchive({ url, sha256, label: 'the code', root: '/var/task', maxBytes: 262_144_000, fetch: httpGet });
 * ```
 */
export async function installArchive(options: InstallOptions): Promise<ExtractResult> {
  const { url, label, sha256, fetch, refreshUrl, sleep } = options;
  const download: DownloadOptions = {
    url,
    label,
    sha256,
    maxBytes: MAX_ZIP_BYTES,
    fetch,
    ...(refreshUrl ? { refreshUrl } : {}),
    ...(sleep ? { sleep } : {}),
  };
  const fromBytes = options.extractWhileDownloadingFrom ?? EXTRACT_WHILE_DOWNLOADING_FROM;
  const large = options.size !== undefined && options.size >= fromBytes;
  const arriving = large ? await downloadArriving(download) : undefined;
  if (arriving === undefined) return extract(await downloadVerified(download), options);
  options.progress?.('Extracting the archive while it downloads', {
    archive: label,
    bytes: arriving.zip.length,
  });
  try {
    const result = await extract(arriving.zip, options, arriving);
    await arriving.verified;
    return result;
  } catch (error) {
    if (arriving.broken === undefined) throw error;
    options.progress?.('The download broke off during the extraction; downloading it again', {
      archive: label,
      reason: arriving.broken.message,
    });
    const zip = await downloadVerified(download);
    // What was written was planned from the bytes fetched ahead: they must be the archive's.
    if (!arriving.aheadMatches(zip)) throw aheadDiffers(label);
    return extract(zip, options);
  }
}

function extract(zip: Buffer, options: InstallOptions, arrival?: ArrivingDownload): Promise<ExtractResult> {
  const { root, maxBytes, label } = options;
  return extractZip(zip, { root, maxBytes, label, ...(arrival ? { arrival } : {}) });
}
