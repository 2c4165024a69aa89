/** Small predicates shared by the repositories' validation. */

import { canonicalIp, unlockIpError } from "../packet/ip_text.ts";

const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";

/** A dotted-quad IPv4 address without leading zeros, e.g. "192.0.2.1". */
export const DOTTED_QUAD_RE: RegExp = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

/** A dotted quad with a prefix length, e.g. "192.0.2.1/24". */
export const CIDR_RE: RegExp = new RegExp(`^${OCTET}(\\.${OCTET}){3}/([0-9]|[12][0-9]|3[0-2])$`);

/** True when `v` is an integer in `min..max`. */
export function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

/** True when `v` is a dotted-quad IPv4 address. */
export function isDottedQuad(v: unknown): v is string {
  return typeof v === "string" && DOTTED_QUAD_RE.test(v);
}

/** True when `v` is a dotted quad or an IPv6 address in RFC 5952 text (`2001:db8::1`). */
export function isIpAddress(v: unknown): v is string {
  return typeof v === "string" && canonicalIp(v) === v;
}

/**
 * True when `v` is an unlock's source as the data plane writes it: a dotted
 * quad, an IPv6 prefix `2001:db8:1:2::/64` (RFC 5952, host bits clear) or a
 * bare IPv6 address (an unlock of one address, `ipv6.unlockPrefix` 128).
 */
export function isUnlockIp(v: unknown): v is string {
  return unlockIpError(v) === null;
}
