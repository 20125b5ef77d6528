import * as zlib from 'node:zlib';

let table: Int32Array | undefined;

function jsCrc32(data: Uint8Array, value = 0): number {
  if (table === undefined) {
    table = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c;
    }
  }
  let crc = ~value;
  for (let i = 0; i < data.length; i++)
    crc = (table[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return ~crc >>> 0;
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 as zip uses it; zlib's native one where Node has it (20.15+), else a table-driven one. */
export const crc32: (data: Uint8Array, value?: number) => number = native ?? jsCrc32;
