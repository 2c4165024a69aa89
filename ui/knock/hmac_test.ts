import assert from "node:assert/strict";
import { hmacEngines, hmacSign } from "./hmac.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const bytes = (s: string) => new TextEncoder().encode(s);
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

// RFC 2202 (HMAC-SHA1) and RFC 4231 (HMAC-SHA256) test cases 1, 2, 3 and 6 (a key longer than
// the block, which is hashed first).
const CASES: { hash: "SHA-1" | "SHA-256"; key: Uint8Array; msg: Uint8Array; mac: string }[] = [
  {
    hash: "SHA-1",
    key: fill(20, 0x0b),
    msg: bytes("Hi There"),
    mac: "b617318655057264e28bc0b6fb378c8ef146be00",
  },
  {
    hash: "SHA-1",
    key: bytes("Jefe"),
    msg: bytes("what do ya want for nothing?"),
    mac: "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
  },
  {
    hash: "SHA-1",
    key: fill(20, 0xaa),
    msg: fill(50, 0xdd),
    mac: "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
  },
  {
    hash: "SHA-1",
    key: fill(80, 0xaa),
    msg: bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
    mac: "aa4ae5e15272d00e95705637ce8a3b55ed402112",
  },
  {
    hash: "SHA-256",
    key: fill(20, 0x0b),
    msg: bytes("Hi There"),
    mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
  },
  {
    hash: "SHA-256",
    key: bytes("Jefe"),
    msg: bytes("what do ya want for nothing?"),
    mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  },
  {
    hash: "SHA-256",
    key: fill(20, 0xaa),
    msg: fill(50, 0xdd),
    mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
  },
  {
    hash: "SHA-256",
    key: fill(131, 0xaa),
    msg: bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
    mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
  },
];

Deno.test("both HMAC engines reproduce the RFC 2202 and RFC 4231 vectors", async () => {
  assert.deepEqual(hmacEngines(), ["webcrypto", "noble"]);
  for (const engine of hmacEngines()) {
    for (const [i, c] of CASES.entries()) {
      assert.equal(hex(await hmacSign(c.hash, c.key, c.msg, engine)), c.mac, `${engine} #${i}`);
    }
  }
});

Deno.test("without crypto.subtle (an insecure context) only the bundled engine is offered", async () => {
  const subtle = Object.getOwnPropertyDescriptor(Crypto.prototype, "subtle")!;
  Object.defineProperty(Crypto.prototype, "subtle", { get: () => undefined, configurable: true });
  try {
    assert.deepEqual(hmacEngines(), ["noble"]);
    const c = CASES[4];
    assert.equal(hex(await hmacSign(c.hash, c.key, c.msg)), c.mac);
  } finally {
    Object.defineProperty(Crypto.prototype, "subtle", subtle);
  }
});
