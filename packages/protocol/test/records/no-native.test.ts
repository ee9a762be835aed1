// The protocol package works without its optional native modules (@node-rs/crc32, snappy,
// lz4-napi): a child process where requiring them fails builds and parses record batches with
// every codec and checks CRC-32C on the pure fallbacks — what a user gets where npm could not
// install a native build.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

const SRC = resolve(import.meta.dirname, "../../src/records");

test("record batches round-trip with every codec when no native module loads", () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-no-native-"));
  try {
    const block = join(dir, "block.cjs");
    writeFileSync(
      block,
      `const M = require("node:module");
const resolve = M._resolveFilename;
const blocked = new Set(["@node-rs/crc32", "snappy", "lz4-napi"]);
M._resolveFilename = function (request, ...rest) {
  if (blocked.has(request)) throw Object.assign(new Error("blocked " + request), { code: "MODULE_NOT_FOUND" });
  return resolve.call(this, request, ...rest);
};`,
    );
    const script = join(dir, "check.mts");
    writeFileSync(
      script,
      `import { crc32c, crc32cIsNative } from ${JSON.stringify(join(SRC, "crc32c.ts"))};
import { buildRecordBatch, decodeRecords } from ${JSON.stringify(join(SRC, "record-batch.ts"))};
if (crc32cIsNative) throw new Error("the native CRC loaded although it was blocked");
if (crc32c(Buffer.from("123456789")) !== 0xe3069283) throw new Error("pure CRC-32C is wrong");
const records = Array.from({ length: 200 }, (_, i) => ({ key: null, value: Buffer.from("v" + i + "x".repeat(i)) }));
for (const compression of [0, 1, 2, 3, 4]) {
  const batch = buildRecordBatch({ records, compression });
  const back = decodeRecords(batch).flatMap((b) => b.records.map((r) => Buffer.from(r.value).toString()));
  if (back.length !== 200 || back[199] !== "v199" + "x".repeat(199)) throw new Error("codec " + compression + " did not round-trip");
}
console.log("ok");`,
    );
    const r = spawnSync(process.execPath, ["--require", block, script], { encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "ok");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
