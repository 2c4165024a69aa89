/**
 * Backup and restore of what the store owns: users, rules and settings, as
 * one JSON document with a format version. Password hashes stay hashes and
 * TOTP secrets stay sealed (AES-GCM ciphertext plus the id of the key that
 * sealed them), so a backup is no more sensitive than the KV file, and an
 * import needs that key: the store's own, or the old key file passed along.
 *
 * Not included: sessions and API tokens (credentials with an expiry, made
 * again by signing in), the unlock table, the knock verifier's state, the
 * audit log.
 */
import { type NetworkLayout, validateConfig } from "../nat/rule_validate.ts";
import { candidateOf } from "./_candidate.ts";
import type { Store } from "./mod.ts";
import type { RuleInput, RuleRecord } from "./rules.ts";
import type { SecretBox } from "./secret_box.ts";
import { DEFAULT_SETTINGS, mergeSettings, type Settings, validateSettings } from "./settings.ts";
import { StoreError, ValidationError } from "./errors.ts";
import { type UserRecord, userRecordProblems } from "./users.ts";

/** The `format` of a backup document. */
export const BACKUP_FORMAT = "knockgate-config";

/** The version this release writes and reads. */
export const BACKUP_VERSION = 1;

/** A user as backed up: everything but the bookkeeping, secrets sealed. */
export type BackupUser = Omit<UserRecord, "updatedAt" | "version">;

/** The backup document. */
export interface Backup {
  format: typeof BACKUP_FORMAT;
  version: number;
  /** ISO 8601. */
  exportedAt: string;
  /** The key that sealed `users[].mfa` (see `SecretBox.keyId`). */
  keyId: string;
  users: BackupUser[];
  rules: RuleInput[];
  settings: Settings;
}

/** One thing wrong with a backup, at its path in the document. */
export interface BackupProblem {
  /** e.g. `users[1].knock.firstPort`, `rules[0].publicPorts`, `settings.knock.failureLimit`. */
  path: string;
  message: string;
}

/** A backup that cannot be imported; `problems` lists every reason at once. */
export class BackupError extends StoreError {
  /** An error listing `problems`, one per line. */
  constructor(readonly problems: BackupProblem[]) {
    super(problems.map((p) => `${p.path === "" ? "" : `${p.path}: `}${p.message}`).join("\n"));
  }
}

/** The store's users, rules and settings as a backup document. */
export async function exportBackup(store: Store, now = new Date()): Promise<Backup> {
  const users = (await store.users.listUsers()).map(
    ({ updatedAt: _u, version: _v, ...u }): BackupUser => u,
  );
  const rules = (await store.rules.listRules()).map(
    (r): RuleInput => structuredClone({ kind: r.kind, rule: r.rule }) as RuleInput,
  );
  const { version: _v, updatedAt: _u, ...settings } = await store.settings.getSettings();
  return {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    exportedAt: now.toISOString(),
    keyId: store.users.keyId,
    users,
    rules,
    settings,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The settings of a backup with every field checked (validateSettings stops at the first). */
function settingsProblems(s: unknown): BackupProblem[] {
  if (!isObject(s)) return [{ path: "settings", message: "must be an object" }];
  try {
    validateSettings(mergeSettings(DEFAULT_SETTINGS, s));
    return [];
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return [{ path: `settings.${e.field}`, message: e.message }];
  }
}

/**
 * Every problem of `doc` as a backup, all at once: the format and version,
 * each user's fields (the store's validators), each rule and the whole set of
 * rules and users under `network` (the store's `validateConfig`, as every
 * write runs it), and the settings.
 */
export function validateBackup(doc: unknown, network?: NetworkLayout): BackupProblem[] {
  if (!isObject(doc)) return [{ path: "", message: "a backup is a JSON object" }];
  if (doc.format !== BACKUP_FORMAT) {
    return [{ path: "format", message: `is not ${JSON.stringify(BACKUP_FORMAT)}` }];
  }
  if (doc.version !== BACKUP_VERSION) {
    return [{
      path: "version",
      message: `${JSON.stringify(doc.version)} is not ${BACKUP_VERSION} (this release's format)`,
    }];
  }
  const out: BackupProblem[] = [];
  if (typeof doc.keyId !== "string") out.push({ path: "keyId", message: "is missing" });
  if (!Array.isArray(doc.users)) out.push({ path: "users", message: "must be a list" });
  if (!Array.isArray(doc.rules)) out.push({ path: "rules", message: "must be a list" });
  out.push(...settingsProblems(doc.settings));
  if (out.length > 0) return out;
  const users = doc.users as UserRecord[];
  const rules = doc.rules as RuleInput[];
  const names = new Set<string>();
  users.forEach((u, i) => {
    if (!isObject(u)) {
      out.push({ path: `users[${i}]`, message: "must be an object" });
      return;
    }
    for (const e of userRecordProblems(u)) {
      out.push({ path: `users[${i}].${e.field}`, message: e.message });
    }
    if (names.has(u.name)) {
      out.push({ path: `users[${i}].name`, message: `user "${u.name}" is listed twice` });
    }
    names.add(u.name);
  });
  rules.forEach((r, i) => {
    if (!isObject(r) || (r.kind !== "forward" && r.kind !== "open") || !isObject(r.rule)) {
      out.push({
        path: `rules[${i}]`,
        message: 'must be { "kind": "forward"|"open", "rule": ... }',
      });
    }
  });
  if (out.length > 0) return out;
  // The store's whole-set validation, mapped back to the backup's lists.
  const ruleIndex = (list: string, index: number) => {
    const kind = list === "forwards" ? "forward" : "open";
    return rules.map((r, i) => [r, i] as const).filter(([r]) => r.kind === kind)[index][1];
  };
  const candidate = candidateOf(rules as RuleRecord[], users, network);
  for (const p of validateConfig(candidate)) {
    if (p.mirror) continue;
    const path = p.subject.kind === "rule"
      ? `rules[${ruleIndex(p.subject.list, p.subject.index)}].${p.field}`
      : p.subject.kind === "user"
      ? `users[${p.subject.index}].${p.field}`
      : p.field;
    out.push({ path, message: p.message });
  }
  return out;
}

/** Options of `importBackup`. */
export interface ImportOptions {
  /** Delete the store's users and rules first; without it the store must have none. */
  replace?: boolean;
  /** The key the backup was sealed with, when it is not the store's own. */
  key?: SecretBox;
  /** The audit log's actor; default `import`. */
  actor?: string;
  /** The addressing rules and users are checked against (the configuration's). */
  network?: NetworkLayout;
}

/** What an import wrote. */
export interface ImportResult {
  users: number;
  rules: number;
  /** Secrets were re-sealed from `key` to the store's key. */
  resealed: boolean;
}

/**
 * Restores `doc` into `store`: validated first (BackupError listing every
 * problem), then, with `replace`, the store's rules and users deleted, then
 * users, rules and settings written through the repositories.
 */
export async function importBackup(
  store: Store,
  doc: unknown,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const problems = validateBackup(doc, options.network);
  if (problems.length > 0) throw new BackupError(problems);
  const backup = doc as Backup;
  const actor = options.actor ?? "import";
  const from = keyFor(store, backup, options.key);
  const existingUsers = await store.users.listUsers();
  const existingRules = await store.rules.listRules();
  if (!options.replace && (existingUsers.length > 0 || existingRules.length > 0)) {
    throw new BackupError([{
      path: "",
      message: `the store has ${existingUsers.length} user(s) and ${existingRules.length} ` +
        "rule(s); import into an empty store or pass --replace",
    }]);
  }
  for (const r of existingRules) await store.rules.deleteRule(r.rule.name, actor);
  for (const u of existingUsers) await store.users.deleteUser(u.name, actor);
  for (const u of backup.users) {
    await store.users.restoreUser({ ...u, updatedAt: 0, version: 1 }, actor, from);
  }
  for (const r of backup.rules) await store.rules.createRule(r, actor);
  await store.settings.updateSettings(backup.settings, actor);
  return { users: backup.users.length, rules: backup.rules.length, resealed: from !== undefined };
}

/** The box to open the backup's secrets with (undefined: the store's own key). */
function keyFor(store: Store, backup: Backup, key?: SecretBox): SecretBox | undefined {
  if (backup.keyId === store.users.keyId) return undefined;
  if (key?.keyId === backup.keyId) return key;
  const given = key === undefined ? "" : `; the key given is ${key.keyId}`;
  throw new BackupError([{
    path: "keyId",
    message: `the secrets are sealed with key ${backup.keyId}, this store's key is ` +
      `${store.users.keyId}${given}: pass --key FILE, the key file of the store the backup ` +
      "was made from",
  }]);
}
