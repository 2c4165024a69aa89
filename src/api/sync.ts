/**
 * From the store to the data plane: users (with their decrypted secrets),
 * rules and settings in the shapes `DatapathApi` takes. The composition root
 * calls `syncDatapath` at start and from the API's `onChange`.
 */
import type { Config } from "../config/types.ts";
import { datapathUplinks, primaryWanAddress } from "../config/uplinks.ts";
import type { DatapathApi } from "../datapath/control.ts";
import type { DatapathSettings, KnockUser } from "../datapath/messages.ts";
import { validateConfig } from "../nat/rule_validate.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import type { Store } from "../store/mod.ts";
import type { RuleRecord } from "../store/rules.ts";
import { DEFAULT_SETTINGS, type Settings } from "../store/settings.ts";
import type { UserRecord } from "../store/users.ts";
import { networkLayout } from "./bootstrap.ts";

/** Everything the data plane is configured with from the store. */
export interface DatapathState {
  settings: DatapathSettings;
  forwards: PortForwardRule[];
  openPorts: OpenPortsRule[];
  users: KnockUser[];
}

/**
 * A rule user name no user can have (user names are [a-z0-9._-]): a rule
 * listing only it admits nobody, where an empty list would admit everyone.
 */
export const NOBODY = "!nobody";

/** Whether a user's knock takes effect: enabled and MFA enrolled. */
export function knockActive(u: UserRecord): boolean {
  return u.knock.enabled && u.mfa.enrolled;
}

/** The data-plane settings: network layout from the config, tunables from the store. */
export function datapathSettingsFrom(s: Settings, config: Config): DatapathSettings {
  return {
    wanAddress: primaryWanAddress(config),
    uplinks: datapathUplinks(config),
    masquerade: [...config.masquerade.uplinks],
    lanAddress: config.lan.address,
    lanNetwork: config.lan.network,
    managementPort: config.management.port,
    managementWanAccess: config.management.wanAccess,
    // Both families in one list (the data plane splits it by family, as the file's list is).
    allow: [...config.admission.allow, ...config.admission.allow6],
    maxFlows: s.limits.maxConnections,
    maxUnlocks: s.limits.maxUnlocks,
    knock: {
      idleTimeoutSec: s.idleTimeoutSeconds,
      lifetimeSec: config.knock.lifetimeSec,
      windowSec: s.knock.sequenceWindowSeconds,
      maxFailures: s.knock.failureLimit,
      failureWindowSec: s.knock.failureWindowSeconds,
      penaltySec: s.knock.penaltySeconds,
      maxInProgress: s.limits.maxPendingKnocks,
      maxPenalised: config.knock.maxPenalised,
    },
    ipv6: config.ipv6.enabled && config.ipv6.lan !== null
      ? {
        lanAddress: config.ipv6.lan.address,
        lanNetwork: config.ipv6.lan.network,
        unlockPrefix: config.ipv6.unlockPrefix,
        pairFamilies: config.ipv6.pairFamilies,
      }
      : null,
  };
}

function allows(u: UserRecord, rule: string): boolean {
  return u.allowedRules.includes("*") || u.allowedRules.includes(rule);
}

/**
 * The users whose unlocks admit to rule `name` that names `listed`: the
 * rule's own list narrowed by each knock user's `allowedRules`. Empty (any
 * user) only when no restriction applies to any active user.
 */
export function effectiveRuleUsers(
  name: string,
  listed: readonly string[],
  active: readonly UserRecord[],
): string[] {
  const admitted = active.filter((u) =>
    (listed.length === 0 || listed.includes(u.name)) && allows(u, name)
  );
  if (listed.length === 0 && admitted.length === active.length) return [];
  return admitted.length > 0 ? admitted.map((u) => u.name) : [NOBODY];
}

/** Splits stored rules into the data plane's two lists, users narrowed by `active`. */
export function datapathRules(
  rules: readonly RuleRecord[],
  active: readonly UserRecord[],
): { forwards: PortForwardRule[]; openPorts: OpenPortsRule[] } {
  const forwards: PortForwardRule[] = [];
  const openPorts: OpenPortsRule[] = [];
  for (const r of rules) {
    const users = r.rule.enforceKnock
      ? effectiveRuleUsers(r.rule.name, r.rule.users, active)
      : [...r.rule.users];
    if (r.kind === "forward") forwards.push({ ...structuredClone(r.rule), users });
    else openPorts.push({ ...structuredClone(r.rule), users });
  }
  return { forwards, openPorts };
}

/**
 * Thrown by `loadDatapathState` when the stored set has problems (`validateConfig`
 * over every rule and user under the configuration's addressing): it is not
 * pushed to the data plane. The store refuses writes that would make one, so
 * this means a store written by an older release or a changed configuration file.
 */
export class InvalidConfigError extends Error {
  /** An error listing `problems`, one per line. */
  constructor(readonly problems: string[]) {
    super(`Cannot configure the data plane:\n${problems.join("\n")}`);
    this.name = "InvalidConfigError";
  }
}

/** Reads the whole data-plane state from the store; throws InvalidConfigError if it is invalid. */
export async function loadDatapathState(store: Store, config: Config): Promise<DatapathState> {
  const all = await store.users.listUsers();
  const stored = await store.rules.listRules();
  const problems = validateConfig({
    forwards: stored.flatMap((r) => r.kind === "forward" ? [r.rule] : []),
    openPorts: stored.flatMap((r) => r.kind === "open" ? [r.rule] : []),
    users: all.map((u) => ({ name: u.name, ...u.knock })),
    network: networkLayout(config),
  }).filter((p) => !p.mirror && p.code !== "unknown-user"); // a deleted user's rules admit nobody
  if (problems.length > 0) throw new InvalidConfigError(problems.map((p) => p.message));
  const active = all.filter(knockActive);
  const users: KnockUser[] = [];
  for (const u of active) {
    const { secret } = await store.users.getMfaSecrets(u.name);
    const { firstPort, length, transport } = u.knock;
    users.push({ user: u.name, secret, firstPort, length, transport });
  }
  const { forwards, openPorts } = datapathRules(stored, active);
  const settings = datapathSettingsFrom(await store.settings.getSettings(), config);
  return { settings, forwards, openPorts, users };
}

/**
 * The data plane's state before the store was ever read (a node started
 * while no etcd member answered): no rules, no knock users, no masquerade
 * and no allow-list, so nothing crosses; the store's state replaces it once
 * it is read.
 */
export function closedDatapathState(config: Config): DatapathState {
  const settings = datapathSettingsFrom(structuredClone(DEFAULT_SETTINGS), config);
  return {
    settings: { ...settings, masquerade: [], allow: [] },
    forwards: [],
    openPorts: [],
    users: [],
  };
}

/** Serialises syncs per data plane, so a slow earlier sync never overwrites a later one. */
const queues = new WeakMap<DatapathApi, Promise<void>>();

/**
 * Reads users, rules and settings from the store and pushes them into
 * `datapath` (setSettings, setRules, setUsers). Calls are run one after the
 * other per data plane; each reads the store after the previous finished,
 * so the last call always leaves the data plane with the latest state.
 */
export function syncDatapath(store: Store, datapath: DatapathApi, config: Config): Promise<void> {
  const run = async () => {
    const s = await loadDatapathState(store, config);
    datapath.setSettings(s.settings);
    datapath.setRules(s.forwards, s.openPorts);
    datapath.setUsers(s.users);
  };
  const next = (queues.get(datapath) ?? Promise.resolve()).then(run, run);
  queues.set(datapath, next.catch(() => {}));
  return next;
}
