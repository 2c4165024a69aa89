/**
 * Password hashing with scrypt (node:crypto), encoded as
 * `scrypt$N$r$p$salt$hash` with base64 salt and hash.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { fromBase64, toBase64 } from "./_ids.ts";

const N = 16384;
const R = 8;
const P = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 64;

function derive(password: string, salt: Uint8Array, n: number, r: number, p: number, len: number) {
  return new Promise<Uint8Array>((resolve, reject) => {
    // maxmem must exceed 128 * N * r (16 MiB at the defaults).
    scrypt(password, salt, len, { N: n, r, p, maxmem: 256 * n * r }, (err, key) => {
      if (err) reject(err);
      else resolve(new Uint8Array(key));
    });
  });
}

function decodeBase64(text: string): Uint8Array | null {
  try {
    return fromBase64(text);
  } catch {
    return null;
  }
}

/** Hashes `password` with a fresh 16-byte salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = new Uint8Array(randomBytes(SALT_BYTES));
  const hash = await derive(password, salt, N, R, P, KEY_BYTES);
  return ["scrypt", N, R, P, toBase64(salt), toBase64(hash)]
    .join("$");
}

/**
 * True when `password` matches `encoded`; compares in constant time. A
 * malformed `encoded` never matches.
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [n, r, p] = parts.slice(1, 4).map(Number);
  if (![n, r, p].every((v) => Number.isInteger(v) && v > 0) || n > 1 << 20) return false;
  const salt = decodeBase64(parts[4]);
  const expected = decodeBase64(parts[5]);
  if (salt === null || expected === null || expected.length === 0) return false;
  const actual = await derive(password, salt, n, r, p, expected.length);
  return timingSafeEqual(actual, expected);
}
