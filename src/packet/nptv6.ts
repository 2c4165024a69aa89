/**
 * IPv6-to-IPv6 network prefix translation (NPTv6, RFC 6296): a stateless
 * swap of an address's prefix that is checksum-neutral, so no TCP, UDP or
 * ICMPv6 checksum needs an update. The ones' complement sum of the address
 * stays the same because the difference between the two prefixes' sums is
 * added to one 16-bit word outside the prefix (RFC 6296 §2.6, §3): the subnet
 * word (bits 48..63) for a /48 or shorter prefix (§3.4), the first of the
 * interface-identifier words that is not 0xFFFF for a /49 to /64 (§3.5).
 */

import { checksumFold } from "./checksum.ts";
import {
  formatIpv6,
  type Ipv6Prefix,
  ipv6PrefixContains,
  ipv6WordMask,
  parseIpv6,
} from "./ipv6_address.ts";
import { read16, read32, write16, write32 } from "./bytes.ts";

/** A prepared one-way mapping between two prefixes of the same length (at most /64). */
export interface Nptv6Map {
  /** The prefix addresses are translated from. */
  from: Ipv6Prefix;
  /** The prefix they are translated to. */
  to: Ipv6Prefix;
  /** The ones' complement difference sum(from) - sum(to), added to the adjusted word. */
  adjustment: number;
}

/** The ones' complement sum of a prefix's 16-bit words (its host bits are clear). */
function prefixSum(p: Ipv6Prefix): number {
  let sum = 0;
  for (let i = 0; i < 4; i++) sum += (p.addr[i] >>> 16) + (p.addr[i] & 0xffff);
  return checksumFold(sum);
}

/**
 * Prepares the mapping `from` -> `to`; the way back is `nptv6Map(to, from)`.
 * Throws when the lengths differ or exceed 64 (RFC 6296 defines prefixes up to /64).
 */
export function nptv6Map(from: Ipv6Prefix, to: Ipv6Prefix): Nptv6Map {
  if (from.prefix !== to.prefix) {
    throw new Error(`Cannot map /${from.prefix} to /${to.prefix}: NPTv6 needs equal lengths`);
  }
  if (from.prefix > 64) throw new Error(`Cannot map /${from.prefix}: NPTv6 stops at /64`);
  const adjustment = checksumFold(prefixSum(from) + (~prefixSum(to) & 0xffff));
  return { from, to, adjustment };
}

/**
 * Translates the address at `buf[off..off+16)` in place (a packet's source or
 * destination). Returns false, leaving it untouched, when RFC 6296 says the
 * address cannot be mapped: a /48-or-shorter subnet word of 0xFFFF (§3.4),
 * or for a longer prefix every interface-identifier word 0xFFFF (§3.5). The
 * caller checks that the address lies in `m.from` first.
 */
export function nptv6Translate(m: Nptv6Map, buf: Uint8Array, off: number): boolean {
  const len = m.from.prefix;
  let word = 3; // 16-bit word index: bits 48..63
  if (len > 48) {
    word = 4;
    while (word < 8 && read16(buf, off + 2 * word) === 0xffff) word++;
    if (word === 8) return false;
  } else if (read16(buf, off + 6) === 0xffff) return false;
  for (let i = 0; i < 4; i++) {
    const mask = ipv6WordMask(len, i);
    if (mask === 0) break;
    write32(buf, off + 4 * i, (read32(buf, off + 4 * i) & ~mask) | (m.to.addr[i] & mask));
  }
  const adjusted = checksumFold(read16(buf, off + 2 * word) + m.adjustment);
  write16(buf, off + 2 * word, adjusted === 0xffff ? 0 : adjusted);
  return true;
}

/**
 * The address `address` (RFC 4291 text) becomes under `m`, in RFC 5952
 * text; null when it is not an IPv6 address inside `m.from` or RFC 6296
 * cannot map it. For the control plane (where a host is reached from the
 * WAN), not per packet: it allocates.
 */
export function nptv6TranslateText(m: Nptv6Map, address: string): string | null {
  const w = parseIpv6(address);
  if (w === null || !ipv6PrefixContains(m.from, w)) return null;
  const buf = new Uint8Array(16);
  for (let i = 0; i < 4; i++) write32(buf, 4 * i, w[i]);
  if (!nptv6Translate(m, buf, 0)) return null;
  return formatIpv6(Array.from({ length: 4 }, (_, i) => read32(buf, 4 * i) >>> 0));
}
