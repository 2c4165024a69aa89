/**
 * Port-forwarding and open-ports rules. Every rule write validates the whole
 * candidate set (every rule with the change, every user's first knock port,
 * the management port and the addressing; see `_candidate.ts`) and commits
 * only if no rule or user was written since it read them: it checks and
 * bumps `["rules","version"]` and `["config","version"]`.
 */
import type { Clock } from "../clock.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import type { NetworkLayout } from "../nat/rule_validate.ts";
import { candidateOf, readConfig, refuseNewProblems, stageConfigVersion } from "./_candidate.ts";
import { RETRY, withRetry } from "./_retry.ts";
import type { AuditLog } from "./audit.ts";
import { ConfigProblemError, ConflictError, NotFoundError } from "./errors.ts";
import type { StoreKv } from "./store_kv.ts";

/** A rule as the operator submits it. */
export type RuleInput =
  | { kind: "forward"; rule: PortForwardRule }
  | { kind: "open"; rule: OpenPortsRule };

/** Bookkeeping the store adds to every rule. */
export interface RuleMeta {
  createdAt: number;
  updatedAt: number;
  /** Starts at 1, +1 on every update. */
  version: number;
}

/** A stored rule. */
export type RuleRecord = RuleInput & RuleMeta;

const VERSION_KEY: Deno.KvKey = ["rules", "version"];
const BY_NAME: Deno.KvKey = ["rules", "byName"];

function ruleKey(name: string): Deno.KvKey {
  return [...BY_NAME, name];
}

/** "all": every uplink, or every address of the rule's uplink. */
export const ALL_UPLINKS = "all";

/**
 * `input` with its WAN binding spelled out: records written before rules had
 * `uplink` and `wanAddress` (and bodies without them) are bound to every
 * address of every uplink.
 */
export function withWanBinding<T extends RuleInput>(input: T): T {
  const rule = { ...input.rule };
  rule.uplink = rule.uplink ?? ALL_UPLINKS;
  rule.wanAddress = rule.wanAddress ?? ALL_UPLINKS;
  return { ...input, rule };
}

function copyInput(input: RuleInput): RuleInput {
  return withWanBinding(structuredClone({ kind: input.kind, rule: input.rule }) as RuleInput);
}

/** Repository of rules. */
export class RuleRepo {
  /**
   * Rules in `kv`; changes recorded in `audit`. Without `network` the checks
   * against the addressing and the management port are skipped.
   */
  constructor(
    private readonly kv: StoreKv,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly network?: NetworkLayout,
  ) {}

  /** Every rule, by name. */
  async listRules(): Promise<RuleRecord[]> {
    const out: RuleRecord[] = [];
    for await (const e of this.kv.list<RuleRecord>({ prefix: BY_NAME })) {
      out.push(withWanBinding(e.value));
    }
    return out;
  }

  /** The rule named `name`; NotFoundError if absent. */
  async getRule(name: string): Promise<RuleRecord> {
    const r = (await this.kv.get<RuleRecord>(ruleKey(name))).value;
    if (r === null) throw new NotFoundError("rule", name);
    return withWanBinding(r);
  }

  /** A counter bumped by every rule write; cheap change detection for readers. */
  async rulesVersion(): Promise<number> {
    return (await this.kv.get<number>(VERSION_KEY)).value ?? 0;
  }

  /** Creates a rule; ConfigProblemError listing every problem of the set it would make. */
  async createRule(input: RuleInput, actor: string): Promise<RuleRecord> {
    const name = input.rule.name;
    return await this.#write(name, name, "rule.create", actor, (before) => {
      if (before !== null) throw nameTaken(name);
      const now = this.clock.now();
      return { ...copyInput(input), createdAt: now, updatedAt: now, version: 1 };
    });
  }

  /**
   * Replaces rule `name` with `input` (which may rename it). With
   * `expectedVersion`, a ConflictError unless the stored version matches.
   */
  async updateRule(
    name: string,
    input: RuleInput,
    actor: string,
    expectedVersion?: number,
  ): Promise<RuleRecord> {
    return await this.#write(name, input.rule.name, "rule.update", actor, (before) => {
      if (before === null) throw new NotFoundError("rule", name);
      if (expectedVersion !== undefined && before.version !== expectedVersion) {
        throw new ConflictError(
          "version",
          `rule "${name}" is at version ${before.version}, not ${expectedVersion}`,
        );
      }
      return {
        ...copyInput(input),
        createdAt: before.createdAt,
        updatedAt: this.clock.now(),
        version: before.version + 1,
      };
    });
  }

  /** Deletes rule `name`. */
  async deleteRule(name: string, actor: string): Promise<void> {
    await this.#write(name, name, "rule.delete", actor, (before) => {
      if (before === null) throw new NotFoundError("rule", name);
      return null;
    });
  }

  /**
   * The one write path: reads the version keys, every rule and every user,
   * computes the new record for `oldName` (stored as `newName`; null =
   * delete), validates the candidate set, and commits rule, version bumps and
   * audit entry atomically.
   */
  #write<T extends RuleRecord | null>(
    oldName: string,
    newName: string,
    action: string,
    actor: string,
    change: (before: RuleRecord | null) => T,
  ): Promise<T> {
    return withRetry(`rule "${oldName}"`, async () => {
      const version = await this.kv.get<number>(VERSION_KEY);
      const snap = await readConfig(this.kv);
      const before = snap.rules.find((r) => r.rule.name === oldName) ?? null;
      const after = change(before);
      const others = snap.rules.filter((r) => r.rule.name !== oldName);
      if (after !== null && others.some((r) => r.rule.name === newName)) throw nameTaken(newName);
      refuseNewProblems(
        candidateOf(snap.rules, snap.users, this.network),
        candidateOf(after === null ? others : [...others, after], snap.users, this.network),
        { kind: "rule", name: after === null ? oldName : newName, verb: after ? "save" : "delete" },
      );
      // Every rule and user write bumps the config version, so checking it covers the whole set.
      const op = this.kv.atomic().check(version).set(VERSION_KEY, (version.value ?? 0) + 1);
      stageConfigVersion(op, snap);
      if (before !== null) op.delete(ruleKey(oldName));
      if (after !== null) op.set(ruleKey(newName), after);
      this.audit.stage(op, { actor, action, target: oldName, before, after });
      return (await op.commit()).ok ? after : RETRY;
    });
  }
}

function nameTaken(name: string): ConfigProblemError {
  return new ConfigProblemError([{
    field: "name",
    message: `Cannot save rule "${name}": rule "${name}" already exists`,
    clash: `rule "${name}"`,
  }], true);
}
