/**
 * Test helpers: a store on a real KV file in a temp dir, removed afterwards;
 * or, when `KG_TEST_ETCD` names etcd client URLs (comma-separated; set by
 * `etcd_repos_test.ts`), a store on that cluster under a fresh key prefix.
 */
import { ManualClock } from "../clock.ts";
import { randomHex } from "./_ids.ts";
import { openEtcdStore } from "./etcd_store.ts";
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
  await Deno.mkdir(`${dir}/data`);
  const clock = new ManualClock(T0);
  const etcd = Deno.env.get("KG_TEST_ETCD");
  const store = etcd === undefined
    ? await openStore(path, { clock, ...options })
    : await openEtcdStore(
      { backend: "etcd", path, endpoints: etcd.split(","), prefix: `/kgt-${randomHex(6)}/` },
      { clock, ...options },
    );
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
