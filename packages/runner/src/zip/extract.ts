import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createInflateRaw, inflateRaw } from 'node:zlib';
import { UnsafeArchiveError } from '../errors.js';
import { entryData, readCentralDirectory, type ZipEntry } from './central-directory.js';
import { crc32 } from './crc32.js';

const inflate = promisify(inflateRaw) as (
  data: Buffer,
  options: { maxOutputLength: number },
) => Promise<Buffer>;

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
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
  /** Entries inflated at once (default 8). */
  concurrency?: number;
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

type Planned =
  | { kind: 'directory'; entry: ZipEntry; path: string }
  | { kind: 'file'; entry: ZipEntry; path: string; mode: number }
  | { kind: 'link'; entry: ZipEntry; path: string; target: string };

const inside = (root: string, path: string) => path === root || path.startsWith(root + sep);

async function inflateEntry(zip: Buffer, entry: ZipEntry, label: string): Promise<Buffer> {
  const data = entryData(zip, entry);
  let out: Buffer;
  if (entry.method === 0) {
    out = data;
  } else {
    try {
      out = await inflate(data, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
    } catch (error) {
      throw new UnsafeArchiveError(
        `${label}: "${entry.name}" does not inflate to its declared ${entry.uncompressedSize} bytes (${(error as Error).message})`,
        { cause: error },
      );
    }
  }
  if (out.length !== entry.uncompressedSize || crc32(out) !== entry.crc32) {
    throw new UnsafeArchiveError(
      `${label}: "${entry.name}" fails its size or CRC-32 check; the archive is corrupt`,
    );
  }
  return out;
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
  const sink = createWriteStream(path, { mode });
  if (entry.method === 0) await pipeline(source, guard, sink);
  else await pipeline(source, createInflateRaw(), guard, sink);
  if (written !== entry.uncompressedSize || crc !== entry.crc32) {
    throw new UnsafeArchiveError(
      `${label}: "${entry.name}" fails its size or CRC-32 check; the archive is corrupt`,
    );
  }
}

/** Checks every entry before anything is written; returns what to create. */
async function plan(zip: Buffer, entries: ZipEntry[], options: ExtractOptions): Promise<Planned[]> {
  const root = resolve(options.root);
  const planned: Planned[] = [];
  let total = 0;
  for (const entry of entries) {
    const name = entry.name.replaceAll('\\', '/');
    if (name.includes('\0')) throw new UnsafeArchiveError(`${options.label}: entry name contains a NUL byte`);
    if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) {
      throw new UnsafeArchiveError(
        `${options.label}: entry "${entry.name}" is an absolute path; refusing to extract it`,
      );
    }
    if (name.split('/').includes('..')) {
      throw new UnsafeArchiveError(
        `${options.label}: entry "${entry.name}" climbs out with ".."; refusing to extract it`,
      );
    }
    const path = resolve(root, name);
    if (!inside(root, path)) {
      throw new UnsafeArchiveError(
        `${options.label}: entry "${entry.name}" would land outside ${root}; refusing to extract it`,
      );
    }
    if (entry.flags & 0x1)
      throw new UnsafeArchiveError(`${options.label}: entry "${entry.name}" is encrypted`);
    if (entry.method !== 0 && entry.method !== 8) {
      throw new UnsafeArchiveError(
        `${options.label}: entry "${entry.name}" uses compression method ${entry.method}; only stored and deflate are supported`,
      );
    }
    total += entry.uncompressedSize;
    if (total > options.maxBytes) {
      throw new UnsafeArchiveError(
        `${options.label} unpacks to more than ${options.maxBytes} bytes (Lambda's unzipped limit for code and layers together); refusing to extract it`,
      );
    }
    const type = (entry.mode ?? 0) & S_IFMT;
    if (name.endsWith('/') || type === S_IFDIR) {
      planned.push({ kind: 'directory', entry, path });
    } else if (type === S_IFLNK) {
      const target = (await inflateEntry(zip, entry, options.label)).toString('utf8');
      const resolved = isAbsolute(target) ? resolve(target) : resolve(dirname(path), target);
      if (!inside(root, resolved)) {
        throw new UnsafeArchiveError(
          `${options.label}: entry "${entry.name}" is a link to "${target}", outside ${root}; refusing to extract it`,
        );
      }
      planned.push({ kind: 'link', entry, path, target });
    } else {
      const mode = entry.mode !== undefined ? entry.mode & 0o777 : 0o644;
      planned.push({ kind: 'file', entry, path, mode: mode === 0 ? 0o644 : mode });
    }
  }
  return planned;
}

/**
 * Extracts a zip held in memory into `options.root`, refusing absolute paths, `..`,
 * sibling-prefix escapes and links that lead out of the root, verifying each entry's size and
 * CRC-32, keeping Unix modes (executable bits), and stopping before anything is written when
 * the declared sizes exceed `maxBytes`. Entries are inflated in parallel.
 *
 * @example
 * ```ts
 * import { extractZip } from '@immortal-lambda/runner';
 * const { files } = await extractZip(zip, { root: '/var/task', maxBytes: 262_144_000, label: 'the code' });
 * ```
 */
export async function extractZip(zip: Buffer, options: ExtractOptions): Promise<ExtractResult> {
  const root = resolve(options.root);
  const entries = readCentralDirectory(zip);
  const planned = await plan(zip, entries, options);
  await mkdir(root, { recursive: true });
  const realRoot = await realpath(root);
  // Into an empty root nothing can be in the way; into a used one (layers over layers) a file
  // may replace a link or a folder of an earlier archive.
  const fresh = (await readdir(root)).length === 0;
  const umask = process.umask();
  const checkedDirectories = new Map<string, Promise<void>>();
  const ensureDirectory = (directory: string): Promise<void> => {
    let pending = checkedDirectories.get(directory);
    if (pending === undefined) {
      pending = (async () => {
        await mkdir(directory, { recursive: true, mode: 0o755 });
        // A link left by an earlier layer must not carry writes out of the root.
        const real = await realpath(directory);
        if (!inside(realRoot, real)) {
          throw new UnsafeArchiveError(
            `${options.label}: ${directory} leads outside ${root}; refusing to write into it`,
          );
        }
      })();
      checkedDirectories.set(directory, pending);
    }
    return pending;
  };

  const result: ExtractResult = { files: 0, directories: 0, links: 0, bytes: 0 };
  for (const item of planned) {
    if (item.kind === 'directory') {
      await ensureDirectory(item.path);
      result.directories += 1;
    }
  }
  const files = planned.filter((item): item is Extract<Planned, { kind: 'file' }> => item.kind === 'file');
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const item = files[next++] as Extract<Planned, { kind: 'file' }>;
      await ensureDirectory(dirname(item.path));
      if (!fresh) {
        const existing = await lstat(item.path).catch(() => undefined);
        if (existing?.isSymbolicLink() || existing?.isDirectory())
          await rm(item.path, { recursive: true, force: true });
      }
      if (item.entry.uncompressedSize > STREAM_ABOVE) {
        await streamEntry(zip, item.entry, item.path, item.mode, options.label);
      } else {
        await writeFile(item.path, await inflateEntry(zip, item.entry, options.label), { mode: item.mode });
      }
      // The process umask may have cleared bits the archive sets.
      if ((item.mode & ~umask) !== item.mode) await chmod(item.path, item.mode);
      result.files += 1;
      result.bytes += item.entry.uncompressedSize;
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(options.concurrency ?? 8, Math.max(1, files.length)) }, worker),
  );
  for (const item of planned) {
    if (item.kind !== 'link') continue;
    await ensureDirectory(dirname(item.path));
    await rm(item.path, { recursive: true, force: true });
    await symlink(item.target, item.path);
    result.links += 1;
  }
  return result;
}
