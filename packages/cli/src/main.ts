#!/usr/bin/env node
// The `sluice` executable. It turns on Node's compile cache first (module.enableCompileCache: the
// compiled code of the CLI and the client is reused across runs, about a third of the start-up
// CPU), then loads the commands (cli.ts).

import { enableCompileCache } from "node:module";

enableCompileCache();
await import("./cli.ts");
