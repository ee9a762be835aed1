// The examples in docs/testing.md run as written: the node:test example passes under `node --test`,
// and the fault-injection example runs to its end (every call it shows exists and behaves, and it
// does not hang). The code blocks are taken from the document itself, so an edit that breaks an
// example fails here. The vitest and jest snippets need those frameworks (not dependencies of this
// repository) and are not run.

import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { run } from "./helpers/broker-process.ts";

const ROOT = resolve(import.meta.dirname, "..");
const DOC = readFileSync(join(ROOT, "docs/testing.md"), "utf8");
// Inside the repository, so that `@sluice/broker` and `@sluice/client` resolve to the workspace
// (and not under node_modules, where `node --test` does not look). Gitignored.
const DIR = join(ROOT, "tests/.docs-examples");
// A child `node --test` that inherits the runner's context reports to it instead of printing.
const { NODE_TEST_CONTEXT: _, ...ENV } = process.env;

/** The first ```ts block after the heading `## <section>`. */
function block(section: string): string {
  const at = DOC.indexOf(`\n## ${section}\n`);
  assert.ok(at >= 0, `docs/testing.md has no section ${section}`);
  const m = /```ts\n([\s\S]*?)```/.exec(DOC.slice(at));
  assert.ok(m, `no ts block in section ${section}`);
  return m[1]!;
}

test("docs/testing.md: the node:test example passes", { timeout: 120_000 }, async () => {
  mkdirSync(DIR, { recursive: true });
  const file = join(DIR, `node-test-${process.pid}.test.ts`);
  writeFileSync(file, block("node:test"));
  try {
    const r = await run(process.execPath, ["--test", file], { timeoutMs: 100_000, env: ENV });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ℹ pass 1\b/);
    assert.match(r.stdout, /ℹ fail 0\b/);
  } finally {
    rmSync(file, { force: true });
  }
});

test("docs/testing.md: the fault-injection example runs to its end", { timeout: 120_000 }, async () => {
  mkdirSync(DIR, { recursive: true });
  const file = join(DIR, `faults-${process.pid}.mts`);
  writeFileSync(file, `${block("Fault injection")}\nconsole.log("example done");\n`);
  try {
    const r = await run(process.execPath, [file], { timeoutMs: 100_000, env: ENV });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /example done/);
  } finally {
    rmSync(file, { force: true });
  }
});
