// Kafka's checkpoint file format, shared by recovery-point-offset-checkpoint,
// replication-offset-checkpoint, log-start-offset-checkpoint, cleaner-offset-checkpoint (one
// "topic partition offset" entry per partition, in the log dir) and leader-epoch-checkpoint
// ("epoch startOffset" entries, in a partition dir):
//
//   0                  version
//   2                  number of entries
//   orders 0 1042      one entry per line, fields separated by single spaces
//   orders 1 977
//
// Files are replaced atomically (temp file, fsync, rename, directory fsync), so a reader sees the
// old or the new version, never a mix. A file that does not parse is reported as corrupt; the
// callers decide what that costs (recovery points: a full recovery, never lost data).

import { type Disk, readWholeFile, writeFileDurable } from "./disk.ts";

export class CorruptCheckpointError extends Error {
  constructor(path: string, why: string) {
    super(`checkpoint ${path} is corrupt: ${why}`);
    this.name = "CorruptCheckpointError";
  }
}

export function formatCheckpoint(entries: readonly (readonly string[])[]): Buffer {
  let text = `0\n${entries.length}\n`;
  for (const e of entries) text += `${e.join(" ")}\n`;
  return Buffer.from(text, "utf8");
}

export function parseCheckpoint(path: string, text: string, fieldCount: number): string[][] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines[0] !== "0") throw new CorruptCheckpointError(path, `version ${JSON.stringify(lines[0])}`);
  const count = Number(lines[1]);
  if (!Number.isSafeInteger(count) || count < 0 || count !== lines.length - 2)
    throw new CorruptCheckpointError(path, `entry count ${JSON.stringify(lines[1])} for ${lines.length - 2} lines`);
  return lines.slice(2).map((line) => {
    const fields = line.split(" ");
    if (fields.length !== fieldCount || fields.some((f) => f.length === 0))
      throw new CorruptCheckpointError(path, `entry ${JSON.stringify(line)}`);
    return fields;
  });
}

export async function writeCheckpoint(
  disk: Disk,
  path: string,
  entries: readonly (readonly string[])[],
): Promise<void> {
  await writeFileDurable(disk, path, [formatCheckpoint(entries)]);
}

/** The entries of a checkpoint; [] when the file does not exist. Throws CorruptCheckpointError. */
export async function readCheckpoint(disk: Disk, path: string, fieldCount: number): Promise<string[][]> {
  const data = await readWholeFile(disk, path);
  if (data === null) return [];
  return parseCheckpoint(path, data.toString("utf8"), fieldCount);
}

export function parseOffset(path: string, s: string): bigint {
  if (!/^-?\d{1,19}$/.test(s)) throw new CorruptCheckpointError(path, `offset ${JSON.stringify(s)}`);
  return BigInt(s);
}

/** A "topic partition offset" checkpoint as a map keyed by `topic-partition`. */
export async function readOffsetCheckpoint(disk: Disk, path: string): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  for (const [topic, partition, offset] of await readCheckpoint(disk, path, 3)) {
    if (!/^\d+$/.test(partition!)) throw new CorruptCheckpointError(path, `partition ${JSON.stringify(partition)}`);
    out.set(`${topic}-${partition}`, parseOffset(path, offset!));
  }
  return out;
}

export async function writeOffsetCheckpoint(
  disk: Disk,
  path: string,
  entries: Iterable<{ topic: string; partition: number; offset: bigint }>,
): Promise<void> {
  const rows: string[][] = [];
  for (const e of entries) rows.push([e.topic, String(e.partition), String(e.offset)]);
  await writeCheckpoint(disk, path, rows);
}
