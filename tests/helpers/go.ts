// Go programs for interop tests, built offline from Debian's packaged sources (golang-go plus
// golang-github-*-dev packages, which install under /usr/share/gocode): GOPATH mode, no module
// downloads, a build cache of its own in the caller's temporary directory.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrokerProcess, hasCommand, run, startBrokerProcess } from "./broker-process.ts";

export const GOPATH = "/usr/share/gocode";

/** Whether `go` runs and the Debian source package for `importPath` is installed. */
export function hasGoPackage(importPath: string): boolean {
  return hasCommand("go", ["version"]) && existsSync(join(GOPATH, "src", importPath));
}

/** Builds `source` (one main.go) into `binary`; throws with the compiler's output on failure. */
async function buildGoProgram(source: string, binary: string, cacheDir: string): Promise<void> {
  const env = { ...process.env, GO111MODULE: "off", GOPATH, GOCACHE: cacheDir, GOFLAGS: "" };
  const built = await run("go", ["build", "-o", binary, source], { timeoutMs: 240_000, env });
  if (built.status !== 0) throw new Error(`go build ${source} failed:\n${built.stderr}`);
}

/** Runs one scenario of such a program (argv: bootstrap, scenario) and parses its JSON line. */
async function runGoScenario(binary: string, bootstrap: string, name: string): Promise<Record<string, unknown>> {
  const r = await run(binary, [bootstrap, name], { timeoutMs: 90_000 });
  if (r.status !== 0) throw new Error(`${binary} ${name} failed:\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

/**
 * A Go interop suite's fixture: `start` builds `source` in a temporary directory and starts a
 * broker process, `scenario` runs one scenario of the program against it, `stop` removes both.
 */
export function goInterop(source: string, name: string) {
  let dir = "";
  let binary = "";
  let broker: BrokerProcess | undefined;
  return {
    async start(): Promise<void> {
      dir = mkdtempSync(join(tmpdir(), `sluice-${name}-`));
      binary = join(dir, `${name}-interop`);
      await buildGoProgram(source, binary, join(dir, "cache"));
      broker = await startBrokerProcess();
    },
    async stop(): Promise<void> {
      await broker?.cleanup();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
    scenario(scenarioName: string): Promise<Record<string, unknown>> {
      if (!broker) throw new Error(`${name}: start() first`);
      return runGoScenario(binary, broker.bootstrap, scenarioName);
    },
  };
}
