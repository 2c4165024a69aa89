/**
 * First start: the store is seeded from the configuration file once (users,
 * rules, settings) and an initial administrator is created, whose password
 * and TOTP secret the composition root prints once. Afterwards the store
 * owns all of it: the file's users, rules and settings are not applied
 * again, and `configDrift` names where they differ from the store's.
 */
import type { Config, SeedUser } from "../config/types.ts";
import { ipv6LayoutOf, layoutUplinks, primaryWanAddress } from "../config/uplinks.ts";
import { generateSecret } from "../knock/totp.ts";
import type { Logger } from "../log/logger.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import type { NetworkLayout } from "../nat/rule_validate.ts";
import { ConfigProblemError, ConflictError, NotFoundError, type Store } from "../store/mod.ts";
import type { SettingsPatch } from "../store/settings.ts";
import { enrollment } from "./enrollment.ts";

/** The actor recorded in the audit log for bootstrap writes. */
export const SYSTEM_ACTOR = "system";

/** Name of the initial administrator. */
export const BOOTSTRAP_ADMIN = "admin";

/** The initial administrator's credentials, to be shown once. */
export interface BootstrapAdmin {
  name: string;
  password: string;
  totpSecret: string;
  otpauthUri: string;
}

/**
 * The addressing and management port of `config`, which the store validates
 * every rule and user write against: pass it to `openStore` as `network`.
 */
export function networkLayout(config: Config): NetworkLayout {
  return {
    wanAddress: primaryWanAddress(config),
    uplinks: layoutUplinks(config.wan, config.management.uplinks),
    lanAddress: config.lan.address,
    lanNetwork: config.lan.network,
    managementPort: config.management.port,
    managementWanAccess: config.management.wanAccess,
    ipv6: ipv6LayoutOf(config.ipv6, config.wan),
  };
}

/** A random password: 18 random bytes in base64url (24 characters, 144 bits). */
export function randomPassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

/**
 * Creates the administrator `admin` with a random password and TOTP secret,
 * already enrolled, when no enrolled administrator exists (a fresh store).
 * Returns the credentials, or null when nothing was done. The user is made
 * enrolled in one write whose name check is the store's (an etcd txn on a
 * shared store), so of several nodes bootstrapping an empty store at once
 * exactly one creates it and prints its password; the others find it and
 * return null. A leftover `admin` that never finished enrolling (a crash of
 * a release that made it in two writes) is replaced, checked by its version
 * so that two nodes cannot both replace it.
 */
export async function bootstrapAdmin(
  store: Store,
  logger?: Logger,
): Promise<BootstrapAdmin | null> {
  // Each round either returns or lost a race to another node's write; the re-read settles it.
  for (let round = 0; round < 4; round++) {
    const users = await store.users.listUsers();
    if (users.some((u) => u.role === "administrator" && u.mfa.enrolled)) return null;
    const leftover = users.find((u) => u.name === BOOTSTRAP_ADMIN);
    if (leftover !== undefined) {
      if (leftover.role !== "administrator") {
        throw new Error(
          `Cannot create the initial administrator: user "${BOOTSTRAP_ADMIN}" exists as ` +
            `${leftover.role}; rename or delete it`,
        );
      }
      if (
        !(await wonRace(store.users.deleteUser(BOOTSTRAP_ADMIN, SYSTEM_ACTOR, leftover.version)))
      ) {
        continue;
      }
    }
    const password = randomPassword();
    const totpSecret = generateSecret();
    const made = store.users.createUser({
      name: BOOTSTRAP_ADMIN,
      password,
      role: "administrator",
      totpSecret,
      allowedRules: ["*"],
      enrolled: true,
    }, SYSTEM_ACTOR);
    // A txn that timed out on one member and was sent again can report its own write as a
    // clash (etcd_client.ts): the stored admin is then ours if our password opens it.
    if (
      !(await wonRace(made)) && !(await store.users.verifyUserPassword(BOOTSTRAP_ADMIN, password))
    ) {
      continue;
    }
    logger?.record("config-changed", {
      source: "bootstrap",
      detail: `initial administrator "${BOOTSTRAP_ADMIN}" created`,
    });
    const { otpauthUri } = await enrollment(BOOTSTRAP_ADMIN, totpSecret);
    return { name: BOOTSTRAP_ADMIN, password, totpSecret, otpauthUri };
  }
  throw new Error(
    `Cannot create the initial administrator: user "${BOOTSTRAP_ADMIN}" kept changing under it`,
  );
}

/**
 * True when `write` went through; false when another writer got there first
 * (a taken name, a changed version, a record gone): the caller re-reads.
 */
async function wonRace(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (err) {
    if (err instanceof ConflictError || err instanceof NotFoundError) return false;
    if (err instanceof ConfigProblemError && err.conflict) return false;
    throw err;
  }
}

/**
 * Imports the configuration's seed users into a store without users:
 * knock-only viewers with a random password nobody knows, MFA enrolled with
 * the configured secret, knocking enabled, every rule allowed. Returns how
 * many were imported; a seed another node imported meanwhile is skipped.
 */
export async function importSeedUsers(store: Store, seeds: readonly SeedUser[]): Promise<number> {
  if ((await store.users.listUsers()).length > 0) return 0;
  let made = 0;
  for (const s of seeds) {
    const created = await wonRace(store.users.createUser({
      name: s.name,
      password: randomPassword() + randomPassword(),
      role: "viewer",
      totpSecret: s.secret,
      knock: { enabled: true, firstPort: s.firstPort, length: s.length, transport: s.transport },
      allowedRules: ["*"],
      enrolled: true,
    }, SYSTEM_ACTOR));
    if (created) made++;
  }
  return made;
}

/**
 * Imports the configuration's rules into a store without rules; returns how
 * many. A rule another node imported meanwhile is skipped.
 */
export async function importSeedRules(
  store: Store,
  forwards: readonly PortForwardRule[],
  openPorts: readonly OpenPortsRule[],
): Promise<number> {
  if ((await store.rules.listRules()).length > 0) return 0;
  const rules = [
    ...forwards.map((rule) => ({ kind: "forward" as const, rule: structuredClone(rule) })),
    ...openPorts.map((rule) => ({ kind: "open" as const, rule: structuredClone(rule) })),
  ];
  let made = 0;
  for (const r of rules) if (await wonRace(store.rules.createRule(r, SYSTEM_ACTOR))) made++;
  return made;
}

/**
 * The store settings the configuration implies. Values beyond the store's
 * ranges (which are narrower for a few limits) are clamped to them.
 */
export function seedSettings(config: Config): SettingsPatch {
  const k = config.knock;
  return {
    idleTimeoutSeconds: k.idleTimeoutSec,
    knock: {
      sequenceWindowSeconds: k.windowSec,
      failureLimit: k.maxFailures,
      failureWindowSeconds: k.failureWindowSec,
      penaltySeconds: Math.min(k.penaltySec, 86400),
    },
    limits: {
      maxConnections: Math.min(config.conntrack.maxFlows, 1 << 22),
      maxPendingKnocks: Math.min(k.maxInProgress, 1 << 20),
    },
    syslog: {
      collectors: config.syslog.slice(0, 8).map(({ host, port, format }) => ({
        host,
        port,
        format,
      })),
    },
  };
}

/** Writes `seedSettings(config)` into a store whose settings were never written; true if it did. */
export async function importSeedSettings(store: Store, config: Config): Promise<boolean> {
  if ((await store.settings.getSettings()).version !== 0) return false;
  return await wonRace(store.settings.updateSettings(seedSettings(config), SYSTEM_ACTOR, 0));
}

/**
 * Everything a first start needs, in the right order: seed users, rules and
 * settings (each only into an empty store), then the initial administrator.
 * Returns the administrator's credentials when one was created.
 */
export async function bootstrapStore(
  store: Store,
  config: Config,
  logger?: Logger,
): Promise<BootstrapAdmin | null> {
  await importSeedUsers(store, config.users);
  await importSeedRules(store, config.forwards, config.openPorts);
  await importSeedSettings(store, config);
  return await bootstrapAdmin(store, logger);
}
