// Snappy: xerial framing (what Java writes) and raw blocks (what some clients write), the native
// and pure decoders, and per-block budgets.
import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import snappy from "snappy";
import { RecordsError } from "../../src/records/errors.ts";
import { rawSnappyDecompressPure, snappyCompress, snappyDecompress } from "../../src/records/snappy.ts";

const MiB = 1024 * 1024;

function isCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof RecordsError && e.code === code;
}

const data = Buffer.from("hello hello hello snappy ".repeat(5000)); // 125000 bytes: four xerial blocks

describe("snappy", () => {
  test("we write xerial framing: magic, version 1, compatible version 1, 32 KiB blocks", () => {
    const framed = Buffer.from(snappyCompress(data));
    assert.equal(framed.subarray(0, 8).toString("latin1"), "\x82SNAPPY\x00");
    assert.equal(framed.readInt32BE(8), 1);
    assert.equal(framed.readInt32BE(12), 1);
    const firstBlock = framed.subarray(20, 20 + framed.readInt32BE(16));
    assert.equal(Buffer.from(snappy.uncompressSync(firstBlock, { asBuffer: true }) as Buffer).length, 32 * 1024);
  });

  test("xerial framing decodes", () => {
    assert.deepEqual(Buffer.from(snappyDecompress(snappyCompress(data), MiB)), data);
  });

  test("raw snappy (as librdkafka may write) decodes", () => {
    assert.deepEqual(Buffer.from(snappyDecompress(snappy.compressSync(data), MiB)), data);
  });

  test("the pure decoder agrees with native snappy", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.constant(Buffer.from("repeat repeat repeat "))), {
          maxLength: 200,
        }),
        (parts) => {
          const input = Buffer.concat(parts);
          const raw = snappy.compressSync(input);
          assert.deepEqual(Buffer.from(rawSnappyDecompressPure(raw, MiB)), input);
        },
      ),
      { numRuns: 100 },
    );
    assert.deepEqual(Buffer.from(rawSnappyDecompressPure(snappy.compressSync(data), MiB)), data);
  });

  test("the pure decoder refuses a literal length that overflows 32 bits", async () => {
    // Declared length 10, then a literal tag with a 4-byte length of 0xfffffffa: read as a signed
    // int32 it would send the decoder back to the tag forever. A worker, so a hang fails the test.
    const hostile = [0x0a, 0xfc, 0xfa, 0xff, 0xff, 0xff, 0x41, 0x41];
    const moduleUrl = new URL("../../src/records/snappy.ts", import.meta.url).href;
    const worker = new Worker(
      `import(${JSON.stringify(moduleUrl)}).then((m) => {
        try { m.rawSnappyDecompressPure(Buffer.from(${JSON.stringify(hostile)}), 1 << 20); postMessage("no error"); }
        catch (e) { postMessage(e.code ?? String(e)); }
      });
      const { parentPort } = require("node:worker_threads"); function postMessage(m) { parentPort.postMessage(m); }`,
      { eval: true },
    );
    try {
      const result = await Promise.race([
        once(worker, "message").then(([m]) => m as string),
        new Promise<string>((resolve) => setTimeout(resolve, 5000, "timed out").unref()),
      ]);
      assert.equal(result, "DECOMPRESSION_FAILED");
    } finally {
      await worker.terminate();
    }
  });

  test("the pure decoder refuses copies from before the start", () => {
    const hostile = Buffer.from([0x08, 0x00, 0x41, 0x0d, 0x05]); // 1 literal, then a copy at offset 5
    assert.throws(() => rawSnappyDecompressPure(hostile, MiB), isCode("DECOMPRESSION_FAILED"));
  });

  test("the xerial budget spans blocks: the total, not each block, is bounded", () => {
    const framed = snappyCompress(data);
    assert.throws(() => snappyDecompress(framed, 100_000), isCode("DECOMPRESSION_LIMIT"));
    assert.equal(snappyDecompress(framed, data.length).length, data.length);
  });

  test("a xerial block length past the end is DECOMPRESSION_FAILED", () => {
    const framed = Buffer.from(snappyCompress(data));
    framed.writeInt32BE(framed.length, 16);
    assert.throws(() => snappyDecompress(framed, MiB), isCode("DECOMPRESSION_FAILED"));
    assert.throws(() => snappyDecompress(framed.subarray(0, 18), MiB), isCode("DECOMPRESSION_FAILED"));
  });

  test("a raw block whose declared length differs from its content is DECOMPRESSION_FAILED", () => {
    const raw = Buffer.from(snappy.compressSync(Buffer.from("abcdefgh")));
    raw[0] = 9;
    assert.throws(() => snappyDecompress(raw, MiB), isCode("DECOMPRESSION_FAILED"));
    assert.throws(() => rawSnappyDecompressPure(raw, MiB), isCode("DECOMPRESSION_FAILED"));
  });
});
