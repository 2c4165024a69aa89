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
