import assert from "node:assert/strict";

const root = new URL("../", import.meta.url).pathname;

async function start(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}mod.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("a bad configuration file refuses to start, naming the line and field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = (await Deno.readTextFile(`${root}config/appliance.jsonc`))
      .replace('"publicPorts": "52201"', '"publicPorts": "70000"');
    await Deno.writeTextFile(`${dir}/bad.jsonc`, text);
    const line = text.split("\n").findIndex((l) => l.includes('"70000"')) + 1;
    const r = await start(["--config", `${dir}/bad.jsonc`]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`bad\\.jsonc:${line}: forwards\\[0\\]\\.publicPorts: .*70000`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unknown options are a usage error; --help prints usage", async () => {
  const r = await start(["--bogus"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Usage:/);
  const h = await start(["--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--config FILE/);
});

Deno.test("management listens on the LAN and on every address of the management uplinks", async () => {
  const { managementAddresses } = await import("./main.ts");
  const { parseConfig } = await import("./config/mod.ts");
  const text = (await Deno.readTextFile(`${root}config/appliance.jsonc`)).replace(
    /"wan": \[[^\n]*\],/,
    `"wan": [
      { "name": "isp-a", "interface": "wan0", "addresses": ["198.51.100.1/26", "198.51.100.2/26"],
        "gateway": "198.51.100.62" },
      { "name": "isp-b", "interface": "wan1", "addresses": ["198.51.100.65/26"],
        "gateway": "198.51.100.126" }],`,
  );
  const config = parseConfig(text);
  assert.equal(config.wan.length, 2);
  config.management.wanAccess = "knock";
  config.management.uplinks = ["isp-a"];
  assert.deepEqual(managementAddresses(config), ["192.0.2.1", "198.51.100.1", "198.51.100.2"]);
  config.management.uplinks = ["isp-a", "isp-b"];
  assert.deepEqual(managementAddresses(config), [
    "192.0.2.1",
    "198.51.100.1",
    "198.51.100.2",
    "198.51.100.65",
  ]);
  config.management.wanAccess = "never";
  assert.deepEqual(managementAddresses(config), ["192.0.2.1"]);
});
