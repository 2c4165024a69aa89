/**
 * Drift between the configuration file and the store. The file seeds an
 * empty store with users, rules and settings; afterwards the store owns them
 * and the file's copies are not applied. `configDrift` names every place
 * where they disagree, so an operator who edited the file learns that the
 * edit did nothing and how to make it take effect.
 */
import type { Config, SeedUser } from "../config/types.ts";
import type { OpenPortsRule, PortForwardRule, PortRange } from "../nat/rule.ts";
import type { Store } from "../store/mod.ts";
import type { RuleRecord } from "../store/rules.ts";
import type { Settings } from "../store/settings.ts";
import { seedSettings } from "./bootstrap.ts";

/** What the operator can do about a difference. */
const ADVICE = "the store's is in force — export/import to change it";

function ports(r: PortRange): string {
  return r.start === r.end ? String(r.start) : `${r.start}-${r.end}`;
}

/** One comparable value per field, as the operator writes it. */
function show(v: unknown): string {
  if (v !== null && typeof v === "object" && "start" in v && "end" in v) {
    return ports(v as PortRange);
  }
  if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
  if (v !== null && typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** `field fileValue vs storeValue` for every field of `file` whose value differs in `store`. */
function fieldDiffs(file: object, store: object, prefix = ""): string[] {
  const out: string[] = [];
  const s = store as Record<string, unknown>;
  for (const [key, value] of Object.entries(file)) {
    const a = show(value);
    const b = show(s[key]);
    if (a !== b) out.push(`${prefix}${key} ${a} vs ${b}`);
  }
  return out;
}

function openPortsView(r: OpenPortsRule): object {
  return {
    uplink: r.uplink ?? "all",
    wanAddress: r.wanAddress ?? "all",
    enabled: r.enabled,
    privateAddress: r.privateAddress,
    ports: r.ports.map((p) => `${p.protocol}/${ports(p.ports)}`),
    enforceKnock: r.enforceKnock,
    users: r.users,
  };
}

function forwardView(r: PortForwardRule): object {
  const { name: _, ...rest } = r;
  return { ...rest, uplink: r.uplink ?? "all", wanAddress: r.wanAddress ?? "all" };
}

function ruleDiffs(config: Config, file: string, stored: readonly RuleRecord[]): string[] {
  const out: string[] = [];
  const byName = new Map(stored.map((r) => [r.rule.name, r]));
  const inFile = new Set<string>();
  const check = (kind: "forward" | "open", label: string, name: string, view: object) => {
    inFile.add(name);
    const r = byName.get(name);
    if (r === undefined) {
      out.push(`config: ${label} "${name}" in ${file} is not in the store; ${ADVICE}`);
      return;
    }
    if (r.kind !== kind) {
      out.push(`config: ${label} "${name}" in ${file} is a ${r.kind} rule in the store; ${ADVICE}`);
      return;
    }
    const theirs = r.kind === "forward" ? forwardView(r.rule) : openPortsView(r.rule);
    const diffs = fieldDiffs(view, theirs);
    if (diffs.length > 0) {
      out.push(
        `config: ${label} "${name}" in ${file} differs from the store (${
          diffs.join(", ")
        }); ${ADVICE}`,
      );
    }
  };
  for (const f of config.forwards) check("forward", "forward", f.name, forwardView(f));
  for (const o of config.openPorts) check("open", "openPorts", o.name, openPortsView(o));
  for (const r of stored) {
    if (inFile.has(r.rule.name)) continue;
    const label = r.kind === "forward" ? "forward" : "openPorts";
    out.push(`config: ${label} "${r.rule.name}" in the store is not in ${file}; ${ADVICE}`);
  }
  return out;
}

async function userDiffs(
  store: Store,
  file: string,
  seeds: readonly SeedUser[],
): Promise<string[]> {
  const out: string[] = [];
  for (const seed of seeds) {
    const u = await store.users.findUser(seed.name);
    if (u === null) {
      out.push(`config: user "${seed.name}" in ${file} is not in the store; ${ADVICE}`);
      continue;
    }
    const mine = {
      knock: "enabled",
      firstPort: seed.firstPort,
      length: seed.length,
      transport: seed.transport,
    };
    const theirs = {
      knock: u.knock.enabled ? "enabled" : "disabled",
      firstPort: u.knock.firstPort,
      length: u.knock.length,
      transport: u.knock.transport,
    };
    const diffs = fieldDiffs(mine, theirs);
    // The secret itself is never printed.
    const secret = await store.users.getMfaSecrets(seed.name).then((m) => m.secret, () => null);
    if (secret !== seed.secret) diffs.push("secret differs");
    if (diffs.length > 0) {
      out.push(
        `config: user "${seed.name}" in ${file} differs from the store (${
          diffs.join(", ")
        }); ${ADVICE}`,
      );
    }
  }
  return out;
}

/** The settings the file implies against the store's, field by field. */
function settingsDiffs(config: Config, file: string, s: Settings): string[] {
  const seed = seedSettings(config);
  const diffs = [
    ...fieldDiffs({ idleTimeoutSeconds: seed.idleTimeoutSeconds }, s),
    ...fieldDiffs(seed.knock ?? {}, s.knock, "knock."),
    ...fieldDiffs(seed.limits ?? {}, s.limits, "limits."),
  ];
  const want = (seed.syslog?.collectors ?? []).map((c) => `${c.host}:${c.port}/${c.format}`);
  const have = s.syslog.collectors.map((c) => `${c.host}:${c.port}/${c.format}`);
  if (show(want) !== show(have)) diffs.push(`syslog ${show(want)} vs ${show(have)}`);
  return diffs.length === 0
    ? []
    : [`config: settings in ${file} differ from the store (${diffs.join(", ")}); ${ADVICE}`];
}

/**
 * Every difference between the file's users, rules and settings (named
 * `file` in the messages) and the store's, one line each, e.g.
 * `config: forward "web" in config/appliance.jsonc differs from the store
 * (publicPorts 52201 vs 52202); the store's is in force — export/import to
 * change it`. Users only the store has (the administrator, users made
 * through the API) are the store's own and not reported.
 */
export async function configDrift(store: Store, config: Config, file: string): Promise<string[]> {
  return [
    ...ruleDiffs(config, file, await store.rules.listRules()),
    ...await userDiffs(store, file, config.users),
    ...settingsDiffs(config, file, await store.settings.getSettings()),
  ];
}
