/** Identifiers and encodings shared by the repositories. */
import type { Clock } from "../clock.ts";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * Time-ordered ids in the ULID layout (10 chars of milliseconds, 16 random):
 * strictly increasing within one process even when the clock stalls or steps
 * back, because the random part is incremented instead of redrawn.
 */
export class UlidFactory {
  #lastTime = -1;
  readonly #random = new Uint8Array(10);

  /** Ids take their time from `clock`. */
  constructor(private readonly clock: Clock) {}

  /** The next id, greater than every id this factory returned before. */
  next(): string {
    const now = Math.max(0, Math.floor(this.clock.now()));
    if (now > this.#lastTime) {
      this.#lastTime = now;
      crypto.getRandomValues(this.#random);
    } else {
      this.#increment();
    }
    return encodeTime(this.#lastTime) + encodeBits(this.#random, CROCKFORD);
  }

  #increment(): void {
    for (let i = this.#random.length - 1; i >= 0; i--) {
      this.#random[i] = (this.#random[i] + 1) & 0xff;
      if (this.#random[i] !== 0) return;
    }
    this.#lastTime++; // 80-bit overflow: borrow the next millisecond
  }
}

/** The least id of millisecond `ms` (every id made at `ms` or later sorts at or after it). */
export function ulidFloor(ms: number): string {
  return encodeTime(Math.max(0, Math.floor(ms))) + "0".repeat(16);
}

function encodeTime(ms: number): string {
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
}

/** Base32 of `bytes` (a multiple of 5 bytes, so no padding), most significant first. */
function encodeBits(bytes: Uint8Array, alphabet: string): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += alphabet[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

/** Standard base64 of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** Bytes of standard base64 `text`; throws on malformed input. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `n` random bytes as lower-case hex. */
export function randomHex(n: number): string {
  return toHex(crypto.getRandomValues(new Uint8Array(n)));
}

/** SHA-256 of the UTF-8 text, lower-case hex. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return toHex(new Uint8Array(digest));
}

/** A fresh TOTP secret: RFC 4648 base32 of 20 random bytes (160 bits, 32 characters). */
export function randomBase32Secret(): string {
  return encodeBits(crypto.getRandomValues(new Uint8Array(20)), RFC4648);
}
