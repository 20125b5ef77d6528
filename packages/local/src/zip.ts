import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';

/**
 * One entry to write. Names are written as given, so tests can also make hostile archives.
 *
 * @example
 * ```ts
 * import type { ZipSource } from '@immortal-lambda/local';
 * const tool: ZipSource = { name: 'bin/tool', data: '#!/bin/sh\n', mode: 0o755 };
 * ```
 */
export interface ZipSource {
  name: string;
  data?: Buffer | string;
  /** Permission bits; default 0o644 for files, 0o755 for directories. */
  mode?: number;
  /** Makes the entry a symbolic link to this target. */
  symlink?: string;
  directory?: boolean;
  /** Store instead of deflate. */
  store?: boolean;
  /** Declare this uncompressed size instead of the real one (for zip-bomb tests). */
  declaredSize?: number;
}

/**
 * Writes a zip archive with Unix modes, as `zip` on Linux does.
 *
 * @example
 * ```ts
 * import { buildZip } from '@immortal-lambda/local';
 * const zip = buildZip([{ name: 'index.js', data: 'exports.handler = async () => 1;' }]);
 * ```
 */
export function buildZip(sources: readonly ZipSource[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const source of sources) {
    const name = Buffer.from(source.name, 'utf8');
    const raw = Buffer.from(source.symlink ?? source.data ?? '');
    const type = source.symlink !== undefined ? 0o120000 : source.directory ? 0o040000 : 0o100000;
    const mode = type | (source.mode ?? (source.directory ? 0o755 : source.symlink ? 0o777 : 0o644));
    const store = source.store || source.directory || raw.length === 0;
    const body = store ? raw : deflateRawSync(raw);
    const crc = crc32(raw);
    const size = source.declaredSize ?? raw.length;
    // The fields from "version needed" to the name length are the same in both headers.
    const shared = Buffer.alloc(26);
    shared.writeUInt16LE(20, 0);
    shared.writeUInt16LE(0x800, 2);
    shared.writeUInt16LE(store ? 0 : 8, 4);
    shared.writeUInt32LE(crc, 10);
    shared.writeUInt32LE(body.length, 14);
    shared.writeUInt32LE(size, 18);
    shared.writeUInt16LE(name.length, 22);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    shared.copy(local, 4);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4);
    shared.copy(central, 6);
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(sources.length, 8);
  end.writeUInt16LE(sources.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/**
 * Zips a folder, keeping modes and links, with entry names relative to it.
 *
 * @example
 * ```ts
 * import { zipFolder } from '@immortal-lambda/local';
 * const zip = zipFolder('dist/report');
 * ```
 */
export function zipFolder(folder: string, prefix = ''): Buffer {
  const sources: ZipSource[] = [];
  const walk = (directory: string) => {
    for (const name of readdirSync(directory).sort()) {
      const path = join(directory, name);
      const entryName = prefix + relative(folder, path);
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) sources.push({ name: entryName, symlink: readlinkSync(path) });
      else if (stat.isDirectory()) {
        sources.push({ name: `${entryName}/`, directory: true });
        walk(path);
      } else sources.push({ name: entryName, data: readFileSync(path), mode: stat.mode & 0o777 });
    }
  };
  walk(folder);
  return buildZip(sources);
}

/**
 * Lambda's CodeSha256: the base64 SHA-256 of the zip.
 *
 * @example
 * ```ts
 * import { codeSha256, zipFolder } from '@immortal-lambda/local';
 * const sha = codeSha256(zipFolder('dist/report'));
 * ```
 */
export const codeSha256 = (zip: Buffer) => createHash('sha256').update(zip).digest('base64');
