import type * as fs from 'node:fs';
import type * as zlib from 'node:zlib';

/** One file of an archive to write: where its compressed bytes are, and where it goes. */
export interface ArchiveFile {
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

/** A file as the threads are first given it: where its bytes start comes once they have arrived. */
export type ThreadFile = Omit<ArchiveFile, 'start'>;

/** What every writer thread of one extraction is given. */
export interface ThreadWork {
  /** The archive, shared between the threads, not copied. */
  zip: SharedArrayBuffer;
  files: ThreadFile[];
  /**
   * Int32s, shared: [0] how many files are ready, their bytes arrived (−1: they never will, stop);
   * [1 + i] where file i's compressed bytes start in `zip`.
   */
  ready: SharedArrayBuffer;
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
      stage: FileStage;
      code: string | undefined;
      message: string;
    };

/** The stage a file failed at: its data does not inflate, its size or CRC-32 is wrong, or the file system refused it. */
export type FileStage = 'inflate' | 'check' | 'write';

/** Inflating and writing one file of an archive, the same on the calling thread and in a writer thread. */
export interface FileSteps {
  /** The file's bytes, inflated and checked against its size and CRC-32. */
  inflate(zip: Uint8Array, file: ArchiveFile): Uint8Array;
  /**
   * Inflates the file and writes it where nothing is (`wx`: never through a link), after clearing
   * what is in the way in a used root, and sets the mode the umask cleared.
   */
  write(zip: Uint8Array, file: ArchiveFile, fresh: boolean, umask: number): void;
}

/**
 * The steps of one file. Errors carry the `stage` they failed at. Self-contained, as it also runs
 * in a worker from its source text (see `writer-threads.ts`): Node's modules come through `load`,
 * and `crc32` through `load('node:zlib')` unless given.
 *
 * @example
 * ```ts
 * const steps = fileSteps(require);
 * steps.write(zip, file, true, process.umask());
 * ```
 */
export function fileSteps(load: (id: string) => unknown, crc32?: (data: Uint8Array) => number): FileSteps {
  const { chmodSync, lstatSync, rmSync, unlinkSync, writeFileSync } = load('node:fs') as typeof fs;
  const { inflateRawSync, crc32: nativeCrc32 } = load('node:zlib') as typeof zlib & {
    crc32: (data: Uint8Array) => number;
  };
  const checksum = crc32 ?? nativeCrc32;
  const failed = (stage: FileStage, error: unknown) => Object.assign(error as Error, { stage });
  // Frees a file's inflated bytes once written, where Node can (22 and later: ArrayBuffer's
  // transfer), and only memory the file owns alone; else the collector frees them, later: each
  // thread held about 30 MB more at its peak.
  const release = (out: Uint8Array) => {
    const memory = out.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
    if (
      typeof memory.transfer === 'function' &&
      out.byteOffset === 0 &&
      out.byteLength === memory.byteLength
    ) {
      memory.transfer(0);
    }
  };
  const inflate = (zip: Uint8Array, file: ArchiveFile): Uint8Array => {
    const data = zip.subarray(file.start, file.start + file.compressedSize);
    let out: Uint8Array;
    try {
      // One output chunk of the declared size: nothing to gather and copy afterwards.
      out =
        file.method === 0
          ? data
          : inflateRawSync(data, {
              maxOutputLength: Math.max(1, file.uncompressedSize),
              chunkSize: Math.max(64, file.uncompressedSize),
            });
    } catch (error) {
      throw failed('inflate', error);
    }
    if (out.length !== file.uncompressedSize || checksum(out) !== file.crc32) {
      throw failed('check', new Error('fails its size or CRC-32 check'));
    }
    return out;
  };
  return {
    inflate,
    write(zip, file, fresh, umask) {
      const out = inflate(zip, file);
      try {
        if (!fresh) {
          const existing = lstatSync(file.path, { throwIfNoEntry: false });
          if (existing?.isDirectory()) rmSync(file.path, { recursive: true, force: true });
          else if (existing !== undefined) unlinkSync(file.path);
        }
        writeFileSync(file.path, out, { mode: file.mode, flag: 'wx' });
        release(out);
        if ((file.mode & ~umask) !== file.mode) chmodSync(file.path, file.mode);
      } catch (error) {
        throw failed('write', error);
      }
    },
  };
}

/**
 * The body of one writer thread: takes the next file from the shared counter, waits until its
 * bytes have arrived, and writes it with {@link fileSteps}, until the files run out, one fails, or
 * the archive stops arriving; a failure stops the other threads at their next file.
 *
 * It runs in a worker from its own source text (see `writer-threads.ts`), so it uses nothing but
 * its arguments: Node's modules come through `load`, the steps through `steps`.
 *
 * @example
 * ```ts
 * import { fileSteps, writeInThread } from './writer-thread.js';
 * const answer = writeInThread(require, work, fileSteps);
 * ```
 */
export function writeInThread(
  load: (id: string) => unknown,
  work: ThreadWork,
  steps: typeof fileSteps,
): ThreadAnswer {
  const { write } = steps(load);
  const zip = new Uint8Array(work.zip);
  const next = new Int32Array(work.next);
  const ready = new Int32Array(work.ready);
  let written = 0;
  for (let index = Atomics.add(next, 0, 1); index < work.files.length; index = Atomics.add(next, 0, 1)) {
    let count = Atomics.load(ready, 0);
    while (count >= 0 && count <= index) {
      Atomics.wait(ready, 0, count);
      count = Atomics.load(ready, 0);
    }
    if (count < 0) break;
    try {
      write(zip, { ...work.files[index], start: ready[1 + index] } as ArchiveFile, work.fresh, work.umask);
      written += 1;
    } catch (error) {
      Atomics.store(next, 0, work.files.length);
      const { code, message, stage } = error as { code?: string; message?: string; stage?: FileStage };
      return { ok: false, index, stage: stage ?? 'write', code, message: message ?? String(error) };
    }
  }
  return { ok: true, files: written };
}
