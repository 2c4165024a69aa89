import assert from "node:assert/strict";
import { base32Decode } from "./base32.ts";
import { loadVectors } from "./_vectors.ts";
import { generateSecret, otpauthUri, timingSafeEqual, totpCode, verifyTotp } from "./totp.ts";

// RFC 6238 appendix B, SHA1 rows (8 digits there; the last 6 are ours).
const RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
const RFC_ROWS: [number, string][] = [
  [59, "94287082"],
  [1111111109, "07081804"],
  [1111111111, "14050471"],
  [1234567890, "89005924"],
  [2000000000, "69279037"],
  [20000000000, "65353130"],
];

Deno.test("totpCode reproduces RFC 6238 appendix B (SHA1, last 6 digits)", () => {
  for (const [t, code] of RFC_ROWS) assert.equal(totpCode(RFC_SECRET, t), code.slice(2));
});

Deno.test("totpCode reproduces every knock vector", async () => {
  for (const v of await loadVectors()) assert.equal(totpCode(v.secret, v.unixTime), v.totp);
});

Deno.test("verifyTotp accepts drift within the window and reports it", () => {
  const t = 1_700_000_000;
  assert.equal(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, t), t), 0);
  assert.equal(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, t - 30), t), -1);
  assert.equal(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, t + 30), t), 1);
  assert.equal(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, t + 60), t), null);
  assert.equal(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, t - 60), t), null);
  assert.equal(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, t + 60), t, 2), 2);
  assert.equal(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, t), t, 0), 0);
  assert.equal(verifyTotp(RFC_SECRET, "12345", t), null);
  assert.equal(verifyTotp(RFC_SECRET, "", t), null);
});

Deno.test("timingSafeEqual compares whole strings", () => {
  assert.equal(timingSafeEqual("123456", "123456"), true);
  assert.equal(timingSafeEqual("123456", "123457"), false);
  assert.equal(timingSafeEqual("123456", "12345"), false);
  assert.equal(timingSafeEqual("", ""), true);
  assert.equal(timingSafeEqual("", "0"), false);
});

Deno.test("generateSecret gives 160 bits by default and refuses fewer", () => {
  const s = generateSecret();
  assert.match(s, /^[A-Z2-7]{32}$/);
  assert.equal(base32Decode(s).length, 20);
  assert.equal(base32Decode(generateSecret(32)).length, 32);
  assert.notEqual(generateSecret(), s);
  assert.throws(() => generateSecret(10), /at least 20/);
});

Deno.test("otpauthUri is what an authenticator app scans", () => {
  const uri = new URL(otpauthUri({ issuer: "Knockgate", account: "alice", secret: RFC_SECRET }));
  assert.equal(uri.protocol, "otpauth:");
  assert.equal(uri.host, "totp");
  assert.equal(decodeURIComponent(uri.pathname), "/Knockgate:alice");
  assert.equal(uri.searchParams.get("secret"), RFC_SECRET);
  assert.equal(uri.searchParams.get("issuer"), "Knockgate");
  assert.equal(uri.searchParams.get("algorithm"), "SHA1");
  assert.equal(uri.searchParams.get("digits"), "6");
  assert.equal(uri.searchParams.get("period"), "30");
});
