// xxHash32, needed for the LZ4 frame header checksum (the second byte of xxh32 of the descriptor).

const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 374761393;

const rotl = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0;
const mul = (a: number, b: number): number => Math.imul(a, b) >>> 0;
const u32 = (b: Uint8Array, i: number): number =>
  (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;

export function xxh32(data: Uint8Array, seed: number): number {
  const len = data.length;
  let i = 0;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) >>> 0;
    let v2 = (seed + P2) >>> 0;
    let v3 = seed >>> 0;
    let v4 = (seed - P1) >>> 0;
    while (i <= len - 16) {
      v1 = mul(rotl((v1 + mul(u32(data, i), P2)) >>> 0, 13), P1);
      v2 = mul(rotl((v2 + mul(u32(data, i + 4), P2)) >>> 0, 13), P1);
      v3 = mul(rotl((v3 + mul(u32(data, i + 8), P2)) >>> 0, 13), P1);
      v4 = mul(rotl((v4 + mul(u32(data, i + 12), P2)) >>> 0, 13), P1);
      i += 16;
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) >>> 0;
  } else {
    h = (seed + P5) >>> 0;
  }
  h = (h + len) >>> 0;
  while (i <= len - 4) {
    h = mul(rotl((h + mul(u32(data, i), P3)) >>> 0, 17), P4);
    i += 4;
  }
  while (i < len) {
    h = mul(rotl((h + mul(data[i]!, P5)) >>> 0, 11), P1);
    i++;
  }
  h ^= h >>> 15;
  h = mul(h, P2);
  h ^= h >>> 13;
  h = mul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}
