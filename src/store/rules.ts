/**
 * Port-forwarding and open-ports rules. Names are unique across both kinds,
 * and no two enabled rules may claim the same public port for the same
 * protocol. Every rule write reads the version key `["rules","version"]`,
 * validates against the whole current set, and commits only if that key is
 * unchanged, bumping it (optimistic concurrency over the whole rule set).
 */
import type { Clock } from "../clock.ts";
import type { OpenPortsRule, PortForwardRule, PortRange, RuleProtocol } from "../nat/rule.ts";
import { RETRY, withRetry } from "./_retry.ts";
import { isDottedQuad, isInt } from "./_validate.ts";
import type { AuditLog } from "./audit.ts";
import { ConflictError, NotFoundError, ValidationError } from "./errors.ts";

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
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/; // as src/nat/rule_validate.ts
const PROTOCOLS: readonly RuleProtocol[] = ["tcp", "udp", "both"];

function ruleKey(name: string): Deno.KvKey {
  return [...BY_NAME, name];
}

/** One public (protocol, port range) claim of an enabled rule. */
interface Claim {
  proto: "tcp" | "udp";
  ports: PortRange;
}

class RuleChecker {
  constructor(readonly name: string) {}

  fail(field: string, what: string): never {
    throw new ValidationError(field, `Cannot save rule "${this.name}": ${what}`);
  }

  bool(field: string, v: unknown): void {
    if (typeof v !== "boolean") this.fail(field, `${field} must be true or false`);
  }

  protocol(field: string, v: unknown): void {
    if (!PROTOCOLS.includes(v as RuleProtocol)) {
      this.fail(field, `protocol ${JSON.stringify(v)} is not tcp, udp or both`);
    }
  }

  range(field: string, r: PortRange | undefined): void {
    for (const p of [r?.start, r?.end]) {
      if (!isInt(p, 1, 65535)) {
        this.fail(field, `port ${p} is out of range 1..65535`);
      }
    }
    if (r!.start > r!.end) this.fail(field, `port range ${r!.start}..${r!.end} is reversed`);
  }

  address(v: unknown): void {
    if (!isDottedQuad(v)) {
      this.fail("privateAddress", `private address ${JSON.stringify(v)} is not a dotted quad`);
    }
  }

  users(v: unknown): void {
    if (!Array.isArray(v) || !v.every((u) => typeof u === "string" && u.length > 0)) {
      this.fail("users", "users must be a list of user names");
    }
  }
}

/** Throws a ValidationError unless `input` is a well-formed rule. */
export function validateRule(input: RuleInput): void {
  const name = input?.rule?.name;
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new ValidationError(
      "name",
      `Cannot save rule ${
        JSON.stringify(name)
      }: use 1..64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit`,
    );
  }
  const c = new RuleChecker(name);
  c.bool("enabled", input.rule.enabled);
  c.bool("enforceKnock", input.rule.enforceKnock);
  c.address(input.rule.privateAddress);
  c.users(input.rule.users);
  if (input.kind === "forward") validateForward(c, input.rule);
  else if (input.kind === "open") validateOpen(c, input.rule);
  else {c.fail(
      "kind",
      `kind ${JSON.stringify((input as { kind: unknown }).kind)} is not forward or open`,
    );}
}

function validateForward(c: RuleChecker, r: PortForwardRule): void {
  c.protocol("protocol", r.protocol);
  c.range("publicPorts", r.publicPorts);
  c.range("privatePorts", r.privatePorts);
  const pub = r.publicPorts.end - r.publicPorts.start;
  const priv = r.privatePorts.end - r.privatePorts.start;
  // The private range is as wide as the public one or a single port (see PortForwardRule).
  if (priv !== 0 && priv !== pub) {
    c.fail("privatePorts", `private ports span ${priv + 1} ports, public ports ${pub + 1}`);
  }
}

function validateOpen(c: RuleChecker, r: OpenPortsRule): void {
  if (!Array.isArray(r.ports) || r.ports.length === 0 || r.ports.length > 64) {
    c.fail("ports", "ports must list 1..64 entries");
  }
  r.ports.forEach((p, i) => {
    c.protocol(`ports.${i}.protocol`, p?.protocol);
    c.range(`ports.${i}.ports`, p.ports);
  });
}

function protocols(p: RuleProtocol): ("tcp" | "udp")[] {
  return p === "both" ? ["tcp", "udp"] : [p];
}

/** The public ports an enabled rule claims; none when disabled. */
export function claims(input: RuleInput): Claim[] {
  if (!input.rule.enabled) return [];
  const entries = input.kind === "forward"
    ? [{ protocol: input.rule.protocol, ports: input.rule.publicPorts }]
    : input.rule.ports;
  return entries.flatMap((e) => protocols(e.protocol).map((proto) => ({ proto, ports: e.ports })));
}

function overlaps(a: Claim, b: Claim): boolean {
  return a.proto === b.proto && a.ports.start <= b.ports.end && b.ports.start <= a.ports.end;
}

function describe(c: Claim): string {
  const { start, end } = c.ports;
  return `${c.proto} ${start === end ? `port ${start}` : `ports ${start}..${end}`}`;
}

/** Throws a ConflictError if `input` claims a port another enabled rule (or itself) claims. */
export function checkOverlap(input: RuleInput, others: readonly RuleInput[]): void {
  const mine = claims(input);
  const field = input.kind === "forward" ? "publicPorts" : "ports";
  mine.forEach((a, i) => {
    const twin = mine.slice(i + 1).find((b) => overlaps(a, b));
    if (twin) {
      throw new ConflictError(
        field,
        `Cannot save rule "${input.rule.name}": ${describe(a)} overlap its own ${describe(twin)}`,
      );
    }
    for (const other of others) {
      const hit = claims(other).find((b) => overlaps(a, b));
      if (hit) {
        throw new ConflictError(
          field,
          `Cannot save rule "${input.rule.name}": ${describe(a)} overlap ${
            describe(hit)
          } of rule "${other.rule.name}"`,
        );
      }
    }
  });
}

function copyInput(input: RuleInput): RuleInput {
  return structuredClone({ kind: input.kind, rule: input.rule }) as RuleInput;
}

/** Repository of rules. */
export class RuleRepo {
  /** Rules in `kv`; changes recorded in `audit`. */
  constructor(
    private readonly kv: Deno.Kv,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  /** Every rule, by name. */
  async listRules(): Promise<RuleRecord[]> {
    const out: RuleRecord[] = [];
    for await (const e of this.kv.list<RuleRecord>({ prefix: BY_NAME })) out.push(e.value);
    return out;
  }

  /** The rule named `name`; NotFoundError if absent. */
  async getRule(name: string): Promise<RuleRecord> {
    const r = (await this.kv.get<RuleRecord>(ruleKey(name))).value;
    if (r === null) throw new NotFoundError("rule", name);
    return r;
  }

  /** A counter bumped by every rule write; cheap change detection for readers. */
  async rulesVersion(): Promise<number> {
    return (await this.kv.get<number>(VERSION_KEY)).value ?? 0;
  }

  /** Creates a rule; ConflictError if the name is taken or its ports overlap. */
  async createRule(input: RuleInput, actor: string): Promise<RuleRecord> {
    validateRule(input);
    const name = input.rule.name;
    return await this.#write(name, name, "rule.create", actor, (before) => {
      if (before !== null) throw new ConflictError("name", `rule "${name}" already exists`);
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
    validateRule(input);
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
   * The one write path: reads the version key and the whole set, computes the
   * new record for `oldName` (stored as `newName`; null = delete), checks names
   * and overlaps, and commits rule, version bump and audit entry atomically.
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
      const all = await this.listRules();
      const before = all.find((r) => r.rule.name === oldName) ?? null;
      const after = change(before);
      const others = all.filter((r) => r.rule.name !== oldName);
      if (after !== null) {
        if (others.some((r) => r.rule.name === newName)) {
          throw new ConflictError("name", `rule "${newName}" already exists`);
        }
        checkOverlap(after, others);
      }
      // Checking the version key covers every rule: all rule writes bump it.
      const op = this.kv.atomic().check(version).set(VERSION_KEY, (version.value ?? 0) + 1);
      if (before !== null) op.delete(ruleKey(oldName));
      if (after !== null) op.set(ruleKey(newName), after);
      this.audit.stage(op, { actor, action, target: oldName, before, after });
      return (await op.commit()).ok ? after : RETRY;
    });
  }
}
