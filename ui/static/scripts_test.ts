import assert from "node:assert/strict";

Deno.test("static: one browser script, and it type-checks (// @ts-check, DOM library)", async () => {
  const dir = new URL("./", import.meta.url);
  const files = [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && e.name.endsWith(".js"))
    .map((e) => new URL(e.name, dir).pathname)
    .sort();
  // One renderer: the server renders every row; the browser only moves HTML.
  assert.deepEqual(files.map((f) => f.split("/").pop()), ["kg.js"]);
  for (const f of files) {
    const text = await Deno.readTextFile(f);
    assert.ok(text.startsWith("// @ts-check\n"), `${f} does not start with // @ts-check`);
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", ...files],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
});
