import { UnsafeArchiveError } from '../errors.js';

/** One entry of a zip archive, as its central directory describes it. */
export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  /** Unix mode bits when the archive was made on Unix, else undefined. */
  mode: number | undefined;
}

const EOCD = 0x06054b50;
const ZIP64_EOCD_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL_HEADER = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;

const corrupt = (what: string) =>
  new UnsafeArchiveError(`the archive is corrupt or truncated: ${what}; the download may be incomplete`);

function findEndOfCentralDirectory(zip: Buffer): number {
  // The record is 22 bytes plus a comment of up to 65535 bytes, at the very end.
  const stop = Math.max(0, zip.length - 22 - 0xffff);
  for (let i = zip.length - 22; i >= stop; i--) {
    if (zip.readUInt32LE(i) === EOCD) return i;
  }
  throw corrupt('no end-of-central-directory record');
}

/** Reads the central directory of a zip held in memory. Supports zip64. */
export function readCentralDirectory(zip: Buffer): ZipEntry[] {
  if (zip.length < 22) throw corrupt(`${zip.length} bytes is too short for a zip`);
  const eocd = findEndOfCentralDirectory(zip);
  let count = zip.readUInt16LE(eocd + 10);
  let size = zip.readUInt32LE(eocd + 12);
  let offset = zip.readUInt32LE(eocd + 16);
  if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    const locator = eocd - 20;
    if (locator < 0 || zip.readUInt32LE(locator) !== ZIP64_EOCD_LOCATOR)
      throw corrupt('zip64 locator missing');
    const zip64 = Number(zip.readBigUInt64LE(locator + 8));
    if (!Number.isSafeInteger(zip64) || zip64 + 56 > zip.length || zip.readUInt32LE(zip64) !== ZIP64_EOCD)
      throw corrupt('zip64 record missing');
    count = Number(zip.readBigUInt64LE(zip64 + 32));
    size = Number(zip.readBigUInt64LE(zip64 + 40));
    offset = Number(zip.readBigUInt64LE(zip64 + 48));
  }
  if (!Number.isSafeInteger(count) || !Number.isSafeInteger(offset + size) || offset + size > zip.length)
    throw corrupt('the central directory lies past the end of the file');
  const entries: ZipEntry[] = [];
  let p = offset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > zip.length || zip.readUInt32LE(p) !== CENTRAL_HEADER)
      throw corrupt(`central header ${i} is missing`);
    const madeBy = zip.readUInt16LE(p + 4);
    const flags = zip.readUInt16LE(p + 8);
    const method = zip.readUInt16LE(p + 10);
    const crc = zip.readUInt32LE(p + 16);
    let compressedSize = zip.readUInt32LE(p + 20);
    let uncompressedSize = zip.readUInt32LE(p + 24);
    const nameLength = zip.readUInt16LE(p + 28);
    const extraLength = zip.readUInt16LE(p + 30);
    const commentLength = zip.readUInt16LE(p + 32);
    const external = zip.readUInt32LE(p + 38);
    let localHeaderOffset = zip.readUInt32LE(p + 42);
    if (p + 46 + nameLength + extraLength + commentLength > zip.length)
      throw corrupt(`central header ${i} runs past the end of the file`);
    const name = zip.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLength);
    // zip64 extended information: the fields that overflowed, in this order, each inside the
    // extra field that declares them.
    let extra = p + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = zip.readUInt16LE(extra);
      const length = zip.readUInt16LE(extra + 2);
      const fieldEnd = extra + 4 + length;
      if (fieldEnd > extraEnd) throw corrupt(`an extra field of "${name}" runs past its header`);
      if (id === 0x0001) {
        let q = extra + 4;
        const next = (what: string) => {
          if (q + 8 > fieldEnd)
            throw corrupt(`the zip64 ${what} of "${name}" lies past the end of its field`);
          const value = Number(zip.readBigUInt64LE(q));
          q += 8;
          return value;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = next('size');
        if (compressedSize === 0xffffffff) compressedSize = next('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next('offset');
      }
      extra = fieldEnd;
    }
    if (uncompressedSize === 0xffffffff || compressedSize === 0xffffffff || localHeaderOffset === 0xffffffff)
      throw corrupt(`"${name}" declares zip64 sizes but has no zip64 field`);
    const unixMode = madeBy >> 8 === 3 ? external >>> 16 : 0;
    entries.push({
      name,
      method,
      flags,
      crc32: crc,
      compressedSize,
      uncompressedSize,
      localHeaderOffset,
      mode: unixMode !== 0 ? unixMode : undefined,
    });
    p = extraEnd + commentLength;
  }
  return entries;
}

/** The compressed bytes of an entry, found through its local header. */
export function entryData(zip: Buffer, entry: ZipEntry): Buffer {
  const p = entry.localHeaderOffset;
  if (p + 30 > zip.length || zip.readUInt32LE(p) !== LOCAL_HEADER)
    throw corrupt(`local header of "${entry.name}"`);
  const start = p + 30 + zip.readUInt16LE(p + 26) + zip.readUInt16LE(p + 28);
  const end = start + entry.compressedSize;
  if (end > zip.length) throw corrupt(`"${entry.name}" runs past the end of the file`);
  return zip.subarray(start, end);
}
