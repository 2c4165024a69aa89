/**
 * `portknock/v1` sequence derivation. Self-contained on purpose (WebCrypto
 * and base32 only): the appliance, the CLI and the browser knock page share it.
 *
 *   msg = "portknock/v1" || 0x00 || uint64_be(T) || uint16_be(F)
 *   h   = HMAC-SHA256(key = secret, msg)
 *   p   = 16384 + (uint16_be(h[2i..2i+1]) & 0x3FFF), skipping F and repeats
 */

import { base32Decode } from "./base32.ts";

/** Protocol label, the first bytes of every HMAC message. */
export const KNOCK_PROTOCOL = "portknock/v1";
/** Length of one time step in seconds. */
export const KNOCK_STEP_S = 30;
/** Lowest derived port. */
export const KNOCK_PORT_BASE = 16384;
/** Most ports after `F`. */
export const KNOCK_MAX_LENGTH = 8;

const LABEL = new TextEncoder().encode(KNOCK_PROTOCOL);

/** The time step `T = floor(unix_seconds / 30)`. */
export function stepOf(unixSec: number): number {
  return Math.floor(unixSec / KNOCK_STEP_S);
}

/** Imports a secret as an HMAC-SHA256 key, to derive many sequences from it. */
export function importKnockKey(secretBytes: Uint8Array): Promise<CryptoKey> {
  if (secretBytes.length === 0) throw new Error("Cannot import knock key: the secret is empty");
  return crypto.subtle.importKey(
    "raw",
    secretBytes.slice(),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

/** The HMAC message for step `step` and first port `firstPort`. */
export function knockMessage(step: number, firstPort: number): Uint8Array<ArrayBuffer> {
  const msg = new Uint8Array(LABEL.length + 1 + 8 + 2);
  msg.set(LABEL, 0); // followed by the 0x00 separator, already zero
  const view = new DataView(msg.buffer);
  view.setBigUint64(LABEL.length + 1, BigInt(step), false);
  view.setUint16(LABEL.length + 9, firstPort, false);
  return msg;
}

function checkParams(step: number, firstPort: number, length: number): void {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new Error(`Cannot derive knock sequence: step ${step} is not a non-negative integer`);
  }
  if (!Number.isInteger(firstPort) || firstPort < 1 || firstPort > 65535) {
    throw new Error(`Cannot derive knock sequence: first port ${firstPort} is out of range`);
  }
  if (!Number.isInteger(length) || length < 1 || length > KNOCK_MAX_LENGTH) {
    throw new Error(`Cannot derive knock sequence: length ${length} is out of range 1..8`);
  }
}

/**
 * Picks the ports from an HMAC digest: `[F, p1, .., pN]`. Only the 16 chunks
 * are read, as the page says: if they repeat too much the result is shorter
 * (with 14-bit ports and N <= 8 this is vanishingly rare).
 */
export function portsFromDigest(digest: Uint8Array, firstPort: number, length: number): number[] {
  const seq = [firstPort];
  for (let i = 0; i < 16 && seq.length <= length; i++) {
    const p = KNOCK_PORT_BASE + (((digest[2 * i] << 8) | digest[2 * i + 1]) & 0x3fff);
    // Skip F and ports already chosen; index 0 of `seq` is F itself.
    if (!seq.includes(p)) seq.push(p);
  }
  return seq;
}

/** `[F, p1, .., pN]` for step `step`, from an imported key. */
export async function knockSequenceWithKey(
  key: CryptoKey,
  step: number,
  firstPort: number,
  length: number,
): Promise<number[]> {
  checkParams(step, firstPort, length);
  const mac = await crypto.subtle.sign("HMAC", key, knockMessage(step, firstPort));
  return portsFromDigest(new Uint8Array(mac), firstPort, length);
}

/** `[F, p1, .., pN]` for step `step`, from the raw secret bytes. */
export async function knockSequence(
  secretBytes: Uint8Array,
  step: number,
  firstPort: number,
  length: number,
): Promise<number[]> {
  checkParams(step, firstPort, length);
  return knockSequenceWithKey(await importKnockKey(secretBytes), step, firstPort, length);
}

/** `[F, p1, .., pN]` at `unixSec`, from a base32 secret: what a client sends. */
export function knockSequenceAt(
  secretB32: string,
  unixSec: number,
  firstPort: number,
  length: number,
): Promise<number[]> {
  return knockSequence(base32Decode(secretB32), stepOf(unixSec), firstPort, length);
}
