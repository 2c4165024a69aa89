/**
 * HMAC-SHA1 (TOTP) and HMAC-SHA256 (`portknock/v1`) for the knock page.
 * Browsers expose `crypto.subtle` only in secure contexts (https://,
 * file://, localhost): the page served by the appliance over plain http://
 * has none. There the page computes HMACs with `@noble/hashes` (audited, no
 * dependencies, bundled into the page); elsewhere WebCrypto does, and the
 * self-test checks both against the protocol's vectors.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha1 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";

/** The hash functions the protocol uses. */
export type HashName = "SHA-1" | "SHA-256";

/** Who computes the HMAC: the browser's WebCrypto, or the bundled JavaScript one. */
export type HmacEngine = "webcrypto" | "noble";

/** The engines this runtime offers, the preferred first. */
export function hmacEngines(): HmacEngine[] {
  return typeof globalThis.crypto?.subtle?.importKey === "function"
    ? ["webcrypto", "noble"]
    : ["noble"];
}

/** HMAC of `msg` under `key` with `hash`, computed by `engine` (default: the preferred one). */
export async function hmacSign(
  hash: HashName,
  key: Uint8Array,
  msg: Uint8Array,
  engine: HmacEngine = hmacEngines()[0],
): Promise<Uint8Array> {
  if (engine === "noble") return hmac(hash === "SHA-1" ? sha1 : sha256, key, msg);
  const k = await crypto.subtle.importKey("raw", key.slice(), { name: "HMAC", hash }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, msg.slice()));
}
