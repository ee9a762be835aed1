// Kafka's checkpoint file format (recovery-point-offset-checkpoint, replication-offset-checkpoint,
// log-start-offset-checkpoint, leader-epoch-checkpoint): a text file of
//   version (0)
//   entry count
//   one entry per line, fields separated by spaces
// written atomically (temp file, fsync, rename).

import type { Disk } from "./disk.ts";

export async function writeCheckpoint(disk: Disk, path: string, entries: readonly string[][]): Promise<void> {
  const text = `0\n${entries.length}\n${entries.map((e) => e.join(" ")).join("\n")}${entries.length ? "\n" : ""}`;
  await disk.writeFileAtomic(path, Buffer.from(text));
}

/** Reads a checkpoint; a missing or malformed file reads as no entries. */
export async function readCheckpoint(disk: Disk, path: string): Promise<string[][]> {
  let text: string;
  try {
    text = (await disk.readFile(path)).toString("utf8");
  } catch {
    return [];
  }
  const lines = text.split("\n").filter((l) => l.length > 0);
  if (lines[0] !== "0") return [];
  const count = Number(lines[1]);
  if (!Number.isInteger(count) || count !== lines.length - 2) return [];
  return lines.slice(2).map((l) => l.split(" "));
}
