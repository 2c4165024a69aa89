/**
 * The repositories' own test cases, run again on a real 3-member etcd
 * cluster: `withStore` opens an etcd store when `KG_TEST_ETCD` is set, so
 * every case that goes through it exercises `EtcdKv` unchanged. Cases that
 * open KV files by path (file modes, reopening a file) stay KV-only.
 */
import assert from "node:assert/strict";
import { etcdInstalled, withEtcdCluster } from "./_etcd_cluster.ts";

const FILES = [
  "audit_test.ts",
  "config_validation_test.ts",
  "knock_state_test.ts",
  "knock_state6_test.ts",
  "rules_test.ts",
  "sessions_test.ts",
  "settings_test.ts",
  "unlocks_test.ts",
  "users_test.ts",
];

Deno.test({
  name: "etcd: the repositories' test cases pass on a 3-member etcd cluster",
  ignore: !etcdInstalled(),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    const dir = new URL(".", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-all", "--no-check", ...FILES.map((f) => `${dir}${f}`)],
      env: { KG_TEST_ETCD: cluster.endpoints.join(","), NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(240_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const summary = text.match(/(ok|FAILED) \| (\d+) passed.*\| (\d+) failed.*/)?.[0] ?? "";
    console.log(`repository cases on etcd: ${summary}`);
    assert.ok(out.success && /\| 0 failed/.test(summary), text.slice(-6000));
  });
});
