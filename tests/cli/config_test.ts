import assert from "node:assert/strict";
import { main } from "../../src/cli/config.ts";
import { openStore } from "../../src/store/kv_store.ts";

/** Runs `deno task config ARGS` as the README writes it; returns the exit code and output. */
async function task(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "config", ...args],
    cwd: new URL("../../", import.meta.url).pathname,
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("config task: export -> wipe -> import restores the seeded store; import twice refuses", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kgt-cli-config-" });
  try {
    const kv = `${dir}/kg.kv`;
    // An empty store exports defaults; seed one as the appliance's bootstrap would.
    const store = await openStore(kv);
    await store.users.createUser({
      name: "alice",
      password: "a long enough password",
      role: "viewer",
      totpSecret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
      knock: { enabled: true, firstPort: 41001 },
    }, "t");
    store.close();
    const ex = await task("export", "--", "--store", kv, "--out", `${dir}/b.json`);
    assert.equal(ex.code, 0, ex.stderr);
    const doc = JSON.parse(await Deno.readTextFile(`${dir}/b.json`));
    assert.equal(doc.users[0].name, "alice");
    assert.equal((await Deno.stat(`${dir}/b.json`)).mode! & 0o777, 0o600);
    await Deno.rename(`${kv}.key`, `${dir}/old.key`);
    for (const f of [kv, `${kv}-wal`, `${kv}-shm`]) await Deno.remove(f).catch(() => {});
    const noKey = await task("import", `${dir}/b.json`, "--", "--store", kv);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /pass --key FILE/);
    const im = await task(
      "import",
      `${dir}/b.json`,
      "--",
      "--store",
      kv,
      "--key",
      `${dir}/old.key`,
    );
    assert.equal(im.code, 0, im.stderr);
    assert.match(im.stdout, /imported 1 user\(s\), 0 rule\(s\).*re-sealed/);
    const twice = await main(["import", `${dir}/b.json`, "--store", kv, "--key", `${dir}/old.key`]);
    assert.equal(twice, 1);
    assert.equal(await main(["bogus"]), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
