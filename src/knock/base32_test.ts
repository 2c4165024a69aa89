import assert from "node:assert/strict";
import { Secret } from "otpauth";
import { base32Decode } from "./base32.ts";

const enc = (s: string) => new TextEncoder().encode(s);
/** otpauth's encoder (unpadded), which the appliance uses to make secrets. */
const base32Encode = (bytes: Uint8Array) => new Secret({ buffer: bytes.slice().buffer }).base32;

Deno.test("base32 decodes the RFC 4648 §10 vectors otpauth encodes", () => {
  const cases: [string, string][] = [
    ["", ""],
    ["f", "MY======"],
    ["fo", "MZXQ===="],
    ["foo", "MZXW6==="],
    ["foob", "MZXW6YQ="],
    ["fooba", "MZXW6YTB"],
    ["foobar", "MZXW6YTBOI======"],
  ];
  for (const [plain, b32] of cases) {
    assert.equal(base32Encode(enc(plain)), b32.replace(/=/g, ""));
    assert.deepEqual(base32Decode(b32), enc(plain));
    assert.deepEqual(base32Decode(b32.replace(/=/g, "")), enc(plain));
    assert.deepEqual(base32Decode(b32.toLowerCase()), enc(plain));
  }
});

Deno.test("base32 decode ignores spaces as apps group secrets", () => {
  assert.deepEqual(base32Decode("mzxw 6ytb oi"), enc("foobar"));
});

Deno.test("base32 decode is strict", () => {
  assert.throws(() => base32Decode("MZXW1"), /"1" is not a base32 character/);
  assert.throws(() => base32Decode("M"), /length 1 is impossible/);
  assert.throws(() => base32Decode("MZX"), /length 3 is impossible/);
  assert.throws(() => base32Decode("MZ======"), /trailing bits are not zero/);
  assert.throws(() => base32Decode("MY==="), /padding/);
  assert.throws(() => base32Decode("MY=============="), /padding/);
  assert.throws(() => base32Decode("MZXW6YTB========"), /padding/);
  assert.throws(() => base32Decode("MY=A===="), /"=" is not a base32 character/);
});

Deno.test("base32 decodes otpauth's encoding of random bytes", () => {
  for (let n = 0; n < 40; n++) {
    const bytes = crypto.getRandomValues(new Uint8Array(n));
    assert.deepEqual(base32Decode(base32Encode(bytes)), bytes);
  }
});
