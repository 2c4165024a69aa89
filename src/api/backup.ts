/**
 * `deno task config export|import` on the store a configuration names: the
 * file gives the store path and the addressing rules and users are checked
 * against. Stop the appliance before an import; an export may run beside it.
 */
import { defaultConfig, loadConfig } from "../config/mod.ts";
import type { NetworkLayout } from "../nat/rule_validate.ts";
import {
  type Backup,
  exportBackup,
  importBackup,
  type ImportResult,
  loadKey,
  openStore,
  type Store,
} from "../store/mod.ts";
import { networkLayout } from "./bootstrap.ts";

/** Where the store is: `--config` (embedded defaults without) and `--store` overriding its path. */
export interface StoreLocation {
  config?: string;
  store?: string;
}

async function withStore<T>(
  at: StoreLocation,
  fn: (s: Store, network: NetworkLayout) => Promise<T>,
): Promise<T> {
  const config = at.config ? loadConfig(at.config) : defaultConfig();
  const network = networkLayout(config);
  const store = await openStore(at.store ?? config.store, { network });
  try {
    return await fn(store, network);
  } finally {
    store.close();
  }
}

/** The backup document of the store at `at`. */
export function exportStore(at: StoreLocation): Promise<Backup> {
  return withStore(at, (store) => exportBackup(store));
}

/**
 * Imports `doc` into the store at `at`; `key` is the key file the backup was
 * sealed with when the store has another one.
 */
export function importStore(
  at: StoreLocation,
  doc: unknown,
  opts: { key?: string; replace?: boolean } = {},
): Promise<ImportResult> {
  return withStore(at, async (store, network) => {
    const key = opts.key === undefined ? undefined : await loadKey(opts.key);
    return await importBackup(store, doc, { key, replace: opts.replace, network });
  });
}
