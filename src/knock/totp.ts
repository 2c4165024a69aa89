/**
 * TOTP (RFC 6238) as `portknock/v1` fixes it: HMAC-SHA1, 6 digits, 30 s
 * steps from epoch 0. Used for enrollment and management sign-in, never sent
 * in a knock.
 */

import { Secret, TOTP } from "otpauth";
import { base32Decode } from "./base32.ts";
import { timingSafeEqual } from "./timing_safe_equal.ts";

export { timingSafeEqual };

/** TOTP period in seconds. */
export const TOTP_PERIOD_S = 30;
/** TOTP code length. */
export const TOTP_DIGITS = 6;

function totpFor(secretB32: string, label = "knockgate", issuer = ""): TOTP {
  // Decoding through our strict base32 rejects secrets otpauth would accept loosely.
  const bytes = base32Decode(secretB32);
  return new TOTP({
    issuer,
    label,
    algorithm: "SHA1",
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_S,
    secret: new Secret({ buffer: bytes.slice().buffer }),
  });
}

/** The 6-digit code of `secretB32` at `unixSec` (seconds since the epoch). */
export function totpCode(secretB32: string, unixSec: number): string {
  return totpFor(secretB32).generate({ timestamp: unixSec * 1000 });
}

/**
 * Checks `code` against the steps `unixSec` ± `window`. Returns the matching
 * drift in steps (0 first, then -1, +1, -2, ...) or null. Every candidate is
 * compared in constant time.
 */
export function verifyTotp(
  secretB32: string,
  code: string,
  unixSec: number,
  window = 1,
): number | null {
  const totp = totpFor(secretB32);
  let found: number | null = null;
  for (const drift of driftOrder(window)) {
    const expected = totp.generate({ timestamp: (unixSec + drift * TOTP_PERIOD_S) * 1000 });
    // No early exit: every step is computed and compared whatever matched.
    if (timingSafeEqual(expected, code) && found === null) found = drift;
  }
  return found;
}

function driftOrder(window: number): number[] {
  const order = [0];
  for (let d = 1; d <= window; d++) order.push(-d, d);
  return order;
}

/** A new random secret of `bytes` bytes (at least 20), base32 without padding. */
export function generateSecret(bytes = 20): string {
  if (bytes < 20) throw new Error(`Cannot generate a secret of ${bytes} bytes: at least 20 needed`);
  return new Secret({ size: bytes }).base32;
}

/** Parameters of an `otpauth://` enrollment URI. */
export interface OtpauthUriParams {
  issuer: string;
  account: string;
  secret: string;
}

/** The `otpauth://totp/...` URI a phone authenticator app scans. */
export function otpauthUri({ issuer, account, secret }: OtpauthUriParams): string {
  return totpFor(secret, account, issuer).toString();
}
