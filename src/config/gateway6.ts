/**
 * An uplink's IPv6 next hop (`wan[].gateway6`) and its health probe
 * (`wan[].probe6`), checked once the schema has passed them.
 *
 * The gateway is what routers advertise, a link-local address (fe80::/10,
 * RFC 4861 §4.2: the source of a router advertisement is always link-local),
 * scoped to the uplink's interface; or a global address on one of the
 * uplink's `addresses6` prefixes (a statically configured next hop), and not
 * one of the uplink's own addresses. Either needs an address of the uplink's
 * own to route from (its rules by source) and to probe from.
 */

import {
  formatIpv6,
  ipv6PrefixContains,
  isIpv4Mapped,
  isIpv6LinkLocal,
  isIpv6Loopback,
  isIpv6Multicast,
  isIpv6Unspecified,
  parseIpv6,
  parseIpv6Prefix,
} from "../packet/ipv6_address.ts";
import type { ConfigOutput } from "./schema.ts";
import type { UplinkProbe6 } from "./types.ts";
import type { ProblemSink } from "./ipv6.ts";

/** The next hop and probe of one uplink (both null with IPv6 off). */
export interface UplinkGateway6 {
  gateway6: string | null;
  probe6: UplinkProbe6 | null;
}

/** Why `w` can be no neighbour's unicast address, or null. */
function notUnicast(w: Uint32Array): string | null {
  if (isIpv6Unspecified(w)) return "is the unspecified address";
  if (isIpv6Loopback(w)) return "is the loopback address";
  if (isIpv6Multicast(w)) return "is multicast (ff00::/8)";
  if (isIpv4Mapped(w)) return "is IPv4-mapped (::ffff:0:0/96), never on the wire";
  return null;
}

/** The probe's defaults, as `probe`'s. */
const PROBE6_DEFAULTS = { intervalMs: 1000, downAfter: 3, upAfter: 2 } as const;

/** Checks uplink `u`'s `gateway6` at `at`; the gateway in RFC 5952 text, or null. */
function gateway6Of(u: ConfigOutput["wan"][number], at: string, report: ProblemSink) {
  if (u.gateway6 === null) return null;
  const path = `${at}.gateway6`;
  const g = parseIpv6(u.gateway6)!;
  const text = formatIpv6(g);
  const bad = notUnicast(g);
  if (bad !== null) {
    report.add(path, `${u.gateway6} ${bad}`);
    return null;
  }
  if (u.addresses6.length === 0) {
    report.add(path, `uplink "${u.name}" has no addresses6 to route from`);
    return null;
  }
  if (isIpv6LinkLocal(g)) return text;
  const own = u.addresses6.map((a) => parseIpv6(a.split("/")[0])!);
  if (own.some((w) => w.every((x, i) => x === g[i]))) {
    report.add(path, `${text} is an address of uplink "${u.name}" itself`);
  } else if (!u.addresses6.some((a) => ipv6PrefixContains(parseIpv6Prefix(a)!, g))) {
    const nets = u.addresses6.map((a) => {
      const p = parseIpv6Prefix(a)!;
      return `${formatIpv6(p.addr)}/${p.prefix}`;
    });
    report.add(
      path,
      `${text} is on no prefix of uplink "${u.name}" (${
        nets.join(", ")
      }) and not link-local (fe80::/10)`,
    );
  }
  return text;
}

/** The IPv6 probe: on by default with a gateway6, aimed at it unless a target is named. */
function probe6Of(
  u: ConfigOutput["wan"][number],
  gateway6: string | null,
  at: string,
  report: ProblemSink,
): UplinkProbe6 | null {
  if (u.probe6 === false) return null;
  const p = u.probe6 ?? (u.gateway6 !== null ? PROBE6_DEFAULTS : undefined);
  if (p === undefined) return null;
  const path = `${at}.probe6`;
  const written = u.probe6 === undefined ? undefined : u.probe6.target;
  if (written === undefined && u.gateway6 === null) {
    report.add(path, `uplink "${u.name}" has no gateway6: name the probe6's target`);
    return null;
  }
  if (written !== undefined) {
    const w = parseIpv6(written)!;
    const bad = notUnicast(w);
    if (bad !== null) {
      report.add(`${path}.target`, `${written} ${bad}`);
      return null;
    }
    if (u.addresses6.length === 0) {
      report.add(path, `uplink "${u.name}" has no addresses6 to probe from`);
      return null;
    }
  }
  const target = written === undefined ? gateway6 : formatIpv6(parseIpv6(written)!);
  if (target === null) return null;
  return { target, intervalMs: p.intervalMs, downAfter: p.downAfter, upAfter: p.upAfter };
}

/**
 * Every uplink's `gateway6` and `probe6` (indexed like `c.wan`). With IPv6
 * off, what is written is still checked, but not applied (a note each).
 */
export function uplinkGateways6(
  c: ConfigOutput,
  report: ProblemSink,
  notes: ProblemSink,
): UplinkGateway6[] {
  return c.wan.map((u, i) => {
    const at = `wan[${i}]`;
    const gateway6 = gateway6Of(u, at, report);
    const probe6 = probe6Of(u, gateway6, at, report);
    if (c.ipv6.enabled) return { gateway6, probe6 };
    if (u.gateway6 !== null) notes.add(`${at}.gateway6`, "is not applied: ipv6.enabled is false");
    if (u.probe6 !== undefined && u.probe6 !== false) {
      notes.add(`${at}.probe6`, "is not applied: ipv6.enabled is false");
    }
    return { gateway6: null, probe6: null };
  });
}
