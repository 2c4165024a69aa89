/**
 * The forwarding configuration as one candidate set: every rule, every user
 * and the addressing, validated together by `validateConfig` inside the rule
 * and user write transactions. Every rule and user write checks and bumps
 * `["config","version"]`, read before the two lists, so two writers that
 * would only clash together cannot both commit: the second one's check
 * fails, it re-reads, and validation then sees the first one's change.
 */
import {
  type ConfigCandidate,
  type ConfigProblem,
  type NetworkLayout,
  type ProblemSubject,
  sameSubject,
  subjectLabel,
  validateConfig,
} from "../nat/rule_validate.ts";
import { ConfigProblemError, type FieldProblem } from "./errors.ts";
import type { RuleRecord } from "./rules.ts";
import type { UserRecord } from "./users.ts";
import type { StoreAtomic, StoreKv } from "./store_kv.ts";

/** Bumped by every rule and user write. */
export const CONFIG_VERSION_KEY: Deno.KvKey = ["config", "version"];

/** Rules and users as read at one config version. */
export interface ConfigSnapshot {
  version: Deno.KvEntryMaybe<number>;
  rules: RuleRecord[];
  users: UserRecord[];
}

/** Reads the config version, then every rule and user. */
export async function readConfig(kv: StoreKv): Promise<ConfigSnapshot> {
  const version = await kv.get<number>(CONFIG_VERSION_KEY);
  const rules: RuleRecord[] = [];
  for await (const e of kv.list<RuleRecord>({ prefix: ["rules", "byName"] })) rules.push(e.value);
  const users: UserRecord[] = [];
  for await (const e of kv.list<UserRecord>({ prefix: ["users"] })) users.push(e.value);
  return { version, rules, users };
}

/** Makes `op` commit only if no rule or user was written since `snap`, and bumps the version. */
export function stageConfigVersion(op: StoreAtomic, snap: ConfigSnapshot): void {
  op.check(snap.version).set(CONFIG_VERSION_KEY, (snap.version.value ?? 0) + 1);
}

/** The candidate set of `rules` and `users` under `network`. */
export function candidateOf(
  rules: readonly RuleRecord[],
  users: readonly UserRecord[],
  network: NetworkLayout | undefined,
): ConfigCandidate {
  return {
    forwards: rules.flatMap((r) => r.kind === "forward" ? [r.rule] : []),
    openPorts: rules.flatMap((r) => r.kind === "open" ? [r.rule] : []),
    users: users.map((u) => ({
      name: u.name,
      enabled: u.knock.enabled,
      firstPort: u.knock.firstPort,
      transport: u.knock.transport,
    })),
    network,
  };
}

/** The record a write is about, and what it does to it. */
export interface WriteFocus {
  kind: "rule" | "user";
  name: string;
  verb: "save" | "delete";
}

function keyOf(p: ConfigProblem): string {
  return `${subjectLabel(p.subject)}\u0000${p.field}\u0000${p.message}`;
}

function isClashWithRecord(s: ProblemSubject | undefined): boolean {
  return s !== undefined && s.kind !== "network";
}

/**
 * Throws a ConfigProblemError listing every problem `after` has and `before`
 * had not (so a problem stored before this validation existed does not
 * block unrelated writes), in the terms of the written record: its own
 * fields first; a problem only another record shows under the record's
 * `name`, with that record as the clash. Deleting a user a rule names is
 * not refused (see `ConfigProblem.code`).
 */
export function refuseNewProblems(
  before: ConfigCandidate,
  after: ConfigCandidate,
  focus: WriteFocus,
): void {
  const old = new Set(validateConfig(before).map(keyOf));
  const leftBehind = (p: ConfigProblem) =>
    p.code === "unknown-user" && focus.kind === "user" && focus.verb === "delete";
  const added = validateConfig(after).filter((p) => !old.has(keyOf(p)) && !leftBehind(p));
  if (added.length === 0) return;
  const me: ProblemSubject = focus.kind === "rule"
    ? { kind: "rule", list: "forwards", index: 0, name: focus.name }
    : { kind: "user", index: 0, name: focus.name };
  const prefix = `Cannot ${focus.verb} ${focus.kind} "${focus.name}"`;
  const own = added.filter((p) => sameSubject(p.subject, me));
  const shown = own.length > 0 ? own : added.filter((p) => !p.mirror);
  const problems = shown.map((p): FieldProblem => {
    if (own.length > 0) {
      const fp: FieldProblem = { field: p.field, message: `${prefix}: ${p.reason}` };
      if (p.clash !== undefined) fp.clash = p.clash;
      return fp;
    }
    return {
      field: "name",
      message: `${prefix}: ${p.message}`,
      clash: `${subjectLabel(p.subject)} ${p.field}`,
    };
  });
  const conflict = shown.some((p) => own.length === 0 || isClashWithRecord(p.other));
  throw new ConfigProblemError(dedupe(problems), conflict);
}

function dedupe(problems: FieldProblem[]): FieldProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.field}\u0000${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
