/**
 * Lab helper: the lab configuration with its store on a real etcd cluster;
 * the relays that let a lab's appliance reach the members are
 * `scripts/lab/etcd_relay.ts`'s.
 */
import assert from "node:assert/strict";
import { writeTestConfig } from "./_helpers.ts";

export { EtcdRelays } from "../../scripts/lab/etcd_relay.ts";

/** The lab configuration (`writeTestConfig`) with its store on `endpoints` under `prefix`. */
export async function etcdLabConfig(endpoints: string[], prefix: string): Promise<string> {
  const file = await writeTestConfig();
  const text = await Deno.readTextFile(file);
  const out = text.replace(
    /"store":\s*\{\s*"path":\s*("[^"]*")\s*\}/,
    (_m, path) =>
      `"store": { "backend": "etcd", "endpoints": ${JSON.stringify(endpoints)}, ` +
      `"prefix": ${JSON.stringify(prefix)}, "path": ${path} }`,
  );
  assert.notEqual(out, text, "config/appliance.jsonc has no store section of the expected form");
  await Deno.writeTextFile(file, out);
  return file;
}
