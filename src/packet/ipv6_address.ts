/**
 * IPv6 addresses (RFC 4291) as four unsigned 32-bit words, most significant
 * first: word `i` holds bytes `4i..4i+3` of the address in network order.
 * The control plane parses and formats them (RFC 5952 canonical text); the
 * data plane keeps them in flat `Uint32Array` columns (`w[at..at+4)`) and
 * compares, masks and copies them there without allocating.
 */

import { read32, write32 } from "./bytes.ts";
import { prefixMask } from "./address.ts";

/** Words in an IPv6 address. */
export const IPV6_WORDS = 4;
/** Bytes in an IPv6 address. */
export const IPV6_ADDR_LEN = 16;

/** An IPv6 network: `addr` (four words, host bits cleared) and prefix length 0..128. */
export interface Ipv6Prefix {
  addr: Uint32Array;
  prefix: number;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;
const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** Parses up to `max` colon-separated groups (the last may be a dotted quad) into 16-bit values. */
function parseGroups(s: string, max: number, out: number[]): boolean {
  if (s === "") return true;
  const parts = s.split(":");
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (i === parts.length - 1 && p.includes(".")) {
      const q = p.split(".");
      if (q.length !== 4) return false;
      let v4 = 0;
      for (const o of q) {
        if (!OCTET.test(o) || Number(o) > 255) return false;
        v4 = v4 * 256 + Number(o);
      }
      out.push(Math.floor(v4 / 0x10000), v4 & 0xffff);
    } else {
      if (!HEX_GROUP.test(p)) return false;
      out.push(parseInt(p, 16));
    }
  }
  return out.length <= max;
}

/**
 * Parses the text forms of RFC 4291 §2.2 (`2001:db8::1`, `::`, `::ffff:192.0.2.1`,
 * upper or lower case) into four fresh words; null for anything else (a zone
 * such as `%eth0`, brackets, a prefix, a second `::`, a group past 4 digits).
 */
export function parseIpv6(s: string): Uint32Array | null {
  const gap = s.indexOf("::");
  const head: number[] = [], tail: number[] = [];
  if (gap < 0) {
    if (!parseGroups(s, 8, head) || head.length !== 8) return null;
  } else {
    if (s.indexOf("::", gap + 1) >= 0) return null;
    if (!parseGroups(s.slice(0, gap), 7, head)) return null;
    if (!parseGroups(s.slice(gap + 2), 7 - head.length, tail)) return null;
    // A dotted quad belongs at the very end only.
    if (s.slice(0, gap).includes(".")) return null;
  }
  const g = head.concat(new Array(8 - head.length - tail.length).fill(0), tail);
  const w = new Uint32Array(IPV6_WORDS);
  for (let i = 0; i < IPV6_WORDS; i++) w[i] = g[2 * i] * 0x10000 + g[2 * i + 1];
  return w;
}

/**
 * Formats `w[at..at+4)` in RFC 5952 canonical text: lower case, no leading
 * zeros, the longest run of two or more zero groups (the first of equals)
 * as `::`, and an IPv4-mapped address as `::ffff:a.b.c.d` (RFC 5952 §5).
 */
export function formatIpv6(w: ArrayLike<number>, at = 0): string {
  if (isIpv4Mapped(w, at)) {
    const v4 = w[at + 3] >>> 0;
    return `::ffff:${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`;
  }
  const g: number[] = [];
  for (let i = 0; i < IPV6_WORDS; i++) g.push((w[at + i] >>> 16) & 0xffff, w[at + i] & 0xffff);
  let best = -1, bestLen = 1; // RFC 5952 §4.2.2: a single zero group is not shortened
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) best = i, bestLen = j - i;
    i = j;
  }
  const hex = (a: number, b: number) => g.slice(a, b).map((x) => x.toString(16)).join(":");
  return best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

/** Reads the 16-byte address at `buf[off..]` into `out[at..at+4)`. */
export function readIpv6(buf: Uint8Array, off: number, out: Uint32Array, at = 0): void {
  out[at] = read32(buf, off);
  out[at + 1] = read32(buf, off + 4);
  out[at + 2] = read32(buf, off + 8);
  out[at + 3] = read32(buf, off + 12);
}

/** Writes `w[at..at+4)` as 16 bytes at `buf[off..]`. */
export function writeIpv6(buf: Uint8Array, off: number, w: ArrayLike<number>, at = 0): void {
  write32(buf, off, w[at]);
  write32(buf, off + 4, w[at + 1]);
  write32(buf, off + 8, w[at + 2]);
  write32(buf, off + 12, w[at + 3]);
}

/** True when `a[ai..ai+4)` and `b[bi..bi+4)` hold the same address. */
export function ipv6Equal(
  a: ArrayLike<number>,
  ai: number,
  b: ArrayLike<number>,
  bi: number,
): boolean {
  return (a[ai] >>> 0) === (b[bi] >>> 0) && (a[ai + 1] >>> 0) === (b[bi + 1] >>> 0) &&
    (a[ai + 2] >>> 0) === (b[bi + 2] >>> 0) && (a[ai + 3] >>> 0) === (b[bi + 3] >>> 0);
}

/** True when the address at `buf[off..off+16)` equals `w[at..at+4)`. */
export function ipv6EqualBytes(
  buf: Uint8Array,
  off: number,
  w: ArrayLike<number>,
  at = 0,
): boolean {
  return read32(buf, off) === (w[at] >>> 0) && read32(buf, off + 4) === (w[at + 1] >>> 0) &&
    read32(buf, off + 8) === (w[at + 2] >>> 0) && read32(buf, off + 12) === (w[at + 3] >>> 0);
}

/** The mask of word `i` (0..3) of a prefix length 0..128, as an unsigned 32-bit number. */
export function ipv6WordMask(prefix: number, i: number): number {
  return prefixMask(prefix - 32 * i);
}

/**
 * Copies the address `src[si..si+4)` into `dst[di..di+4)` with the bits past
 * `prefix` cleared: the network of an address, such as the /64 an unlock
 * covers when privacy addresses (RFC 8981) rotate inside it.
 */
export function ipv6MaskInto(
  src: ArrayLike<number>,
  si: number,
  prefix: number,
  dst: Uint32Array,
  di = 0,
): void {
  for (let i = 0; i < IPV6_WORDS; i++) dst[di + i] = (src[si + i] & ipv6WordMask(prefix, i)) >>> 0;
}

/**
 * Parses `2001:db8::/32` (prefix length 0..128, decimal, no leading zeros)
 * into an {@link Ipv6Prefix} with host bits cleared; a bare address means
 * `/128`. Returns null when malformed.
 */
export function parseIpv6Prefix(s: string): Ipv6Prefix | null {
  const slash = s.indexOf("/");
  const addr = parseIpv6(slash < 0 ? s : s.slice(0, slash));
  if (addr === null) return null;
  if (slash < 0) return { addr, prefix: 128 };
  const p = s.slice(slash + 1);
  if (!DECIMAL.test(p) || p.length > 3) return null;
  const prefix = Number(p);
  if (prefix > 128) return null;
  ipv6MaskInto(addr, 0, prefix, addr);
  return { addr, prefix };
}

/** Formats a prefix as `2001:db8::/32`. */
export function formatIpv6Prefix(p: Ipv6Prefix): string {
  return `${formatIpv6(p.addr)}/${p.prefix}`;
}

/** True when the address `w[at..at+4)` lies inside `p`. */
export function ipv6PrefixContains(p: Ipv6Prefix, w: ArrayLike<number>, at = 0): boolean {
  const n = p.addr, len = p.prefix;
  return ((w[at] ^ n[0]) & ipv6WordMask(len, 0)) === 0 &&
    ((w[at + 1] ^ n[1]) & ipv6WordMask(len, 1)) === 0 &&
    ((w[at + 2] ^ n[2]) & ipv6WordMask(len, 2)) === 0 &&
    ((w[at + 3] ^ n[3]) & ipv6WordMask(len, 3)) === 0;
}

/** True when the address at `buf[off..off+16)` (a packet's source, say) lies inside `p`. */
export function ipv6PrefixContainsBytes(p: Ipv6Prefix, buf: Uint8Array, off: number): boolean {
  const n = p.addr, len = p.prefix;
  return ((read32(buf, off) ^ n[0]) & ipv6WordMask(len, 0)) === 0 &&
    ((read32(buf, off + 4) ^ n[1]) & ipv6WordMask(len, 1)) === 0 &&
    ((read32(buf, off + 8) ^ n[2]) & ipv6WordMask(len, 2)) === 0 &&
    ((read32(buf, off + 12) ^ n[3]) & ipv6WordMask(len, 3)) === 0;
}

/** True for an IPv4-mapped address, `::ffff:0:0/96` (RFC 4291 §2.5.5.2). */
export function isIpv4Mapped(w: ArrayLike<number>, at = 0): boolean {
  return w[at] === 0 && w[at + 1] === 0 && (w[at + 2] >>> 0) === 0xffff;
}

/**
 * Writes the IPv4-mapped form `::ffff:a.b.c.d` of an unsigned 32-bit IPv4
 * address into `out[at..at+4)`; its IPv4 address is then `out[at + 3]`.
 * On the wire such an address is refused (RFC 4291 §2.5.5.2 keeps it to
 * sockets APIs); the control plane uses it to hold both families in one list.
 */
export function mapIpv4(v4: number, out: Uint32Array, at = 0): void {
  out[at] = 0;
  out[at + 1] = 0;
  out[at + 2] = 0xffff;
  out[at + 3] = v4 >>> 0;
}

/** True for `::` (RFC 4291 §2.5.2), the source of a node still doing duplicate address detection. */
export function isIpv6Unspecified(w: ArrayLike<number>, at = 0): boolean {
  return (w[at] | w[at + 1] | w[at + 2] | w[at + 3]) === 0;
}

/** True for `::1` (RFC 4291 §2.5.3). */
export function isIpv6Loopback(w: ArrayLike<number>, at = 0): boolean {
  return (w[at] | w[at + 1] | w[at + 2]) === 0 && w[at + 3] === 1;
}

/** True for a multicast address, `ff00::/8` (RFC 4291 §2.7). */
export function isIpv6Multicast(w: ArrayLike<number>, at = 0): boolean {
  return w[at] >>> 24 === 0xff;
}

/** True for a link-local unicast address, `fe80::/10` (RFC 4291 §2.5.6): never forwarded. */
export function isIpv6LinkLocal(w: ArrayLike<number>, at = 0): boolean {
  return (w[at] >>> 22) === (0xfe80 >>> 6);
}
