import { readCentralDirectory, type ZipEntry } from './central-directory.js';

/**
 * An archive still arriving, as {@link extractZip} reads it: its last bytes (the central
 * directory) may have been fetched ahead, the rest arrive in order from the start.
 * `downloadArriving` answers one.
 *
 * @example
 * ```ts
 * import type { ArchiveArrival } from '@immortal-lambda/runner';
 * const here: ArchiveArrival = { tail: Promise.resolve(false), until: async () => {} };
 * ```
 */
export interface ArchiveArrival {
  /**
   * True once the archive's last bytes (a megabyte or more) are in place, fetched ahead; false
   * once they come, or came, in order with the rest.
   */
  readonly tail: Promise<boolean>;
  /** Resolves once the first `end` bytes of the archive are in place; rejects if they never will be. */
  until(end: number): Promise<void>;
}

/** A downloaded archive: every byte is here. */
export const ARRIVED: ArchiveArrival = { tail: Promise.resolve(false), until: () => Promise.resolve() };

/**
 * The central directory, read from the bytes fetched ahead when they hold all of it; else (no
 * bytes fetched ahead, or the read met bytes not yet arrived, which fail its signature checks)
 * once the whole archive is here.
 */
export async function arrivedDirectory(zip: Buffer, arrival: ArchiveArrival): Promise<ZipEntry[]> {
  if (await arrival.tail) {
    try {
      return readCentralDirectory(zip);
    } catch {
      // Not all of it was fetched ahead: read again once everything is here.
    }
  }
  await arrival.until(zip.length);
  return readCentralDirectory(zip);
}

/** Resolves once an entry's local header and compressed bytes have arrived. */
export async function entryArrived(zip: Buffer, entry: ZipEntry, arrival: ArchiveArrival): Promise<void> {
  if (arrival === ARRIVED) return;
  const header = entry.localHeaderOffset;
  await arrival.until(Math.min(zip.length, header + 30));
  const names = header + 30 <= zip.length ? zip.readUInt16LE(header + 26) + zip.readUInt16LE(header + 28) : 0;
  await arrival.until(Math.min(zip.length, header + 30 + names + entry.compressedSize));
}
