import { lstatSync, readlinkSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { UnsafeArchiveError } from '../errors.js';
import type { ZipEntry } from './central-directory.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
/** Linux's NAME_MAX: the longest name of one path component, in bytes. */
const NAME_MAX = 255;
/** Linux's PATH_MAX less the terminating NUL: the longest path or link target, in bytes. */
const PATH_MAX = 4095;
/** How many links one resolution may pass through before Linux answers ELOOP. */
const MAX_LINK_HOPS = 40;

/** One archive entry, checked, with what to create for it. */
export type Planned =
  | { kind: 'directory'; entry: ZipEntry; parts: readonly string[] }
  | { kind: 'file'; entry: ZipEntry; parts: readonly string[]; mode: number }
  | { kind: 'link'; entry: ZipEntry; parts: readonly string[]; target: string };

/**
 * The entry's name as path parts under the root. Refuses NUL bytes, absolute names, `..`, and
 * parts longer than the file system allows, naming the entry.
 */
function nameParts(entry: ZipEntry, label: string): string[] {
  const refuse = (why: string) =>
    new UnsafeArchiveError(`${label}: entry "${entry.name}" ${why}; refusing to extract the archive`);
  const name = entry.name.replaceAll('\\', '/');
  if (name.includes('\0')) throw refuse('has a NUL byte in its name');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw refuse('is an absolute path');
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw refuse('climbs out with ".."');
  if (parts.length === 0) throw refuse('names no file (an empty name)');
  if (Buffer.byteLength(name) > PATH_MAX) throw refuse(`has a name longer than ${PATH_MAX} bytes`);
  const long = parts.find((part) => Buffer.byteLength(part) > NAME_MAX);
  if (long !== undefined)
    throw refuse(`has a name part of ${Buffer.byteLength(long)} bytes; file names hold at most ${NAME_MAX}`);
  return parts;
}

function linkTarget(entry: ZipEntry, raw: Buffer, label: string): string {
  const refuse = (why: string) =>
    new UnsafeArchiveError(`${label}: link "${entry.name}" ${why}; refusing to extract the archive`);
  const target = raw.toString('utf8');
  if (target.length === 0) throw refuse('has an empty target');
  if (target.includes('\0')) throw refuse('has a NUL byte in its target');
  if (raw.length > PATH_MAX) throw refuse(`has a target longer than ${PATH_MAX} bytes`);
  return target;
}

/**
 * Checks every entry of an archive before anything is written, and returns what to create.
 *
 * Refused, each naming the entry: unsafe names (absolute, `..`, NUL, too long), encryption and
 * unknown compression, a total size over the budget, two entries of the same name, a name that
 * is a file or a link in one entry and a folder of another, and any link that resolves outside
 * the root, however reached: its target is followed part by part through the links this archive
 * creates and those already in the root, as the kernel would, and the resolution may not leave
 * the root at any step.
 */
export async function planArchive(
  entries: readonly ZipEntry[],
  options: {
    root: string;
    /** The root's real path: absolute link targets may name either. */
    realRoot: string;
    maxBytes: number;
    label: string;
    readLink: (entry: ZipEntry) => Promise<Buffer>;
  },
): Promise<Planned[]> {
  const { label } = options;
  const planned: Planned[] = [];
  const byPath = new Map<string, Planned>();
  let total = 0;
  for (const entry of entries) {
    const parts = nameParts(entry, label);
    if (entry.flags & 0x1) throw new UnsafeArchiveError(`${label}: entry "${entry.name}" is encrypted`);
    if (entry.method !== 0 && entry.method !== 8) {
      throw new UnsafeArchiveError(
        `${label}: entry "${entry.name}" uses compression method ${entry.method}; only stored and deflate are supported`,
      );
    }
    total += entry.uncompressedSize;
    if (total > options.maxBytes) {
      throw new UnsafeArchiveError(
        `${label} unpacks to more than ${options.maxBytes} bytes (Lambda's unzipped limit for code and layers together); refusing to extract it`,
      );
    }
    const type = (entry.mode ?? 0) & S_IFMT;
    let item: Planned;
    if (entry.name.endsWith('/') || type === S_IFDIR) {
      item = { kind: 'directory', entry, parts };
    } else if (type === S_IFLNK) {
      item = { kind: 'link', entry, parts, target: linkTarget(entry, await options.readLink(entry), label) };
    } else {
      const mode = entry.mode !== undefined ? entry.mode & 0o777 : 0o644;
      item = { kind: 'file', entry, parts, mode: mode === 0 ? 0o644 : mode };
    }
    const key = parts.join('/');
    const earlier = byPath.get(key);
    if (earlier !== undefined) {
      // Zip tools write a folder once; any other repeat is ambiguous: refuse it.
      if (earlier.kind === 'directory' && item.kind === 'directory') continue;
      throw new UnsafeArchiveError(
        `${label}: the archive holds "${key}" twice ("${earlier.entry.name}" and "${entry.name}"); refusing to guess which one counts`,
      );
    }
    byPath.set(key, item);
    planned.push(item);
  }
  // A name is a folder of every longer name below it: that folder must not be a file or a link.
  for (const item of planned) {
    for (let depth = 1; depth < item.parts.length; depth++) {
      const ancestor = byPath.get(item.parts.slice(0, depth).join('/'));
      if (ancestor !== undefined && ancestor.kind !== 'directory') {
        throw new UnsafeArchiveError(
          `${label}: "${ancestor.entry.name}" is a ${ancestor.kind} in the archive, and "${item.entry.name}" needs it to be a folder; refusing to extract the archive`,
        );
      }
    }
  }
  const links = new Map<string, string>();
  for (const item of planned) if (item.kind === 'link') links.set(item.parts.join('/'), item.target);
  const resolver = new LinkResolver(options.root, options.realRoot, links);
  for (const item of planned) {
    if (item.kind !== 'link') continue;
    const leaves = resolver.escapes(item.parts.slice(0, -1), item.target);
    if (leaves !== undefined) {
      throw new UnsafeArchiveError(
        `${label}: link "${item.entry.name}" -> "${item.target}" ${leaves}; refusing to extract the archive`,
      );
    }
  }
  return planned;
}

/**
 * Follows a link target part by part through the tree as it will be once the archive is
 * extracted: this archive's links, and the links already on disk under the root (an earlier
 * layer). Says how it leaves the root, or undefined when it stays inside at every step.
 */
class LinkResolver {
  readonly #root: string;
  readonly #bases: readonly string[];
  readonly #planned: ReadonlyMap<string, string>;

  constructor(root: string, realRoot: string, planned: ReadonlyMap<string, string>) {
    this.#root = resolve(root);
    this.#bases = [this.#root, realRoot];
    this.#planned = planned;
  }

  escapes(directory: readonly string[], target: string): string | undefined {
    let at = [...directory];
    let pending = target.split('/');
    if (isAbsolute(target)) {
      const under = this.#under(target);
      if (under === undefined) return `points outside ${this.#root}`;
      at = [];
      pending = under;
    }
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift() as string;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (at.length === 0) return `resolves outside ${this.#root}`;
        at.pop();
        continue;
      }
      const next = [...at, part];
      const link = this.#linkAt(next);
      if (link === undefined) {
        at = next;
        continue;
      }
      hops += 1;
      if (hops > MAX_LINK_HOPS) return `passes through more than ${MAX_LINK_HOPS} links (a loop)`;
      if (isAbsolute(link)) {
        const under = this.#under(link);
        if (under === undefined) return `resolves outside ${this.#root} through "${next.join('/')}"`;
        at = [];
        pending = [...under, ...pending];
      } else {
        pending = [...link.split('/'), ...pending];
      }
    }
    return undefined;
  }

  /** The target of the link at `parts` once extracted: this archive's, else one on disk. */
  #linkAt(parts: readonly string[]): string | undefined {
    const key = parts.join('/');
    const planned = this.#planned.get(key);
    if (planned !== undefined) return planned;
    try {
      const path = resolve(this.#root, ...parts);
      return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The parts of an absolute path below the root (its given or its real path), left
   * unresolved so that `..` after a link is followed as the kernel does; undefined when the
   * path does not start with the root.
   */
  #under(path: string): string[] | undefined {
    for (const base of this.#bases) {
      if (path === base) return [];
      if (path.startsWith(`${base}/`)) return path.slice(base.length + 1).split('/');
    }
    return undefined;
  }
}
