/**
 * What a re-read configuration file (SIGHUP) changes in a running appliance.
 * The file owns the network (WAN, LAN, TUN device, conntrack size, the
 * management listener, the store path): those take a restart. Its admission
 * allow-list and the two knock limits the store has no setting for
 * (`lifetimeSeconds`, `maxPenalised`) are applied live. Users, rules,
 * settings and syslog are the store's; the file's copies only seed an empty
 * store, so a reload reports their drift instead of applying them.
 */
import type { Config } from "./types.ts";

/** The outcome of comparing the running configuration with the re-read one. */
export interface ReloadPlan {
  /** Fields applied without a restart, e.g. `admission.allow`. */
  apply: string[];
  /** Fields whose change needs a restart, e.g. `wan.address`. */
  restart: string[];
}

/** Top-level sections the store owns (compared by `configDrift`, not here). */
const STORE_OWNED = new Set(["users", "forwards", "openPorts", "syslog"]);

/** Knock fields the data plane takes from the file (the rest are store settings). */
const LIVE_KNOCK: Record<string, string> = {
  lifetimeSec: "knock.lifetimeSeconds",
  maxPenalised: "knock.maxPenalised",
};

/**
 * Parsed forms beside the written ones (`addressU32`, `networkCidr`,
 * `addressWords`, `allowPrefixes6`, ...) are not reported.
 */
const DERIVED = /U32$|Cidrs?$|Words$|Prefixes6$/;

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The fields that differ between `running` and `next`. */
export function reloadPlan(running: Config, next: Config): ReloadPlan {
  const plan: ReloadPlan = { apply: [], restart: [] };
  const a = running as unknown as Record<string, Record<string, unknown>>;
  const b = next as unknown as Record<string, Record<string, unknown>>;
  for (const section of Object.keys({ ...a, ...b })) {
    if (STORE_OWNED.has(section) || same(a[section], b[section])) continue;
    if (Array.isArray(a[section]) || Array.isArray(b[section])) {
      plan.restart.push(section); // the uplinks: any change re-plans the routing
      continue;
    }
    if (section === "admission") {
      plan.apply.push("admission.allow");
      continue;
    }
    const keys = Object.keys({ ...a[section], ...b[section] }).filter((k) => !DERIVED.test(k));
    for (const key of keys) {
      if (same(a[section]?.[key], b[section]?.[key])) continue;
      if (section === "knock") {
        if (key in LIVE_KNOCK) plan.apply.push(LIVE_KNOCK[key]);
        continue; // store settings: reported as drift
      }
      plan.restart.push(`${section}.${key}`);
    }
  }
  return plan;
}

/** `running` with the live fields of `next` taken over, in place (the API holds the object). */
export function applyReload(running: Config, next: Config): void {
  running.admission = structuredClone(next.admission);
  running.knock.lifetimeSec = next.knock.lifetimeSec;
  running.knock.maxPenalised = next.knock.maxPenalised;
}
