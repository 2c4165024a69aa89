/**
 * The store layer: users, rules, settings, unlock snapshot, knock verifier
 * state, audit log and sessions on Deno KV. `openStore` returns the `Store` facade.
 */
import type { AuditLog } from "./audit.ts";
import type { KnockStateRepo } from "./knock_state.ts";
import type { RuleRepo } from "./rules.ts";
import type { SessionRepo } from "./sessions.ts";
import type { SettingsRepo } from "./settings.ts";
import type { UnlockRepo } from "./unlocks.ts";
import type { UsedCodeRepo } from "./used_codes.ts";
import type { UserRepo } from "./users.ts";

/** Every repository over one open KV file. */
export interface Store {
  /** The underlying KV handle (for diagnostics; write through the repositories). */
  kv: Deno.Kv;
  users: UserRepo;
  rules: RuleRepo;
  settings: SettingsRepo;
  unlocks: UnlockRepo;
  /** The knock verifier's replay memory, failures and penalties. */
  knockState: KnockStateRepo;
  audit: AuditLog;
  sessions: SessionRepo;
  /** Sign-in TOTP steps already used (a code is accepted once, across restarts). */
  usedCodes: UsedCodeRepo;
  /** Closes the KV file; the store is unusable afterwards. */
  close(): void;
}

export * from "./audit.ts";
export * from "./backup.ts";
export * from "./errors.ts";
export * from "./knock_state.ts";
export * from "./kv_store.ts";
export * from "./password.ts";
export * from "./rules.ts";
export * from "./schema.ts";
export * from "./secret_box.ts";
export * from "./sessions.ts";
export * from "./settings.ts";
export * from "./unlocks.ts";
export * from "./used_codes.ts";
export * from "./users.ts";
