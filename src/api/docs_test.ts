import assert from "node:assert/strict";
import { findSwaggerUiDir } from "./docs.ts";
import { withApi } from "./_test_util.ts";

Deno.test("docs: swagger-ui-dist is found on disk", () => {
  const dir = findSwaggerUiDir();
  assert.ok(dir !== null);
  assert.ok(Deno.statSync(`${dir}/swagger-ui-bundle.js`).size > 100_000);
});

Deno.test("docs: the page and its assets load from disk, without sign-in", async () => {
  await withApi(async ({ anon }) => {
    const redirect = await anon.request("GET", "/api/docs");
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get("location"), "/api/docs/");
    const page = await anon.request("GET", "/api/docs/");
    assert.equal(page.status, 200);
    const html = await page.text();
    for (
      const src of [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "init.js",
      ]
    ) {
      assert.ok(html.includes(`"${src}"`), src);
    }
    assert.ok(
      !/https?:\/\//.test(html.replace(/http:\/\/www\.w3\.org[^"]*/g, "")),
      "no remote URLs",
    );
    assert.match(page.headers.get("content-security-policy")!, /script-src|default-src 'self'/);
    assert.ok(!/script-src[^;]*unsafe-inline/.test(page.headers.get("content-security-policy")!));
    const types: Record<string, RegExp> = {
      "swagger-ui.css": /^text\/css/,
      "swagger-ui-bundle.js": /^text\/javascript/,
      "swagger-ui-standalone-preset.js": /^text\/javascript/,
      "init.js": /^text\/javascript/,
      "favicon-32x32.png": /^image\/png/,
    };
    for (const [file, type] of Object.entries(types)) {
      const res = await anon.request("GET", `/api/docs/${file}`);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get("content-type")!, type);
      assert.ok((await res.arrayBuffer()).byteLength > 100, file);
    }
    const init = await (await anon.request("GET", "/api/docs/init.js")).text();
    assert.match(init, /\/api\/v1\/openapi\.json/);
    assert.equal((await anon.json("GET", "/api/docs/../deno.json")).status, 404);
    assert.equal((await anon.json("GET", "/api/docs/index.js")).status, 404);
  });
});

Deno.test("docs: without the package the page still answers and assets are 404", async () => {
  await withApi(async ({ anon }) => {
    assert.equal((await anon.request("GET", "/api/docs/swagger-ui.css")).status, 404);
  }, { swaggerUiDir: null });
});
