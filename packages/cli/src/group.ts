// `sluice group list|describe|reset-offsets|delete`: consumer groups, as kafka-consumer-groups.sh
// does them. describe shows the members with their assignments and, per partition, the committed
// offset, the log end offset and the lag. reset-offsets prints its plan and changes nothing
// unless --execute is given; like Kafka, it refuses a group with active members (offsets of an
// active group are owned by its members) and clamps new offsets to [log start, log end].

import type { Admin, GroupDescription } from "@sluice/client";
import { type Command, Option } from "commander";
import { bigintArg, CommandError, collect, globals, print, table, UsageError, withAdmin } from "./common.ts";

interface PartitionRow {
  topic: string;
  partition: number;
  /** null: no committed offset. */
  committed: bigint | null;
  logEndOffset: bigint | null;
  lag: bigint | null;
  memberId: string | null;
  clientId: string | null;
  host: string | null;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
const byTopicPartition = (a: { topic: string; partition: number }, b: { topic: string; partition: number }) =>
  a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1;
const dash = (v: bigint | string | null): string => (v === null || v === "" ? "-" : String(v));

/** Log end offsets of every partition of these topics, by tpKey. */
async function logEnds(
  admin: Admin,
  topics: Iterable<string>,
  at: "earliest" | "latest",
): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  for (const t of new Set(topics))
    for (const e of await admin.listOffsets(t, at)) out.set(tpKey(t, e.partition), e.offset);
  return out;
}

/** Every partition that is assigned or has a committed offset, with its lag. */
async function partitionRows(admin: Admin, d: GroupDescription): Promise<PartitionRow[]> {
  const offsets = await admin.listConsumerGroupOffsets(d.groupId);
  const owners = new Map<string, GroupDescription["members"][number]>();
  for (const m of d.members) for (const tp of m.assignment) owners.set(tpKey(tp.topic, tp.partition), m);
  const keys = new Map<string, { topic: string; partition: number }>();
  for (const o of offsets) keys.set(tpKey(o.topic, o.partition), o);
  for (const m of d.members) for (const tp of m.assignment) keys.set(tpKey(tp.topic, tp.partition), tp);
  const ends = await logEnds(
    admin,
    [...keys.values()].map((k) => k.topic),
    "latest",
  );
  const committed = new Map(offsets.map((o) => [tpKey(o.topic, o.partition), o.offset]));
  return [...keys.values()].sort(byTopicPartition).map(({ topic, partition }) => {
    const k = tpKey(topic, partition);
    const c = committed.get(k);
    const cur = c === undefined || c < 0n ? null : c;
    const end = ends.get(k) ?? null;
    const owner = owners.get(k);
    return {
      topic,
      partition,
      committed: cur,
      logEndOffset: end,
      lag: cur !== null && end !== null ? (end > cur ? end - cur : 0n) : null,
      memberId: owner?.memberId ?? null,
      clientId: owner?.clientId ?? null,
      host: owner?.clientHost ?? null,
    };
  });
}

/** "topic" or "topic:0,2,5". */
function parseTopicSpec(spec: string): { topic: string; partitions: number[] | null } {
  const i = spec.lastIndexOf(":");
  if (i < 0) return { topic: spec, partitions: null };
  const topic = spec.slice(0, i);
  const list = spec.slice(i + 1).split(",");
  if (topic === "" || list.some((p) => !/^\d+$/.test(p)))
    throw new UsageError(`--topic must be a topic or topic:partition,..., got "${spec}"`);
  return { topic, partitions: list.map(Number) };
}

type ResetMode =
  | { kind: "earliest" }
  | { kind: "latest" }
  | { kind: "offset"; offset: bigint }
  | { kind: "datetime"; timestampMs: bigint; text: string }
  | { kind: "shift"; by: bigint }
  | { kind: "current" };

interface ResetOptions {
  topic?: string[];
  allTopics: boolean;
  toEarliest: boolean;
  toLatest: boolean;
  toOffset?: bigint;
  toDatetime?: string;
  shiftBy?: bigint;
  toCurrent: boolean;
  byDuration?: string;
  execute: boolean;
  dryRun: boolean;
}

function resetMode(o: ResetOptions): ResetMode {
  const modes: ResetMode[] = [];
  if (o.toEarliest) modes.push({ kind: "earliest" });
  if (o.toLatest) modes.push({ kind: "latest" });
  if (o.toOffset !== undefined) modes.push({ kind: "offset", offset: o.toOffset });
  if (o.toDatetime !== undefined) {
    const ms = Date.parse(o.toDatetime);
    if (Number.isNaN(ms))
      throw new UsageError(
        `--to-datetime must be a date and time like 2024-05-01T12:00:00 (local) or 2024-05-01T12:00:00Z, got "${o.toDatetime}"`,
      );
    modes.push({ kind: "datetime", timestampMs: BigInt(ms), text: new Date(ms).toISOString() });
  }
  if (o.shiftBy !== undefined) modes.push({ kind: "shift", by: o.shiftBy });
  if (o.toCurrent) modes.push({ kind: "current" });
  if (o.byDuration !== undefined) {
    const ms = Date.now() - durationMs(o.byDuration);
    modes.push({ kind: "datetime", timestampMs: BigInt(ms), text: new Date(ms).toISOString() });
  }
  if (modes.length !== 1)
    throw new UsageError(
      `reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --by-duration, --shift-by, --to-current (got ${modes.length})`,
    );
  return modes[0]!;
}

/**
 * Milliseconds of an ISO-8601 duration as Kafka's --by-duration takes it (Java's Duration.parse):
 * PnDTnHnMn.nS, each part optional but at least one, e.g. P1D, PT30M, P1DT2H, PT0.5S.
 */
export function durationMs(text: string): number {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,3})?)S)?)?$/i.exec(text);
  if (m === null || m.slice(1).every((x) => x === undefined) || /T$/i.test(text))
    throw new UsageError(`--by-duration must be an ISO-8601 duration like P1D, PT30M or P1DT2H30M, got "${text}"`);
  const [d, h, min, sec] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  return Math.round((((d! * 24 + h!) * 60 + min!) * 60 + sec!) * 1000);
}

interface PlanRow {
  topic: string;
  partition: number;
  current: bigint | null;
  newOffset: bigint;
}

async function resetPlan(admin: Admin, groupId: string, o: ResetOptions, mode: ResetMode): Promise<PlanRow[]> {
  if (o.allTopics === (o.topic !== undefined))
    throw new UsageError("reset-offsets needs --topic <topic[:partitions]> (repeatable) or --all-topics");
  const committed = await admin.listConsumerGroupOffsets(groupId);
  const current = new Map(committed.map((c) => [tpKey(c.topic, c.partition), c.offset < 0n ? null : c.offset]));
  let targets: { topic: string; partition: number }[];
  if (o.allTopics) {
    targets = committed.map((c) => ({ topic: c.topic, partition: c.partition }));
    if (targets.length === 0)
      throw new CommandError(`consumer group ${groupId} has no committed offsets; name the topics with --topic`);
  } else {
    targets = [];
    const specs = o.topic!.map(parseTopicSpec);
    const described = await admin.describeTopics([...new Set(specs.map((s) => s.topic))]);
    for (const s of specs) {
      const all = described.find((d) => d.name === s.topic)!.partitions.map((p) => p.partition);
      for (const p of s.partitions ?? all) {
        if (!all.includes(p)) throw new CommandError(`topic ${s.topic} has no partition ${p} (it has ${all.length})`);
        targets.push({ topic: s.topic, partition: p });
      }
    }
  }
  const seen = new Set<string>();
  targets = targets.filter((t) => !seen.has(tpKey(t.topic, t.partition)) && seen.add(tpKey(t.topic, t.partition)));
  const topics = targets.map((t) => t.topic);
  const starts = await logEnds(admin, topics, "earliest");
  const ends = await logEnds(admin, topics, "latest");
  const atTime = new Map<string, bigint>();
  if (mode.kind === "datetime")
    for (const t of new Set(topics))
      for (const e of await admin.listOffsets(t, mode.timestampMs)) atTime.set(tpKey(t, e.partition), e.offset);
  return targets.sort(byTopicPartition).map(({ topic, partition }) => {
    const k = tpKey(topic, partition);
    const start = starts.get(k)!;
    const end = ends.get(k)!;
    const cur = current.get(k) ?? null;
    const clamp = (x: bigint): bigint => (x < start ? start : x > end ? end : x);
    let newOffset: bigint;
    switch (mode.kind) {
      case "earliest":
        newOffset = start;
        break;
      case "latest":
        newOffset = end;
        break;
      case "offset":
        newOffset = clamp(mode.offset);
        break;
      case "datetime": {
        // No record at or after that time: the log end, as Kafka does.
        const at = atTime.get(k);
        newOffset = at === undefined || at < 0n ? end : at;
        break;
      }
      case "shift":
        if (cur === null)
          throw new CommandError(
            `cannot shift the offset of ${topic}-${partition}: group ${groupId} has no committed offset there`,
          );
        newOffset = clamp(cur + mode.by);
        break;
      case "current":
        // Kafka: the committed offset where there is one, else the log end.
        newOffset = cur ?? end;
        break;
    }
    return { topic, partition, current: cur, newOffset };
  });
}

export function groupCommands(program: Command): void {
  const group = program
    .command("group")
    .description("list, describe, reset the offsets of, and delete consumer groups");

  group
    .command("list")
    .description("list consumer groups with their state")
    .action(async (_o: unknown, cmd: Command) => {
      const g = globals(cmd);
      const groups = await withAdmin(g, (admin) => admin.listGroups());
      print(g.json, groups, () =>
        table([["GROUP", "STATE", "PROTOCOL TYPE"], ...groups.map((x) => [x.groupId, x.state, x.protocolType])]),
      );
    });

  group
    .command("describe <group>")
    .description("state, members with their assignments, and per partition the committed offset, log end and lag")
    .addHelpText(
      "after",
      "\nLAG is LOG-END-OFFSET minus CURRENT-OFFSET; '-' where the group has no committed offset or the partition no owner.",
    )
    .action(async (groupId: string, _o: unknown, cmd: Command) => {
      const g = globals(cmd);
      const { d, rows } = await withAdmin(g, async (admin) => {
        const desc = await admin.describeGroup(groupId);
        return { d: desc, rows: await partitionRows(admin, desc) };
      });
      if (d.state === "Dead" && rows.length === 0) throw new CommandError(`consumer group ${groupId} does not exist`);
      const totalLag = rows.reduce((sum, r) => sum + (r.lag ?? 0n), 0n);
      print(
        g.json,
        {
          groupId,
          state: d.state,
          protocolType: d.protocolType,
          protocol: d.protocol,
          members: d.members,
          partitions: rows,
          totalLag,
        },
        () =>
          [
            `group ${groupId}: ${d.state}${d.protocol ? ` (${d.protocol})` : ""}, ${d.members.length} member(s), total lag ${totalLag}`,
            ...(d.members.length === 0
              ? []
              : [
                  "",
                  table([
                    ["MEMBER-ID", "CLIENT-ID", "HOST", "INSTANCE-ID", "#PARTITIONS", "ASSIGNMENT"],
                    ...d.members.map((m) => [
                      m.memberId,
                      m.clientId,
                      m.clientHost,
                      dash(m.groupInstanceId),
                      String(m.assignment.length),
                      m.assignment.map((tp) => `${tp.topic}-${tp.partition}`).join(",") || "-",
                    ]),
                  ]),
                ]),
            "",
            table([
              ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"],
              ...rows.map((r) => [
                r.topic,
                String(r.partition),
                dash(r.committed),
                dash(r.logEndOffset),
                dash(r.lag),
                dash(r.memberId),
                dash(r.host),
                dash(r.clientId),
              ]),
            ]),
          ].join("\n"),
      );
    });

  group
    .command("reset-offsets <group>")
    .description("move a group's committed offsets (prints the plan; --execute applies it)")
    .option("-t, --topic <topic[:partitions]>", "topic, or topic:0,1,2 for some partitions; repeatable", collect)
    .option("--all-topics", "every topic the group has committed offsets for", false)
    .option("--to-earliest", "to the log start offset", false)
    .option("--to-latest", "to the log end offset", false)
    .option("--to-offset <offset>", "to this offset (clamped to the log's range)", bigintArg("--to-offset"))
    .option(
      "--to-datetime <iso>",
      "to the first offset with a timestamp at or after this time, e.g. 2024-05-01T12:00:00Z (log end if none)",
    )
    .option(
      "--by-duration <duration>",
      "to the first offset with a timestamp at or after now minus this ISO-8601 duration (P1D, PT30M, ...)",
    )
    .option("--shift-by <n>", "move each committed offset by n (negative: back), clamped", bigintArg("--shift-by"))
    .option("--to-current", "to the committed offset (the log end where there is none)", false)
    .addOption(new Option("--dry-run", "only print the plan (the default)").default(false))
    .option("--execute", "apply the plan", false)
    .addHelpText(
      "after",
      "\nThe group must have no active members. Without --execute nothing changes.\n" +
        "Example: sluice group reset-offsets my-group --topic orders --to-datetime 2024-05-01T00:00:00Z --execute",
    )
    .action(async (groupId: string, o: ResetOptions, cmd: Command) => {
      const g = globals(cmd);
      if (o.execute && o.dryRun) throw new UsageError("--dry-run and --execute exclude each other");
      const mode = resetMode(o);
      const plan = await withAdmin(g, async (admin) => {
        const d = await admin.describeGroup(groupId);
        if (d.state !== "Empty" && d.state !== "Dead")
          throw new CommandError(
            `consumer group ${groupId} is ${d.state} with ${d.members.length} member(s): offsets can only be reset while it has no active members`,
          );
        const rows = await resetPlan(admin, groupId, o, mode);
        if (o.execute)
          await admin.alterConsumerGroupOffsets(
            groupId,
            rows.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.newOffset })),
          );
        return rows;
      });
      print(g.json, { groupId, executed: o.execute, offsets: plan }, () =>
        [
          table([
            ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"],
            ...plan.map((r) => [groupId, r.topic, String(r.partition), dash(r.current), String(r.newOffset)]),
          ]),
          o.execute
            ? `reset ${plan.length} partition(s) of group ${groupId}`
            : "dry run: nothing changed (add --execute to apply)",
        ].join("\n"),
      );
    });

  group
    .command("delete <groups...>")
    .description("delete groups without active members, with their committed offsets")
    .action(async (groupIds: string[], _o: unknown, cmd: Command) => {
      const g = globals(cmd);
      await withAdmin(g, (admin) => admin.deleteGroups(groupIds));
      print(g.json, { deleted: groupIds }, () => groupIds.map((id) => `deleted group ${id}`).join("\n"));
    });
}
