/**
 * Appliance settings: one versioned document with defaults. Reads of a fresh
 * store return the defaults (version 0); updates are partial and merged one
 * level deep (`wan`, `lan`, `knock`, `limits` field by field; `syslog` whole).
 */
import type { Clock } from "../clock.ts";
import { ipFamily } from "../packet/ip_text.ts";
import { RETRY, withRetry } from "./_retry.ts";
import { CIDR_RE, DOTTED_QUAD_RE, isInt } from "./_validate.ts";
import type { AuditLog } from "./audit.ts";
import { ConflictError, ValidationError } from "./errors.ts";
import type { StoreKv } from "./store_kv.ts";

/** Where to send syslog messages. */
export interface SyslogCollector {
  /** Dotted quad, IPv6 address or host name. */
  host: string;
  port: number;
  format: "rfc5424" | "rfc3164";
}

/** The WAN side. */
export interface WanSettings {
  interface: string;
  /** Appliance address with prefix length, e.g. "198.51.100.1/24". */
  address: string;
  /** Next hop, dotted quad, or null for on-link only. */
  gateway: string | null;
}

/** The LAN side. */
export interface LanSettings {
  interface: string;
  /** Appliance address with prefix length, e.g. "192.0.2.1/24". */
  address: string;
}

/** Knock verification tunables (see knock-protocol.md). */
export interface KnockTunables {
  /** A sequence must complete within this many seconds of `F`. */
  sequenceWindowSeconds: number;
  /** Failures per IP before the penalty. */
  failureLimit: number;
  failureWindowSeconds: number;
  penaltySeconds: number;
}

/** Table sizes. */
export interface Limits {
  maxConnections: number;
  maxUnlocks: number;
  maxPendingKnocks: number;
}

/** The whole settings document. */
export interface Settings {
  wan: WanSettings;
  lan: LanSettings;
  /** An unlock ends after this many seconds without traffic. */
  idleTimeoutSeconds: number;
  syslog: { collectors: SyslogCollector[] };
  knock: KnockTunables;
  limits: Limits;
}

/** Settings as stored, with bookkeeping. */
export interface SettingsRecord extends Settings {
  /** 0 = never written (defaults), +1 on every update. */
  version: number;
  updatedAt: number;
}

/** A partial update. */
export interface SettingsPatch {
  wan?: Partial<WanSettings>;
  lan?: Partial<LanSettings>;
  idleTimeoutSeconds?: number;
  syslog?: { collectors: SyslogCollector[] };
  knock?: Partial<KnockTunables>;
  limits?: Partial<Limits>;
}

/** The settings of a fresh appliance. */
export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  wan: { interface: "wan0", address: "198.51.100.1/24", gateway: null },
  lan: { interface: "lan0", address: "192.0.2.1/24" },
  idleTimeoutSeconds: 3600,
  syslog: { collectors: [] },
  knock: {
    sequenceWindowSeconds: 15,
    failureLimit: 5,
    failureWindowSeconds: 600,
    penaltySeconds: 600,
  },
  limits: { maxConnections: 65536, maxUnlocks: 65536, maxPendingKnocks: 4096 },
});

const KEY: Deno.KvKey = ["settings"];
const IFNAME_RE = /^[A-Za-z0-9._-]{1,15}$/;
/**
 * A host name (RFC 1123 labels: letters, digits, inner hyphens, 1..63 each)
 * or a dotted quad; nothing a resolver would refuse without asking.
 */
const HOST_RE =
  /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function fail(field: string, what: string): never {
  throw new ValidationError(field, `Cannot save settings: ${what}`);
}

function int(field: string, v: unknown, min: number, max: number): void {
  if (!isInt(v, min, max)) {
    fail(field, `${field} ${JSON.stringify(v)} is out of range ${min}..${max}`);
  }
}

function match(field: string, v: unknown, re: RegExp, what: string): void {
  if (typeof v !== "string" || !re.test(v)) {
    fail(field, `${field} ${JSON.stringify(v)} is not ${what}`);
  }
}

function validateCollector(c: SyslogCollector, i: number): void {
  // An IPv6 literal as written (no brackets, no zone): the sink sends over udp6.
  if (typeof c?.host !== "string" || ipFamily(c.host) !== 6) {
    match(`syslog.collectors[${i}].host`, c?.host, HOST_RE, "a host name or address");
  }
  int(`syslog.collectors[${i}].port`, c.port, 1, 65535);
  if (c.format !== "rfc5424" && c.format !== "rfc3164") {
    fail(
      `syslog.collectors[${i}].format`,
      `format ${JSON.stringify(c.format)} is not rfc5424 or rfc3164`,
    );
  }
}

/** Throws a ValidationError unless every field of `s` is well-formed. */
export function validateSettings(s: Settings): void {
  match("wan.interface", s.wan.interface, IFNAME_RE, "an interface name");
  match("wan.address", s.wan.address, CIDR_RE, "an address/prefix");
  if (s.wan.gateway !== null) match("wan.gateway", s.wan.gateway, DOTTED_QUAD_RE, "a dotted quad");
  match("lan.interface", s.lan.interface, IFNAME_RE, "an interface name");
  match("lan.address", s.lan.address, CIDR_RE, "an address/prefix");
  int("idleTimeoutSeconds", s.idleTimeoutSeconds, 10, 7 * 86400);
  if (!Array.isArray(s.syslog?.collectors) || s.syslog.collectors.length > 8) {
    fail("syslog.collectors", "syslog.collectors must list at most 8 collectors");
  }
  s.syslog.collectors.forEach(validateCollector);
  int("knock.sequenceWindowSeconds", s.knock.sequenceWindowSeconds, 1, 300);
  int("knock.failureLimit", s.knock.failureLimit, 1, 1000);
  int("knock.failureWindowSeconds", s.knock.failureWindowSeconds, 1, 86400);
  int("knock.penaltySeconds", s.knock.penaltySeconds, 0, 86400);
  int("limits.maxConnections", s.limits.maxConnections, 16, 1 << 22);
  int("limits.maxUnlocks", s.limits.maxUnlocks, 1, 1 << 20);
  int("limits.maxPendingKnocks", s.limits.maxPendingKnocks, 1, 1 << 20);
}

/** `base` with `patch` merged one level deep. */
export function mergeSettings(base: Settings, patch: SettingsPatch): Settings {
  return structuredClone({
    wan: { ...base.wan, ...patch.wan },
    lan: { ...base.lan, ...patch.lan },
    idleTimeoutSeconds: patch.idleTimeoutSeconds ?? base.idleTimeoutSeconds,
    syslog: patch.syslog ?? base.syslog,
    knock: { ...base.knock, ...patch.knock },
    limits: { ...base.limits, ...patch.limits },
  });
}

/** Repository of the settings document. */
export class SettingsRepo {
  /** Settings in `kv`; changes recorded in `audit`. */
  constructor(
    private readonly kv: StoreKv,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  /** The current settings (the defaults at version 0 if never written). */
  async getSettings(): Promise<SettingsRecord> {
    return (await this.kv.get<SettingsRecord>(KEY)).value ?? this.#defaults();
  }

  /**
   * Merges `patch`, validates and stores the result. With `expectedVersion`,
   * a ConflictError unless the stored version matches.
   */
  async updateSettings(
    patch: SettingsPatch,
    actor: string,
    expectedVersion?: number,
  ): Promise<SettingsRecord> {
    return await withRetry("settings", async () => {
      const entry = await this.kv.get<SettingsRecord>(KEY);
      const before = entry.value ?? this.#defaults();
      if (expectedVersion !== undefined && before.version !== expectedVersion) {
        throw new ConflictError(
          "version",
          `settings are at version ${before.version}, not ${expectedVersion}`,
        );
      }
      const merged = mergeSettings(before, patch);
      validateSettings(merged);
      const after = { ...merged, version: before.version + 1, updatedAt: this.clock.now() };
      const op = this.kv.atomic().check(entry).set(KEY, after);
      this.audit.stage(op, { actor, action: "settings.update", target: "settings", before, after });
      return (await op.commit()).ok ? after : RETRY;
    });
  }

  #defaults(): SettingsRecord {
    return { ...structuredClone(DEFAULT_SETTINGS), version: 0, updatedAt: 0 };
  }
}
