import { RunnerError, UnsafeArchiveError } from '../errors.js';
import type { ZipEntry } from './central-directory.js';
import type { FileStage } from './writer-thread.js';

// The errors an entry of an archive can end an extraction with, each naming the entry.

/** An entry whose data does not inflate: the archive is corrupt. */
const inflateFailure = (label: string, entry: ZipEntry, cause: { message: string }) =>
  new UnsafeArchiveError(
    `${label}: "${entry.name}" does not inflate to its declared ${entry.uncompressedSize} bytes (${cause.message})`,
    { cause },
  );

/** An entry whose size or CRC-32 is not what the archive declares. */
export const checkFailure = (label: string, entry: ZipEntry) =>
  new UnsafeArchiveError(`${label}: "${entry.name}" fails its size or CRC-32 check; the archive is corrupt`);

/** A file system error while writing an entry, as an archive problem that names the entry. */
export function entryFailure(label: string, name: string, error: unknown): RunnerError {
  if (error instanceof RunnerError) return error;
  const code = (error as { code?: string }).code;
  const why =
    code === 'ENAMETOOLONG'
      ? 'its name is too long for the file system'
      : code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR'
        ? `it clashes with what is already there (${code})`
        : code === 'ELOOP'
          ? 'it passes through too many links'
          : `${code ?? 'error'}: ${(error as Error).message}`;
  return new UnsafeArchiveError(`${label}: entry "${name}" cannot be extracted: ${why}`, { cause: error });
}

/**
 * A file that failed at one of its steps (see `fileSteps`), on the calling thread or as a writer
 * thread reports it, as the archive problem that names the entry.
 */
export function fileFailure(
  label: string,
  entry: ZipEntry,
  failed: { stage?: FileStage | undefined; code?: string | undefined; message: string },
): RunnerError {
  if (failed.stage === 'inflate') return inflateFailure(label, entry, failed);
  if (failed.stage === 'check') return checkFailure(label, entry);
  const cause =
    failed instanceof Error ? failed : Object.assign(new Error(failed.message), { code: failed.code });
  return entryFailure(label, entry.name, cause);
}
