/** Constant-time comparison, for codes and secrets. */

/**
 * Compares two strings in time that depends only on their lengths, never on
 * where they first differ (no early exit).
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const n = Math.max(a.length, b.length);
  let diff = a.length ^ b.length;
  for (let i = 0; i < n; i++) {
    // Out-of-range charCodeAt is NaN, which `| 0` turns into 0.
    diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  }
  return diff === 0;
}
