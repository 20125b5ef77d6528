import * as nodeFs from 'node:fs';
import { chmod, lstat, mkdir, readdir, realpath, rm, stat, symlink, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as nodeZlib from 'node:zlib';
import { BadInputError, UnsafeArchiveError } from '../errors.js';
import { inside } from '../paths.js';
import { ARRIVED, type ArchiveArrival, arrivedDirectory, entryArrived } from './arrival.js';
import { entryData, type ZipEntry } from './central-directory.js';
import { crc32 } from './crc32.js';
import { checkFailure, entryFailure, fileFailure } from './entry-errors.js';
import { enterFolder, folderCache } from './folders.js';
import { type Planned, planArchive } from './plan.js';
import { type ArchiveFile, fileSteps, type ThreadFile } from './writer-thread.js';
import { WriterThreads, writerThreads } from './writer-threads.js';

/** Entries larger than this are streamed to disk instead of inflated in memory. */
const STREAM_ABOVE = 4 * 1024 * 1024;

/**
 * Options of {@link extractZip}.
 *
 * @example
 * ```ts
 * import type { ExtractOptions } from '@immortal-lambda/runner';
 * const options: ExtractOptions = { root: '/opt', maxBytes: 262_144_000, label: 'layer deps:3' };
 * ```
 */
export interface ExtractOptions {
  /** The folder the archive is extracted into; nothing is written outside it. */
  root: string;
  /** How many bytes the archive may unpack to; larger archives are refused before writing. */
  maxBytes: number;
  /** What the archive is, for messages: "the function code", "layer …". */
  label: string;
  /**
   * How many threads write the files (1: the calling thread alone). Default: two to four for an
   * archive of 256 files or more, one below.
   */
  threads?: number;
  /**
   * The archive is still arriving (see `downloadArriving`): each entry is written once its bytes
   * are here. Default: every byte is.
   */
  arrival?: ArchiveArrival;
}

/**
 * What {@link extractZip} wrote.
 *
 * @example
 * ```ts
 * import type { ExtractResult } from '@immortal-lambda/runner';
 * const summary = (r: ExtractResult) => `${r.files} files, ${r.bytes} bytes`;
 * ```
 */
export interface ExtractResult {
  files: number;
  directories: number;
  links: number;
  bytes: number;
}

/** Node's modules as {@link fileSteps} asks for them. */
const NODE_MODULES: Readonly<Record<string, unknown>> = { 'node:fs': nodeFs, 'node:zlib': nodeZlib };
/** One file's inflating and writing, as the writer threads do it, with this package's CRC-32. */
const steps = fileSteps((id) => NODE_MODULES[id], crc32);

/** An entry's place on disk and its sizes, for the writer threads. */
function threadFile(entry: ZipEntry, path: string, mode: number): ThreadFile {
  const { compressedSize, uncompressedSize, method, crc32 } = entry;
  return { path, compressedSize, uncompressedSize, method, crc32, mode };
}

/** Where an entry's compressed bytes start, found through its local header. */
const dataStart = (zip: Buffer, entry: ZipEntry) => entryData(zip, entry).byteOffset - zip.byteOffset;

/** An entry's place in the archive and on disk, for {@link fileSteps}. */
function archiveFile(zip: Buffer, entry: ZipEntry, path: string, mode: number): ArchiveFile {
  return { ...threadFile(entry, path, mode), start: dataStart(zip, entry) };
}

/** An entry's bytes, inflated and checked (a link's target). */
function inflateEntry(zip: Buffer, entry: ZipEntry, label: string): Buffer {
  try {
    const out = steps.inflate(zip, archiveFile(zip, entry, '', 0));
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  } catch (error) {
    throw fileFailure(label, entry, error as Error);
  }
}

async function streamEntry(
  zip: Buffer,
  entry: ZipEntry,
  path: string,
  mode: number,
  label: string,
): Promise<void> {
  let written = 0;
  let crc = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      written += chunk.length;
      if (written > entry.uncompressedSize) {
        callback(
          new UnsafeArchiveError(
            `${label}: "${entry.name}" inflates past its declared ${entry.uncompressedSize} bytes`,
          ),
        );
        return;
      }
      crc = crc32(chunk, crc);
      callback(null, chunk);
    },
  });
  const source = Readable.from([entryData(zip, entry)]);
  const sink = nodeFs.createWriteStream(path, { mode, flags: 'wx' });
  if (entry.method === 0) await pipeline(source, guard, sink);
  else await pipeline(source, nodeZlib.createInflateRaw(), guard, sink);
  if (written !== entry.uncompressedSize || crc !== entry.crc32) throw checkFailure(label, entry);
}

/** A file of the archive's plan. */
type FileItem = Extract<Planned, { kind: 'file' }>;

/** Removes whatever is at `path` (a real path inside the root) so that an entry can take its place. */
async function clear(path: string): Promise<void> {
  const existing = await lstat(path).catch(() => undefined);
  if (existing === undefined) return;
  // rm never follows links below the folder it removes; a link itself is unlinked.
  if (existing.isDirectory()) await rm(path, { recursive: true, force: true });
  else await unlink(path);
}

/**
 * Extracts a zip held in memory into `options.root`. Nothing is written before every entry has
 * been checked (see {@link planArchive}): unsafe names, duplicates, clashes between a file or a
 * link and a folder, and links that resolve outside the root through any chain of links refuse
 * the whole archive. Then folders and files are written, each folder entered part by part at the
 * moment of the write, and links are created last, so that no write of this archive goes
 * through one of its own links. Each entry's size and CRC-32 are verified, Unix modes
 * (executable bits) kept; a large archive's files are inflated and written by several threads.
 * File system errors name the entry.
 *
 * @example
 * ```ts
 * import { extractZip } from '@immortal-lambda/runner';
 * const { files } = await extractZip(zip, { root: '/var/task', maxBytes: 262_144_000, label: 'the code' });
 * ```
 */
export async function extractZip(zip: Buffer, options: ExtractOptions): Promise<ExtractResult> {
  const root = resolve(options.root);
  const { label } = options;
  const arrival = options.arrival ?? ARRIVED;
  const entries = await arrivedDirectory(zip, arrival);
  const threads = options.threads ?? writerThreads(entries.length);
  // Started now, the threads are ready by the time the archive is checked and its folders made.
  const writers = threads > 1 ? await WriterThreads.start(threads) : undefined;
  try {
    const realRoot = await openRoot(root, label);
    const planned = await planArchive(entries, {
      root,
      realRoot,
      maxBytes: options.maxBytes,
      label,
      readLink: async (entry) => {
        await entryArrived(zip, entry, arrival);
        return inflateEntry(zip, entry, label);
      },
    });
    // Into an empty root nothing can be in the way; into a used one (layers over layers) a file
    // may replace a link or a folder of an earlier archive.
    const fresh = (await readdir(root)).length === 0;
    const target: Target = {
      zip,
      arrival,
      label,
      realRoot,
      fresh,
      writers,
      enter: folderCache(realRoot, label),
    };
    const result: ExtractResult = { files: 0, directories: 0, links: 0, bytes: 0 };
    await writeFolders(target, planned, result);
    await writeFiles(target, planned, result);
    await writeLinks(target, planned, result);
    return result;
  } finally {
    writers?.close();
  }
}

/** What every write of one extraction shares. */
interface Target {
  zip: Buffer;
  arrival: ArchiveArrival;
  label: string;
  realRoot: string;
  /** The root was empty: nothing can be in the way of an entry. */
  fresh: boolean;
  /** The threads that write the files, or none: the calling thread writes them. */
  writers: WriterThreads | undefined;
  /** The real path of a folder of the archive, entered part by part once. */
  enter: (parts: readonly string[], name: string) => string;
}

/** Creates the root when needed and returns its real path; a root that cannot be is bad input. */
async function openRoot(root: string, label: string): Promise<string> {
  try {
    await mkdir(root, { recursive: true });
    const realRoot = await realpath(root);
    if (!(await stat(realRoot)).isDirectory())
      throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
    return realRoot;
  } catch (error) {
    throw new BadInputError(
      `${label} cannot be extracted into ${root}: it is not a folder that can be created or written (${(error as { code?: string }).code ?? (error as Error).message})`,
      { cause: error },
    );
  }
}

/** Runs one entry's write; a file system error names the entry. */
async function guarded<T>(label: string, name: string, write: () => T | Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    throw entryFailure(label, name, error);
  }
}

async function writeFolders(
  target: Target,
  planned: readonly Planned[],
  result: ExtractResult,
): Promise<void> {
  for (const item of planned) {
    if (item.kind !== 'directory') continue;
    await guarded(target.label, item.entry.name, () => target.enter(item.parts, item.entry.name));
    result.directories += 1;
  }
}

/** How long the file writes hold the event loop before they let timers and signals in. */
const SLICE_MS = 50;

/**
 * Writes the archive's files: on the calling thread for a small archive, else in writer threads
 * (see {@link writerThreads}), the entries too large to inflate in memory streamed meanwhile.
 */
async function writeFiles(target: Target, planned: readonly Planned[], result: ExtractResult): Promise<void> {
  const files = planned.filter((item): item is FileItem => item.kind === 'file');
  if (target.writers === undefined) await writeFilesHere(target, files);
  else await writeFilesInThreads(target, files, target.writers);
  for (const item of files) {
    result.files += 1;
    result.bytes += item.entry.uncompressedSize;
  }
}

/** Where a file goes: its folder entered (and checked), then its name. */
function filePath(target: Target, item: FileItem): string {
  try {
    return join(target.enter(item.parts.slice(0, -1), item.entry.name), item.parts.at(-1) as string);
  } catch (error) {
    throw entryFailure(target.label, item.entry.name, error);
  }
}

const streamed = (item: FileItem) => item.entry.uncompressedSize > STREAM_ABOVE;

/** Streams an entry too large to inflate in memory, then sets the mode the umask may have cleared. */
async function writeStreamed(target: Target, item: FileItem, path: string, umask: number): Promise<void> {
  await entryArrived(target.zip, item.entry, target.arrival);
  await guarded(target.label, item.entry.name, async () => {
    if (!target.fresh) await clear(path);
    await streamEntry(target.zip, item.entry, path, item.mode, target.label);
    if ((item.mode & ~umask) !== item.mode) await chmod(path, item.mode);
  });
}

/**
 * Inflates and writes the files one after another, each in a few synchronous calls: a file
 * written through the thread pool costs three hand-offs between threads (open, write, close),
 * several times the write itself for the small files a function's code is made of. The writes
 * yield to the event loop every {@link SLICE_MS}.
 */
async function writeFilesHere(target: Target, files: readonly FileItem[]): Promise<void> {
  const umask = process.umask();
  let sliceStartedAt = Date.now();
  for (const item of files) {
    const path = filePath(target, item);
    if (streamed(item)) {
      await writeStreamed(target, item, path, umask);
    } else {
      await entryArrived(target.zip, item.entry, target.arrival);
      try {
        steps.write(target.zip, archiveFile(target.zip, item.entry, path, item.mode), target.fresh, umask);
      } catch (error) {
        throw fileFailure(target.label, item.entry, error as Error);
      }
    }
    if (Date.now() - sliceStartedAt > SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStartedAt = Date.now();
    }
  }
}

/**
 * Hands the files to writer threads, which share the archive's memory and take the next file as
 * they finish one, once its bytes have arrived; meanwhile this thread streams the entries too
 * large to inflate in memory. Every folder is entered and checked here first, so the threads only
 * create files in them.
 */
async function writeFilesInThreads(
  target: Target,
  files: readonly FileItem[],
  writers: WriterThreads,
): Promise<void> {
  const umask = process.umask();
  const large: { item: FileItem; path: string }[] = [];
  const small: { item: FileItem; path: string }[] = [];
  for (const item of files) (streamed(item) ? large : small).push({ item, path: filePath(target, item) });
  // In the order their bytes arrive.
  small.sort((a, b) => a.item.entry.localHeaderOffset - b.item.entry.localHeaderOffset);
  const writing = writers.write(
    target.zip,
    small.map(({ item, path }) => threadFile(item.entry, path, item.mode)),
    startsOf(target, small),
    {
      fresh: target.fresh,
      umask,
      failure: (failed) =>
        fileFailure(target.label, (small[failed.index] as { item: FileItem }).item.entry, failed),
    },
  );
  try {
    for (const { item, path } of large) await writeStreamed(target, item, path, umask);
  } catch (error) {
    writers.stop();
    await writing.catch(() => undefined);
    throw error;
  }
  await writing;
}

/** Where each file's compressed bytes start, in order, each once they have arrived. */
async function* startsOf(target: Target, files: readonly { item: FileItem }[]): AsyncGenerator<number> {
  for (const { item } of files) {
    await entryArrived(target.zip, item.entry, target.arrival);
    yield dataStart(target.zip, item.entry);
  }
}

/**
 * Creates the links last, so that no write of this archive goes through one of its own links;
 * then checks where each resolves: the links were checked before extraction, and the file system
 * has the last word.
 */
async function writeLinks(target: Target, planned: readonly Planned[], result: ExtractResult): Promise<void> {
  const { realRoot, label } = target;
  const created: string[] = [];
  for (const item of planned) {
    if (item.kind !== 'link') continue;
    const name = item.entry.name;
    await guarded(label, name, async () => {
      const folder = enterFolder(realRoot, item.parts.slice(0, -1), name, label);
      const path = join(folder, item.parts.at(-1) as string);
      await clear(path);
      await symlink(item.target, path);
      created.push(path);
    });
    result.links += 1;
  }
  for (const path of created) {
    const real = await realpath(path).catch(() => undefined);
    if (real !== undefined && !inside(realRoot, real)) {
      await unlink(path);
      throw new UnsafeArchiveError(
        `${label}: the link ${path} resolves to ${real}, outside ${realRoot}; removed it`,
      );
    }
  }
}
