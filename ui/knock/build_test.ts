import assert from "node:assert/strict";
import { buildKnockPage, PAGE, scriptHash } from "../../scripts/build_knock_page.ts";
import { KNOCK_PAGE, knockPageScriptHash } from "./mod.ts";

Deno.test("index.html is exactly what scripts/build_knock_page.ts builds from the sources", async () => {
  const built = await buildKnockPage();
  const committed = await Deno.readTextFile(PAGE);
  assert.ok(
    committed === built,
    "ui/knock/index.html is stale: run `deno run -A scripts/build_knock_page.ts` and commit it",
  );
});

Deno.test("index.html is self-contained and its CSP pins its one script", async () => {
  const page = await Deno.readTextFile(PAGE);
  // No external resource: no src/href attribute pointing anywhere, no @import.
  assert.doesNotMatch(page, /\s(src|href)\s*=/i);
  assert.doesNotMatch(page, /@import|url\(/i);
  const scripts = [...page.matchAll(/<script type="module">([\s\S]*?)<\/script>/g)];
  assert.equal(scripts.length, 1);
  assert.equal((page.match(/<script/g) ?? []).length, 1);
  const hash = await scriptHash(scripts[0][1]);
  assert.ok(page.includes(`script-src ${hash};`), `CSP should hold ${hash}`);
  assert.equal(await knockPageScriptHash(), hash);
  assert.equal(KNOCK_PAGE.href, PAGE.href);
  // The sequence math is bundled from src/knock, not rewritten.
  assert.match(page, /\/\/ src\/knock\/sequence\.ts/);
  assert.match(page, /\/\/ src\/knock\/base32\.ts/);
});
