// Allocates producer ids that are never reused, even across restarts.
//
// Ids are handed out from blocks: before the first id of a block is used, the block's end is
// written to `producer-id-block` in the data directory and fsynced (write to a temp file, fsync,
// rename). After a restart allocation resumes at the persisted end, so at most one block of ids
// is skipped and none is handed out twice.

import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type { ProducerIdAllocator } from "./transaction-coordinator.ts";

export const PRODUCER_ID_BLOCK_SIZE = 1000n;

export class FileProducerIdAllocator implements ProducerIdAllocator {
  private readonly path: string;
  private nextId = -1n;
  private blockEnd = -1n;
  private pending: Promise<void> | null = null;

  constructor(dataDir: string) {
    this.path = join(dataDir, "producer-id-block");
  }

  async next(): Promise<bigint> {
    while (this.nextId < 0n || this.nextId >= this.blockEnd) {
      this.pending ??= this.allocateBlock().finally(() => {
        this.pending = null;
      });
      await this.pending;
    }
    const id = this.nextId;
    this.nextId++;
    return id;
  }

  private async allocateBlock(): Promise<void> {
    let start = this.blockEnd;
    if (start < 0n) {
      try {
        start = BigInt((await readFile(this.path, "utf8")).trim());
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        start = 0n;
      }
    }
    const end = start + PRODUCER_ID_BLOCK_SIZE;
    const tmp = `${this.path}.tmp`;
    const fh = await open(tmp, "w");
    try {
      await fh.writeFile(`${end}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
    this.nextId = start;
    this.blockEnd = end;
  }
}
