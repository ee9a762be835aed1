// CRC-32C (Castagnoli), the checksum of magic-v2 record batches (over bytes 21..end of a batch):
// reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF, result unsigned.
// Passing a previous result as `initial` continues that checksum. Uses the native SIMD
// implementation from @node-rs/crc32 when it loads; a table-driven pure fallback otherwise, so
// the protocol package has no mandatory native dependency.

import { createRequire } from "node:module";

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32cPure(data: Uint8Array, initial = 0): number {
  let crc = ~initial >>> 0;
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

type NativeCrc = (input: Uint8Array, initial?: number | null) => number;

function loadNative(): NativeCrc | null {
  try {
    const mod = createRequire(import.meta.url)("@node-rs/crc32") as { crc32c: NativeCrc };
    return mod.crc32c;
  } catch {
    return null;
  }
}

const native = loadNative();
export const crc32cIsNative = native !== null;

export function crc32c(data: Uint8Array, initial = 0): number {
  if (native !== null) return native(data, initial) >>> 0;
  return crc32cPure(data, initial);
}
