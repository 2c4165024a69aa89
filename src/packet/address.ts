/**
 * IPv4 addresses as unsigned 32-bit numbers, CIDR blocks and ports: parsing
 * and formatting for the control plane, plain arithmetic for the data plane.
 */

/** An IPv4 network: `addr` (host bits cleared) and prefix length 0..32. */
export interface Cidr {
  addr: number;
  prefix: number;
}

/** An inclusive port range; a single port has `start === end`. */
export interface PortSpan {
  start: number;
  end: number;
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;

/**
 * Parses a strict dotted quad (`192.0.2.1`: four decimal octets 0..255, no
 * leading zeros, no spaces) into an unsigned 32-bit number; null otherwise.
 */
export function parseIpv4(s: string): number | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

/** Formats an unsigned 32-bit address as a dotted quad. */
export function formatIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** The network mask of a prefix length, as an unsigned 32-bit number. */
export function prefixMask(prefix: number): number {
  // A shift by 32 is a shift by 0 in JavaScript, so /0 is special.
  return prefix <= 0 ? 0 : (0xffffffff << (32 - Math.min(prefix, 32))) >>> 0;
}

/**
 * Parses `a.b.c.d/n` (n 0..32) into a {@link Cidr} with host bits cleared; a
 * bare address means `/32`. Returns null when malformed.
 */
export function parseCidr(s: string): Cidr | null {
  const slash = s.indexOf("/");
  const addr = parseIpv4(slash < 0 ? s : s.slice(0, slash));
  if (addr === null) return null;
  if (slash < 0) return { addr, prefix: 32 };
  const p = s.slice(slash + 1);
  if (!DECIMAL.test(p) || p.length > 2) return null;
  const prefix = Number(p);
  if (prefix > 32) return null;
  return { addr: (addr & prefixMask(prefix)) >>> 0, prefix };
}

/** Formats a CIDR block as `a.b.c.d/n`. */
export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.addr)}/${c.prefix}`;
}

/** True when `addr` lies inside the network `c`. */
export function cidrContains(c: Cidr, addr: number): boolean {
  return ((addr ^ c.addr) & prefixMask(c.prefix)) === 0;
}

/** Parses a strict decimal port 1..65535 (no sign, no leading zeros); null otherwise. */
export function parsePort(s: string): number | null {
  if (!DECIMAL.test(s) || s.length > 5) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

/** Parses `N` or `N-M` (ports 1..65535, N <= M) into a span; null otherwise. */
export function parsePortSpan(s: string): PortSpan | null {
  const dash = s.indexOf("-");
  const start = parsePort(dash < 0 ? s : s.slice(0, dash));
  const end = dash < 0 ? start : parsePort(s.slice(dash + 1));
  if (start === null || end === null || end < start) return null;
  return { start, end };
}
