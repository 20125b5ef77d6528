import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { CodeFetchError, type RunnerError } from '../errors.js';
import {
  fileSteps,
  type ThreadAnswer,
  type ThreadFile,
  type ThreadWork,
  writeInThread,
} from './writer-thread.js';

/** Below this many entries the threads' start (tens of ms) costs more than they save. */
const THREADS_FROM_ENTRIES = 256;
/** More threads than this gain nothing more on the file system; fewer than two overlap nothing. */
const MOST_THREADS = 4;

/**
 * How many threads write an archive of `entries` entries: one (the calling thread alone) for a
 * small archive or where Node has no native CRC-32 (before 20.15), else one per core, from two
 * to four. Creating files is mostly the kernel's work, and two threads create them nearly twice
 * as fast as one, as each waits on the file system in turn.
 *
 * @example
 * ```ts
 * const threads = writerThreads(5_000); // 2 on a two-core machine
 * ```
 */
export function writerThreads(entries: number, cores = availableParallelism()): number {
  if (entries < THREADS_FROM_ENTRIES || typeof (zlib as { crc32?: unknown }).crc32 !== 'function') return 1;
  return Math.min(MOST_THREADS, Math.max(2, cores));
}

/**
 * A thread's young generation, in MB: the objects of each file's inflating are short-lived, and a
 * small young generation collects them sooner. Peak RSS of a 5,000-file extraction fell from
 * 248–261 to 244–249 MiB (two threads, Node 20), at the same speed.
 */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 1 };

/** A file a thread could not write, as it reports it. */
export type FailedFile = Extract<ThreadAnswer, { ok: false }>;

/** A thread's script: waits for its work, runs {@link writeInThread} on it with {@link fileSteps}, answers. */
const SCRIPT = `const { parentPort } = require('node:worker_threads');
parentPort.once('message', (work) =>
  parentPort.postMessage((${writeInThread.toString()})(require, work, ${fileSteps.toString()})));`;

/** What {@link WriterThreads.write} needs besides the files. */
export interface WriteOptions {
  /** The root was empty: nothing can be in the way of a file. */
  fresh: boolean;
  umask: number;
  /** The error a thread's failed file is reported as. */
  failure: (failed: FailedFile) => RunnerError;
}

/**
 * Threads that inflate, check and write an archive's files. They start when this is made, so
 * that they are ready by the time the archive has been checked and its folders made; each then
 * takes the next file not yet taken until none is left. A failure stops every thread at its
 * next file.
 *
 * @example
 * ```ts
 * const threads = await WriterThreads.start(2);
 * try {
 *   await threads.write(zip, files, starts, { fresh: true, umask: process.umask(), failure });
 * } finally {
 *   threads.close();
 * }
 * ```
 */
export class WriterThreads {
  readonly #workers: Worker[];
  readonly #answers: Promise<ThreadAnswer>[];
  #next: Int32Array | undefined;
  #ready: Int32Array | undefined;
  #files = 0;

  /** Starts `count` threads; Node's worker module is loaded only here, not at every runner's start. */
  static async start(count: number): Promise<WriterThreads> {
    const { Worker } = await import('node:worker_threads');
    return new WriterThreads(
      Array.from({ length: count }, () => new Worker(SCRIPT, { eval: true, resourceLimits: THREAD_LIMITS })),
    );
  }

  private constructor(workers: Worker[]) {
    this.#workers = workers;
    this.#answers = this.#workers.map(answerOf);
    // A thread closed before it was given work rejects; nobody waits for it then.
    for (const answer of this.#answers) answer.catch(() => undefined);
  }

  /**
   * Writes `files`, each once `starts` gives where its bytes start (counted from the start of
   * `zip`): it yields them in the files' order as their bytes arrive. Settles only once every
   * thread has ended, so that nothing is still being written when the caller hears of a failure;
   * a failure of `starts` (the archive stopped arriving) stops the threads and is thrown.
   */
  async write(
    zip: Buffer,
    files: readonly ThreadFile[],
    starts: AsyncIterable<number>,
    options: WriteOptions,
  ): Promise<void> {
    const { buffer, offset } = sharedZip(zip);
    const next = new SharedArrayBuffer(4);
    const ready = new Int32Array(new SharedArrayBuffer(4 * (files.length + 1)));
    this.#next = new Int32Array(next);
    this.#ready = ready;
    this.#files = files.length;
    const work: ThreadWork = {
      zip: buffer,
      files: [...files],
      ready: ready.buffer as SharedArrayBuffer,
      next,
      fresh: options.fresh,
      umask: options.umask,
    };
    for (const worker of this.#workers) worker.postMessage(work);
    const feeding = feed(ready, starts, offset).catch((error: unknown) => {
      this.stop();
      throw error;
    });
    const ended = await Promise.allSettled([
      feeding,
      ...this.#answers.map(async (pending) => {
        const answer = await pending.catch((error: Error) => {
          this.stop();
          throw error;
        });
        if (answer.ok) return;
        this.stop();
        throw options.failure(answer);
      }),
    ]);
    const failed = ended.find((end) => end.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** Stops the threads at their next file (another part of the extraction failed). */
  stop(): void {
    if (this.#next !== undefined) Atomics.store(this.#next, 0, this.#files);
    if (this.#ready !== undefined) {
      Atomics.store(this.#ready, 0, -1);
      Atomics.notify(this.#ready, 0);
    }
  }

  /** Ends the threads that were never given work. */
  close(): void {
    if (this.#next === undefined) for (const worker of this.#workers) void worker.terminate();
  }
}

/**
 * Publishes each start as `starts` yields it (shifted by `offset`, where the archive sits in its
 * shared memory) and wakes the threads waiting for that file; ends once the threads are stopped.
 */
async function feed(ready: Int32Array, starts: AsyncIterable<number>, offset: number): Promise<void> {
  let count = 0;
  for await (const start of starts) {
    if (Atomics.load(ready, 0) < 0) return;
    ready[1 + count] = start + offset;
    count += 1;
    Atomics.store(ready, 0, count);
    Atomics.notify(ready, 0);
  }
}

/** The thread's one answer; an error of the thread, or its end without one, rejects. */
function answerOf(worker: Worker): Promise<ThreadAnswer> {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', (error) =>
      reject(
        new CodeFetchError(`a writer thread of the extraction failed: ${error.message}`, { cause: error }),
      ),
    );
    worker.once('exit', (code) =>
      reject(new CodeFetchError(`a writer thread of the extraction exited (${code}) without answering`)),
    );
  });
}

/**
 * The archive's bytes as a SharedArrayBuffer the threads can read: the download's own memory
 * when it already is one (see `download.ts`), else a copy.
 */
function sharedZip(zip: Buffer): { buffer: SharedArrayBuffer; offset: number } {
  if (zip.buffer instanceof SharedArrayBuffer) return { buffer: zip.buffer, offset: zip.byteOffset };
  const buffer = new SharedArrayBuffer(zip.length);
  new Uint8Array(buffer).set(zip);
  return { buffer, offset: 0 };
}
