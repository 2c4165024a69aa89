/**
 * RFC 4648 §6 base32 decoding of TOTP secrets: strict (only the 32-letter
 * alphabet, a valid length, zero trailing bits) but forgiving of case, spaces
 * and missing padding, as authenticator apps show secrets. Encoding is
 * otpauth's (`Secret#base32`); its decoder is not used because it accepts an
 * impossible length and non-zero trailing bits without a word (a secret
 * mistyped by one character would silently become another secret) and
 * strips only the space character. Self-contained: the browser knock page
 * bundles it, and otpauth would bring its hash functions along.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * Decodes base32 (case-insensitive, spaces ignored, padding optional).
 * Throws on a character outside the alphabet, an impossible length or
 * non-zero trailing bits.
 */
export function base32Decode(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "").toUpperCase();
  const body = clean.replace(/=+$/, "");
  const padding = clean.length - body.length;
  if (padding > 0 && padding !== (8 - (body.length % 8)) % 8) {
    throw new Error(`Cannot decode base32 "${text}": padding does not fill an 8-character group`);
  }
  // RFC 4648: a final group holds 2, 4, 5 or 7 characters (1..4 bytes).
  if ([1, 3, 6].includes(body.length % 8)) {
    throw new Error(`Cannot decode base32 "${text}": length ${body.length} is impossible`);
  }
  const out = new Uint8Array(Math.floor((body.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (const ch of body) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new Error(`Cannot decode base32 "${text}": "${ch}" is not a base32 character`);
    buffer = ((buffer << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (buffer >>> bits) & 0xff;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) {
    throw new Error(`Cannot decode base32 "${text}": trailing bits are not zero`);
  }
  return out;
}
