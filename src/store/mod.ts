/**
 * The store layer: users, rules, settings, unlock snapshot, knock verifier
 * state, audit log and sessions, on a Deno KV file (one box) or an etcd
 * cluster (several appliances sharing one state; `etcd_kv.ts`). `openStore`
 * opens a KV file, `openConfiguredStore` the backend a configuration names;
 * both return the `Store` facade.
 */
import type { AuditLog } from "./audit.ts";
import type { KnockStateRepo } from "./knock_state.ts";
import type { NodeRepo } from "./nodes.ts";
import type { RuleRepo } from "./rules.ts";
import type { SessionRepo } from "./sessions.ts";
import type { SettingsRepo } from "./settings.ts";
import type { UnlockRepo } from "./unlocks.ts";
import type { UsedCodeRepo } from "./used_codes.ts";
import type { UserRepo } from "./users.ts";
import type { StoreChange, StoreHealth, StoreKv } from "./store_kv.ts";

/** Every repository over one open store. */
export interface Store {
  /** The underlying KV handle (for diagnostics; write through the repositories). */
  kv: StoreKv;
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
  /** The appliances sharing this store and their heartbeats. */
  nodes: NodeRepo;
  /**
   * Calls `cb` within about a second of every change on any node (etcd: the
   * watch, own writes included); returns the unsubscribe function. The KV
   * backend never calls it: one process is the only writer there.
   */
  onChange(cb: (change: StoreChange) => void): () => void;
  /** The backend's connection state (always connected for the KV file). */
  health(): StoreHealth;
  /**
   * Resolves once the store can be used: at once, except for an etcd store
   * opened while no member answered (`startUnreachable`): then when a member
   * first answers and the key was checked. Rejects when that check refuses
   * this node or the store is closed before.
   */
  ready: Promise<void>;
  /** Closes the KV file or the etcd connection; the store is unusable afterwards. */
  close(): void;
}

export * from "./audit.ts";
export * from "./backup.ts";
export * from "./errors.ts";
export * from "./etcd_kv.ts";
export * from "./etcd_store.ts";
export * from "./knock_state.ts";
export * from "./kv_store.ts";
export * from "./nodes.ts";
export * from "./password.ts";
export * from "./rules.ts";
export * from "./schema.ts";
export * from "./secret_box.ts";
export * from "./sessions.ts";
export * from "./settings.ts";
export * from "./store_kv.ts";
export * from "./unlocks.ts";
export * from "./used_codes.ts";
export * from "./users.ts";
