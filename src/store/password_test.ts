import assert from "node:assert/strict";
import { hashPassword, verifyPassword } from "./password.ts";

Deno.test("hashPassword encodes scrypt$N$r$p$salt$hash and verifies", async () => {
  const h = await hashPassword("correct horse");
  const parts = h.split("$");
  assert.equal(parts.length, 6);
  assert.deepEqual(parts.slice(0, 4), ["scrypt", "16384", "8", "1"]);
  assert.equal(atob(parts[4]).length, 16);
  assert.equal(atob(parts[5]).length, 64);
  assert.equal(await verifyPassword("correct horse", h), true);
  assert.equal(await verifyPassword("correct horsE", h), false);
});

Deno.test("hashPassword salts: same password, different hashes", async () => {
  assert.notEqual(await hashPassword("same-password"), await hashPassword("same-password"));
});

Deno.test("verifyPassword rejects malformed encodings", async () => {
  for (const bad of ["", "scrypt$1$2", "bcrypt$16384$8$1$AAAA$AAAA", "scrypt$16384$8$1$!!$AAAA"]) {
    assert.equal(await verifyPassword("x", bad), false, bad);
  }
});
