#!/usr/bin/env node
// The broker executable (`npm start`, `sluice-broker`). It turns on Node's compile cache before
// loading anything else: the type-stripped, compiled code of the broker and the generated protocol
// codecs is then reused across starts (a start-up of ~0.65 s of module loading becomes ~0.2 s).
// What it runs, and its arguments: run-broker.ts.

import { enableCompileCache } from "node:module";

enableCompileCache();
const { runBroker } = await import("./run-broker.ts");
await runBroker(process.argv.slice(2));
