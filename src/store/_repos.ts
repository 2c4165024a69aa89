/** Wiring every repository over one `StoreKv`, shared by the KV file and etcd backends. */
import { systemClock } from "../clock.ts";
import { AuditLog } from "./audit.ts";
import { KnockStateRepo } from "./knock_state.ts";
import { NodeRepo } from "./nodes.ts";
import type { OpenStoreOptions } from "./kv_store.ts";
import type { Store } from "./mod.ts";
import { RuleRepo } from "./rules.ts";
import type { SecretBox } from "./secret_box.ts";
import { SessionRepo } from "./sessions.ts";
import { SettingsRepo } from "./settings.ts";
import type { StoreKv } from "./store_kv.ts";
import { UnlockRepo } from "./unlocks.ts";
import { UsedCodeRepo } from "./used_codes.ts";
import { UserRepo } from "./users.ts";

/**
 * Every repository over `kv`, sealing secrets with `box`; `backend` supplies
 * what differs between the backends (change feed, health, closing).
 */
export function storeOver(
  kv: StoreKv,
  box: SecretBox,
  options: OpenStoreOptions,
  backend: Pick<Store, "onChange" | "health" | "close" | "ready">,
): Store {
  const clock = options.clock ?? systemClock;
  const audit = new AuditLog(kv, clock);
  return {
    kv,
    audit,
    users: new UserRepo(kv, box, audit, clock, options.network),
    rules: new RuleRepo(kv, audit, clock, options.network),
    settings: new SettingsRepo(kv, audit, clock),
    unlocks: new UnlockRepo(kv, clock),
    knockState: new KnockStateRepo(kv, clock),
    sessions: new SessionRepo(kv, audit, clock),
    usedCodes: new UsedCodeRepo(kv, clock),
    nodes: new NodeRepo(kv, clock),
    ...backend,
  };
}
