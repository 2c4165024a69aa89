import assert from "node:assert/strict";
import { escapeControl, hasControl } from "./escape.ts";

Deno.test("escapeControl writes C0, DEL, C1, line separators and bidi controls as escapes", () => {
  assert.equal(escapeControl("admin"), "admin");
  assert.equal(escapeControl("a\nb\rc\0d\x1b[2J\x7f"), "a\\x0ab\\x0dc\\x00d\\x1b[2J\\x7f");
  assert.equal(escapeControl("csi\x9b31m"), "csi\\x9b31m");
  assert.equal(escapeControl("x\u2028y\u202ez\u2066"), "x\\u2028y\\u202ez\\u2066");
  // A backslash is doubled, so an escape typed by the user cannot pass for one of ours.
  assert.equal(escapeControl("a\\x0ab"), "a\\\\x0ab");
  assert.equal(escapeControl("héllo wörld ✓"), "héllo wörld ✓");
  assert.ok(hasControl("a\u0000"));
  assert.ok(!hasControl("a\\b"));
  assert.ok(!hasControl(escapeControl("\u0001\u0085\u2029")));
});
