/**
 * The IPv6 side of the configuration: the uplinks' `addresses6`, the
 * `ipv6` section (LAN address and prefix, the unlock prefix), checked
 * against each other once the schema has passed them.
 *
 * Why `wan[].addresses6` and not IPv6 entries in `wan[].addresses`: every
 * reader of `addresses` (masquerade's first address, the gateway probe, rule
 * bindings by `wanAddress`, the TLS certificate, the data plane's own-address
 * table) takes it as IPv4, and `addresses[0]` is the uplink's primary IPv4
 * address. A separate list leaves all of them as they are (an IPv6 address
 * can never be taken for the primary one by a reader that predates IPv6)
 * and gives IPv6 addresses a type of their own (`addressWords`).
 */

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
} from "../packet/ipv6_address.ts";
import { isIpv6UniqueLocal } from "../packet/ip_text.ts";
import type { ConfigOutput } from "./schema.ts";
import type { Ipv6Config, Ipv6LanConfig, UplinkAddress6, UplinkNpt6 } from "./types.ts";

/** Where problems go: `add(path, reason)`. */
export interface ProblemSink {
  add(path: string, reason: string): void;
}

/**
 * Why `w` cannot be an address (or prefix) the appliance owns and routes on
 * a link, or null: the kernel gives each interface its own link-local
 * address, and the others are never a host's unicast address on the wire.
 */
function notGlobal(w: Uint32Array): string | null {
  if (isIpv6Unspecified(w)) return "is the unspecified address";
  if (isIpv6Loopback(w)) return "is the loopback address";
  if (isIpv6Multicast(w)) return "is multicast (ff00::/8)";
  if (isIpv6LinkLocal(w)) {
    return "is link-local (fe80::/10; the kernel gives each interface its own): a global address is needed";
  }
  if (isIpv4Mapped(w)) return "is IPv4-mapped (::ffff:0:0/96), never on the wire";
  return null;
}

/** True when the two prefixes share an address: the shorter holds the other's network. */
function overlaps(a: Ipv6Prefix, b: Ipv6Prefix): boolean {
  return a.prefix <= b.prefix ? ipv6PrefixContains(a, b.addr) : ipv6PrefixContains(b, a.addr);
}

/** One parsed `addresses6` entry with where it was written. */
interface Placed {
  at: string;
  uplink: string;
  address: UplinkAddress6;
  net: Ipv6Prefix;
}

/**
 * Every uplink's `addresses6`, parsed and checked: global unicast, each
 * address once, and no prefix of one uplink overlapping another uplink's
 * (the connected routes would clash). Indexed like `c.wan`.
 */
function uplinkAddresses6(c: ConfigOutput, report: ProblemSink): Placed[][] {
  const seen: Placed[] = [];
  return c.wan.map((u, i) =>
    u.addresses6.map((written, j) => {
      const at = `wan[${i}].addresses6[${j}]`;
      const [text, len] = written.split("/");
      const words = parseIpv6(text)!, net = parseIpv6Prefix(written)!;
      const address = formatIpv6(words);
      const bad = notGlobal(words);
      if (bad !== null) report.add(at, `${text} ${bad}`);
      const dup = seen.find((p) => p.address.address === address);
      const clash = seen.find((p) => p.uplink !== u.name && overlaps(p.net, net));
      if (dup !== undefined) {
        report.add(at, `${address} is already an address of uplink "${dup.uplink}" (${dup.at})`);
      } else if (clash !== undefined) {
        report.add(
          at,
          `${
            formatIpv6Prefix(net)
          } overlaps uplink "${clash.uplink}"'s ${clash.address.network} (${clash.at})`,
        );
      }
      const placed: Placed = {
        at,
        uplink: u.name,
        address: {
          address,
          addressWords: [...words],
          prefixLength: Number(len),
          network: formatIpv6Prefix(net),
        },
        net,
      };
      seen.push(placed);
      return placed;
    })
  );
}

/**
 * The LAN's IPv6 address and prefix: the prefix written without host bits,
 * global, overlapping no WAN prefix (an address in both would be on two
 * links); the address inside it, global, and not the prefix's all-zero host
 * (the subnet-router anycast address, RFC 4291 §2.6.1).
 */
function lan6(
  lan: { address: string; network: string },
  wan: Placed[],
  report: ProblemSink,
): Ipv6LanConfig {
  const net = parseIpv6Prefix(lan.network)!;
  const written = parseIpv6(lan.network.split("/")[0])!;
  const network = formatIpv6Prefix(net);
  if (written.some((w, i) => w !== net.addr[i])) {
    report.add("ipv6.lan.network", `${lan.network} has host bits set (did you mean ${network}?)`);
  }
  const badNet = notGlobal(net.addr);
  if (badNet !== null) report.add("ipv6.lan.network", `${network} ${badNet}`);
  for (const p of wan) {
    if (!overlaps(p.net, net)) continue;
    const how = net.prefix >= p.net.prefix ? "is inside" : "contains";
    report.add(
      "ipv6.lan.network",
      `${network} ${how} uplink "${p.uplink}"'s ${p.address.network} (${p.at})`,
    );
  }
  const addr = parseIpv6(lan.address)!;
  const address = formatIpv6(addr);
  const badAddr = notGlobal(addr);
  if (badAddr !== null) report.add("ipv6.lan.address", `${lan.address} ${badAddr}`);
  else if (!ipv6PrefixContains(net, addr)) {
    report.add("ipv6.lan.address", `${address} is outside ipv6.lan.network ${network}`);
  } else if (net.prefix < 128 && addr.every((w, i) => w === net.addr[i])) {
    report.add(
      "ipv6.lan.address",
      `${address} is the subnet-router anycast address of ${network} (RFC 4291 §2.6.1): take another`,
    );
  }
  return {
    address,
    addressWords: [...addr],
    network,
    networkWords: [...net.addr],
    prefixLength: net.prefix,
  };
}

/**
 * Every uplink's `npt6` (RFC 6296), indexed like `c.wan`: the outside
 * prefix without host bits, as long as the LAN prefix and at most /64 (the
 * checksum-neutral word lies outside the first 64 bits), global and not
 * unique local (the Internet must route it to the appliance), overlapping
 * no uplink's on-link prefix, the LAN prefix or another uplink's outside
 * prefix (a destination in two would be ambiguous).
 */
function uplinkNpt6(
  c: ConfigOutput,
  wan: Placed[],
  lan: Ipv6LanConfig | null,
  report: ProblemSink,
): (UplinkNpt6 | null)[] {
  const seen: { at: string; uplink: string; net: Ipv6Prefix }[] = [];
  return c.wan.map((u, i) => {
    if (u.npt6 === null) return null;
    const at = `wan[${i}].npt6.outside`, written = u.npt6.outside;
    const net = parseIpv6Prefix(written)!, outside = formatIpv6Prefix(net);
    const problem = (reason: string) => report.add(at, `${outside} ${reason}`);
    if (parseIpv6(written.split("/")[0])!.some((w, k) => w !== net.addr[k])) {
      report.add(at, `${written} has host bits set (did you mean ${outside}?)`);
    }
    const bad = notGlobal(net.addr);
    if (bad !== null) problem(bad);
    else if (isIpv6UniqueLocal(net.addr)) {
      problem("is unique local (fc00::/7): the outside prefix must be one the ISP routes here");
    }
    if (net.prefix > 64) problem("is longer than /64: NPTv6 (RFC 6296) maps prefixes up to /64");
    if (lan !== null && net.prefix !== lan.prefixLength) {
      problem(`is not as long as the LAN prefix ${lan.network} (ipv6.lan.network)`);
    }
    if (
      lan !== null &&
      overlaps(net, { addr: Uint32Array.from(lan.networkWords), prefix: lan.prefixLength })
    ) {
      problem(`overlaps the LAN prefix ${lan.network} (ipv6.lan.network)`);
    }
    const onLink = wan.find((p) => overlaps(p.net, net));
    if (onLink !== undefined) {
      problem(`overlaps uplink "${onLink.uplink}"'s ${onLink.address.network} (${onLink.at})`);
    }
    const other = seen.find((p) => overlaps(p.net, net));
    if (other !== undefined) {
      problem(`overlaps uplink "${other.uplink}"'s outside prefix (${other.at})`);
    }
    seen.push({ at, uplink: u.name, net });
    return { outside, outsideWords: [...net.addr], prefixLength: net.prefix };
  });
}

/**
 * The `ipv6` section and each uplink's IPv6 addresses (indexed like
 * `c.wan`). Enabled, it needs the LAN and at least one WAN address (where
 * knocks arrive). Disabled, what is written is still checked, but not
 * applied, with a note in `notes`.
 */
export function ipv6Section(
  c: ConfigOutput,
  report: ProblemSink,
  notes: ProblemSink,
): { ipv6: Ipv6Config; addresses6: UplinkAddress6[][]; npt6: (UplinkNpt6 | null)[] } {
  const placed = uplinkAddresses6(c, report);
  const all = placed.flat();
  const lan = c.ipv6.lan === undefined ? null : lan6(c.ipv6.lan, all, report);
  const npt6 = uplinkNpt6(c, all, lan, report);
  if (!c.ipv6.enabled) {
    for (const p of all) notes.add(p.at, "is not applied: ipv6.enabled is false");
    if (lan !== null) notes.add("ipv6.lan", "is not applied: ipv6.enabled is false");
    npt6.forEach((n, i) => {
      if (n !== null) notes.add(`wan[${i}].npt6`, "is not applied: ipv6.enabled is false");
    });
    return {
      ipv6: {
        enabled: false,
        lan: null,
        unlockPrefix: c.ipv6.unlockPrefix,
        pairFamilies: c.ipv6.pairFamilies,
      },
      addresses6: c.wan.map(() => []),
      npt6: c.wan.map(() => null),
    };
  }
  if (lan === null) report.add("ipv6.lan", "is required with ipv6.enabled");
  if (all.length === 0) {
    report.add(
      "ipv6.enabled",
      "needs an IPv6 address on at least one uplink (wan[].addresses6), where knocks arrive",
    );
  }
  return {
    ipv6: {
      enabled: true,
      lan,
      unlockPrefix: c.ipv6.unlockPrefix,
      pairFamilies: c.ipv6.pairFamilies,
    },
    addresses6: placed.map((list) => list.map((p) => p.address)),
    npt6,
  };
}
