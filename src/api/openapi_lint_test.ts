/**
 * The OpenAPI description at /api/v1/openapi.json passes Redocly's
 * `recommended` rules with no error and no warning (`@redocly/cli`, a
 * devDependency in package.json; telemetry and the update check off).
 */
import assert from "node:assert/strict";
import { withApi } from "./_test_util.ts";

const REDOCLY = "@redocly/cli@2.77.0";

/** True when `npx` (Node.js) is on PATH. */
function npxAvailable(): boolean {
  try {
    return new Deno.Command("npx", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "openapi.json passes redocly lint --extends recommended",
  ignore: !npxAvailable(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kgt-openapi-" });
    try {
      await withApi(async ({ anon }) => {
        const r = await anon.json("GET", "/api/v1/openapi.json");
        assert.equal(r.status, 200);
        await Deno.writeTextFile(`${dir}/openapi.json`, JSON.stringify(r.body, null, 2));
      });
      const out = await new Deno.Command("npx", {
        args: [
          "--yes",
          REDOCLY,
          "lint",
          "--extends",
          "recommended",
          "--format",
          "stylish",
          `${dir}/openapi.json`,
        ],
        cwd: new URL("../../", import.meta.url).pathname,
        env: { REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.ok(out.success, text);
      // Problems are "line:col  error|warning  rule  message" lines (stylish format).
      assert.doesNotMatch(text, /^\s*\d+:\d+\s+(error|warning)\s/m, text);
      assert.match(text, /Your API description is valid/, text);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
