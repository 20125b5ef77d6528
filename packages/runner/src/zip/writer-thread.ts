import type * as fs from 'node:fs';
import type * as zlib from 'node:zlib';

/** One file for the writer threads: where its compressed bytes are, and where it goes. */
export interface ThreadFile {
  /** The real path to write, in a folder already entered and checked. */
  path: string;
  /** Where the entry's compressed bytes start in the archive. */
  start: number;
  compressedSize: number;
  uncompressedSize: number;
  /** 0 stored, 8 deflate. */
  method: number;
  crc32: number;
  mode: number;
}

/** What every writer thread of one extraction is given. */
export interface ThreadWork {
  /** The archive, shared between the threads, not copied. */
  zip: SharedArrayBuffer;
  files: ThreadFile[];
  /** One Int32: the index of the next file to take; set past the end to stop every thread. */
  next: SharedArrayBuffer;
  /** The root was empty: nothing can be in the way of a file. */
  fresh: boolean;
  /** The process umask: a mode it would clear is set again with chmod. */
  umask: number;
}

/** How a writer thread ended: every file it took written, or the one it could not write. */
export type ThreadAnswer =
  | { ok: true; files: number }
  | {
      ok: false;
      /** The index in {@link ThreadWork.files} of the file that failed. */
      index: number;
      /** `inflate`: the data is corrupt; `check`: wrong size or CRC-32; `write`: the file system refused. */
      stage: 'inflate' | 'check' | 'write';
      code: string | undefined;
      message: string;
    };

/**
 * The body of one writer thread: takes the next file from the shared counter, inflates it,
 * checks its size and CRC-32, and writes it where nothing is (`wx`: never through a link), until
 * the files run out or one fails; a failure stops the other threads at their next file.
 *
 * It runs in a worker from its own source text (see `writer-threads.ts`), so it uses nothing but
 * its arguments: Node's modules come through `load`.
 *
 * @example
 * ```ts
 * import { writeInThread } from './writer-thread.js';
 * const answer = writeInThread(require, work);
 * ```
 */
export function writeInThread(load: (id: string) => unknown, work: ThreadWork): ThreadAnswer {
  const { chmodSync, lstatSync, rmSync, unlinkSync, writeFileSync } = load('node:fs') as typeof fs;
  const { inflateRawSync, crc32 } = load('node:zlib') as typeof zlib & {
    crc32: (data: Uint8Array) => number;
  };
  const zip = new Uint8Array(work.zip);
  const next = new Int32Array(work.next);
  let written = 0;
  for (let index = Atomics.add(next, 0, 1); index < work.files.length; index = Atomics.add(next, 0, 1)) {
    const file = work.files[index] as ThreadFile;
    let stage: 'inflate' | 'check' | 'write' = 'inflate';
    try {
      const data = zip.subarray(file.start, file.start + file.compressedSize);
      // One output chunk of the declared size: nothing to gather and copy afterwards.
      const out =
        file.method === 0
          ? data
          : inflateRawSync(data, {
              maxOutputLength: Math.max(1, file.uncompressedSize),
              chunkSize: Math.max(64, file.uncompressedSize),
            });
      stage = 'check';
      if (out.length !== file.uncompressedSize || crc32(out) !== file.crc32) {
        throw new Error('fails its size or CRC-32 check');
      }
      stage = 'write';
      if (!work.fresh) {
        const existing = lstatSync(file.path, { throwIfNoEntry: false });
        if (existing?.isDirectory()) rmSync(file.path, { recursive: true, force: true });
        else if (existing !== undefined) unlinkSync(file.path);
      }
      writeFileSync(file.path, out, { mode: file.mode, flag: 'wx' });
      if ((file.mode & ~work.umask) !== file.mode) chmodSync(file.path, file.mode);
      written += 1;
    } catch (error) {
      Atomics.store(next, 0, work.files.length);
      const { code, message } = error as { code?: string; message?: string };
      return { ok: false, index, stage, code, message: message ?? String(error) };
    }
  }
  return { ok: true, files: written };
}
