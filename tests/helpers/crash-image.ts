// A crash image: a copy of a directory that a live broker or log is still writing, as a killed
// process would leave it (page cache included). Background work (index files and checkpoints
// written to a temp file and renamed, segments renamed away) can make a file vanish between the
// copy listing a directory and copying it; such a copy is retried from scratch, so the image is
// one the directory really passed through rather than a mix with holes in it.

import { cpSync, rmSync } from "node:fs";

const ATTEMPTS = 50;

export async function copyCrashImage(from: string, to: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      cpSync(from, to, { recursive: true });
      return to;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || attempt === ATTEMPTS) throw e;
      rmSync(to, { recursive: true, force: true });
      // Let the background work that removed the file finish its step before copying again.
      await new Promise((r) => setImmediate(r));
    }
  }
}
