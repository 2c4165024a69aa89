/** Test helpers: a store on a real KV file in a temp dir, removed afterwards. */
import { ManualClock } from "../clock.ts";
import { openStore, type OpenStoreOptions } from "./kv_store.ts";
import type { Store } from "./mod.ts";
import type { StoreKv } from "./store_kv.ts";

/** A fixed start time for tests: 2026-01-01T00:00:00Z. */
export const T0 = Date.UTC(2026, 0, 1);

/** Runs `fn` with a fresh store in a temp dir; closes and deletes it after. */
export async function withStore(
  fn: (store: Store, ctx: { dir: string; path: string; clock: ManualClock }) => Promise<void>,
  options: OpenStoreOptions = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-store-" });
  const path = `${dir}/data/store.kv`;
  const clock = new ManualClock(T0);
  const store = await openStore(path, { clock, ...options });
  try {
    await fn(store, { dir, path, clock });
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every raw value in the KV file, serialized, for "is this stored in clear?" scans. */
export async function dumpKv(kv: StoreKv): Promise<string> {
  const parts: string[] = [];
  for await (const e of kv.list({ prefix: [] })) parts.push(JSON.stringify([e.key, e.value]));
  return parts.join("\n");
}
