import assert from "node:assert/strict";
import { haSocketPath, serveHaNotify, type VrrpState } from "./ha_notify.ts";
import { run } from "./run.ts";

async function post(path: string, url: string, method = "POST") {
  const r = await run([
    "curl",
    "-s",
    "-o",
    "-",
    "-w",
    " %{http_code}",
    "-X",
    method,
    "--unix-socket",
    path,
    url,
  ]);
  return r.stdout;
}

function curlPresent(): boolean {
  try {
    return Deno.statSync("/usr/bin/curl").isFile;
  } catch {
    return false;
  }
}

Deno.test("haSocketPath: beside the store, none for a store in memory", () => {
  assert.equal(haSocketPath("/var/lib/knockgate/kg.kv"), "/var/lib/knockgate/kg.kv.ha/notify.sock");
  assert.equal(haSocketPath(":memory:"), null);
});

Deno.test({
  name: "ha notify: curl posts each state over the socket in a 0700 directory; others refused",
  ignore: !curlPresent(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "knockgate-ha-" });
    const path = haSocketPath(`${dir}/kg.kv`)!;
    // A socket file left by a crashed run is replaced.
    await Deno.mkdir(`${dir}/kg.kv.ha`, { mode: 0o755 });
    await Deno.writeTextFile(path, "");
    const seen: VrrpState[] = [];
    const server = await serveHaNotify(path, (s) => {
      seen.push(s);
      return Promise.resolve(`${s}: 3 flows`);
    });
    try {
      assert.equal((await Deno.stat(`${dir}/kg.kv.ha`)).mode! & 0o777, 0o700);
      assert.equal(await post(path, "http://knockgate/vrrp/master"), "master: 3 flows\n 200");
      assert.equal(await post(path, "http://knockgate/vrrp/fault"), "fault: 3 flows\n 200");
      assert.match(await post(path, "http://knockgate/vrrp/master", "GET"), / 405$/);
      assert.match(await post(path, "http://knockgate/vrrp/leader"), / 404$/);
      assert.deepEqual(seen, ["master", "fault"]);
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("ha notify: a path too long for a Unix socket is refused at start", async () => {
  await assert.rejects(
    serveHaNotify(`/tmp/${"x".repeat(120)}/notify.sock`, () => Promise.resolve("")),
    /longer than a Unix socket path/,
  );
});
