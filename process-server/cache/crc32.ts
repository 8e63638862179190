import zlib from "node:zlib";

let table: Uint32Array | undefined;

// Node < 20.15 lacks zlib.crc32; same polynomial (IEEE), so files stay readable either way.
function crc32Table(data: Uint8Array, value: number): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[i] = c >>> 0;
    }
  }
  let crc = (value ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** CRC-32 (IEEE); pass the previous result as value to continue over more data. */
export const crc32: (data: Uint8Array, value?: number) => number =
  typeof zlib.crc32 === "function" ? (d, v = 0) => zlib.crc32(d, v) : (d, v = 0) => crc32Table(d, v);
