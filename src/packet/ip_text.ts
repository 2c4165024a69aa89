/**
 * Addresses and networks of either family as the control plane writes them:
 * which family a text is, its canonical spelling (dotted quad, RFC 5952), and
 * the text form of an unlock's source (`ip`): an IPv4 address, or an IPv6
 * network `2001:db8:1:2::/64` (host bits clear), or a bare IPv6 address when
 * the unlock covers it alone (`ipv6.unlockPrefix` 128).
 */

import { type Cidr, cidrContains, formatIpv4, parseCidr, parseIpv4 } from "./address.ts";
import {
  formatIpv6,
  formatIpv6Prefix,
  type Ipv6Prefix,
  ipv6PrefixContains,
  isIpv4Mapped,
  isIpv6LinkLocal,
  isIpv6Loopback,
  isIpv6Multicast,
  isIpv6Unspecified,
  parseIpv6,
  parseIpv6Prefix,
} from "./ipv6_address.ts";

/** An address of either family. */
export type IpAddress = { family: 4; addr: number } | { family: 6; addr: Uint32Array };

/** A network of either family (a bare address is a /32 or /128). */
export type IpNetwork = { family: 4; net: Cidr } | { family: 6; net: Ipv6Prefix };

/** Parses a dotted quad or an IPv6 address (RFC 4291 text, no zone, no brackets); null otherwise. */
export function parseIp(s: string): IpAddress | null {
  const v4 = parseIpv4(s);
  if (v4 !== null) return { family: 4, addr: v4 };
  const v6 = s.includes(":") ? parseIpv6(s) : null;
  return v6 === null ? null : { family: 6, addr: v6 };
}

/** Parses `a.b.c.d/n` or `2001:db8::/32` (a bare address is a host network); null otherwise. */
export function parseIpNetwork(s: string): IpNetwork | null {
  const v4 = parseCidr(s);
  if (v4 !== null) return { family: 4, net: v4 };
  const v6 = s.includes(":") ? parseIpv6Prefix(s) : null;
  return v6 === null ? null : { family: 6, net: v6 };
}

/** 4, 6, or null when `s` is no address. */
export function ipFamily(s: string): 4 | 6 | null {
  return parseIp(s)?.family ?? null;
}

/** The canonical text of an address (RFC 5952 for IPv6), or null when `s` is none. */
export function canonicalIp(s: string): string | null {
  const a = parseIp(s);
  if (a === null) return null;
  return a.family === 4 ? formatIpv4(a.addr) : formatIpv6(a.addr);
}

/**
 * Why an IPv6 address cannot be a host's unicast address across a router,
 * or null: unspecified, loopback, multicast, link-local (never forwarded)
 * and IPv4-mapped (never on the wire) are not.
 */
export function ipv6NotGlobal(w: Uint32Array): string | null {
  if (isIpv6Unspecified(w)) return "is the unspecified address";
  if (isIpv6Loopback(w)) return "is the loopback address";
  if (isIpv6Multicast(w)) return "is multicast (ff00::/8)";
  if (isIpv6LinkLocal(w)) return "is link-local (fe80::/10), never forwarded";
  if (isIpv4Mapped(w)) return "is IPv4-mapped (::ffff:0:0/96), never on the wire";
  return null;
}

/** True for a unique local address, `fc00::/7` (RFC 4193): not routed on the Internet. */
export function isIpv6UniqueLocal(w: Uint32Array): boolean {
  return (w[0] >>> 25) === (0xfc00 >>> 9);
}

/** The network an unlock's `ip` covers: an IPv4 host, an IPv6 prefix, or an IPv6 host. */
export function parseUnlockIp(s: string): IpNetwork | null {
  const v4 = parseIpv4(s);
  if (v4 !== null) return { family: 4, net: { addr: v4, prefix: 32 } };
  const v6 = s.includes(":") ? parseIpv6Prefix(s) : null;
  return v6 === null ? null : { family: 6, net: v6 };
}

/**
 * Why `s` is not an unlock's `ip` as the data plane writes it, or null: a
 * dotted quad, or RFC 5952 text of an IPv6 network `2001:db8:1:2::/64`
 * (host bits clear, length below 128), or a bare IPv6 address (a /128).
 */
export function unlockIpError(s: unknown): string | null {
  if (typeof s !== "string") return "is not a string";
  if (parseIpv4(s) !== null) return null;
  const n = s.includes(":") ? parseIpv6Prefix(s) : null;
  if (n === null) return "is not an IPv4 address, an IPv6 address or an IPv6 prefix";
  const canonical = n.prefix === 128 ? formatIpv6(n.addr) : formatIpv6Prefix(n);
  if (canonical !== s) return `is not in canonical form (${canonical})`;
  return null;
}

/** True when network `n` holds every address of `inner` (same family, as long or longer). */
export function networkCovers(n: IpNetwork, inner: IpNetwork): boolean {
  if (n.family === 4 && inner.family === 4) {
    return inner.net.prefix >= n.net.prefix && cidrContains(n.net, inner.net.addr);
  }
  if (n.family === 6 && inner.family === 6) {
    return inner.net.prefix >= n.net.prefix && ipv6PrefixContains(n.net, inner.net.addr);
  }
  return false;
}

/** `2001:db8::1` as a URL host: `[2001:db8::1]`; IPv4 addresses and names as they are. */
export function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
