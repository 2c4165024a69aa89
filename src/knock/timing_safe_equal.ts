/** Constant-time comparison of codes and tokens, by `node:crypto`'s timingSafeEqual. */
import { timingSafeEqual as equalBytes } from "node:crypto";

const UTF8 = new TextEncoder();

/**
 * Compares two strings in time that depends only on their lengths, never on
 * where they first differ. `node:crypto` compares equal lengths only, so a
 * length mismatch still runs one comparison (of `a` with itself) before it
 * answers false.
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = UTF8.encode(a), y = UTF8.encode(b);
  const same = x.length === y.length;
  return equalBytes(x, same ? y : x) && same;
}
