/**
 * The host side of the appliance: a stateless nftables table that keeps the
 * host closed whether or not the process runs, and the policy routing that
 * hands every packet crossing the appliance to the TUN device.
 *
 * Fail closed: why nftables and not routing rules alone. Routing rules belong
 * to the process's lifetime: when it dies the TUN device goes with it, table
 * 100 loses its route, and the steering rules fall through to the main table,
 * which forwards WAN to LAN unfiltered. A filter table outlives the process,
 * and it must: it is installed before `ip_forward` is switched on, replaced
 * atomically on every start (one `nft -f` transaction: add, delete, define),
 * and left in place on stop and on crash. Its `forward` chain drops every
 * packet that does not enter or leave the TUN, so with the process gone
 * nothing is forwarded between WAN and LAN; its `input` chain drops what
 * reaches the host's own stack from the WAN (everything the TUN does not get:
 * protocols other than tcp/udp/icmp, and with the process gone, everything),
 * so the WAN address answers nothing.
 *
 * Stateless on purpose: no `ct` expression, no nat chain, so the kernel's
 * connection tracking stays off (a SYN flood would fill its table, and the
 * process does its own tracking). Only interface names, addresses, ports and
 * ICMP types are matched; `iifname`/`oifname` match the TUN by name, so the
 * rules hold while it does not exist.
 *
 * Stealth: the kernel answers a locked source in three places before the
 * process decides anything: the forward path into the TUN (ICMP time exceeded
 * for TTL 1), IP option processing (parameter problem) and the local stack
 * for protocols that are not steered (protocol unreachable). The last never
 * happens (the input chain drops first); the first two are ICMP errors the
 * kernel generates itself, which leave through the `output` hook and are
 * dropped there when they go out of the WAN interface. Errors the process
 * translates (a LAN server's port unreachable) are forwarded, not output, and
 * pass. Fragmentation needed is kept: path MTU discovery needs it, and a
 * locked source only meets it if the TUN MTU is below the WAN MTU. A packet
 * of an admitted flow that arrives with TTL 1 is dropped silently too (the
 * kernel will not forward it into the TUN): the appliance is an invisible hop.
 * The process gives back the second decrement (`nat/ttl.ts`), so a forwarded
 * packet loses one hop, as through any router.
 *
 * Spoofed sources: the datapath tells LAN from WAN by source address, so a
 * LAN-side packet with a non-LAN source (or the LAN address itself) is
 * dropped at prerouting, before routing hands it to the knock engine, and so
 * is a WAN-side packet with a LAN or appliance source. Reverse-path filtering
 * alone does not hold: the kernel uses the larger of `all` and the interface's
 * value, and distributions set `all` to loose (2), which accepts any routable
 * source.
 *
 * The steering (see the shared lab notes): the local table moves behind the
 * steering rules, and only tcp/udp/icmp from the WAN are steered so ARP for
 * the WAN addresses still answers. Every WAN interface is steered and
 * bypassed alike, and the nft table matches them all (sets of names).
 *
 * Several uplinks: replies leave by the uplink their flow came in on. An ISP
 * drops packets whose source address is not one of its own (ingress
 * filtering, BCP 38), so a reply from uplink B's address sent to uplink A's
 * gateway (the main table's one default route) never arrives. Each uplink
 * with a gateway gets its own routing table (its connected networks and
 * `default via GATEWAY dev IF`) and one `from ADDRESS lookup TABLE` rule per
 * address; everything the process writes into the TUN with that source (a
 * reply, a masqueraded packet), and what the host sends from it (the
 * management API, the health probe), routes by it. `to LAN_NET lookup main`
 * comes first, so a packet from a WAN address to the LAN (hairpin) still goes
 * to the LAN. Strict reverse-path filtering on a WAN interface passes
 * because of the same rules: the kernel validates the source of a packet
 * arriving on uplink B by routing back to it from the address it was sent to,
 * which the from-rule sends through B's table, out of B.
 *
 * Rule preferences (at most {@linkcode MAX_UPLINKS} uplinks, every steering
 * rule below the local table's 100):
 *
 * | pref | rule |
 * | --- | --- |
 * | 4, 5, 6 | IPv6 only: WAN ICMPv6 errors, link scope, ND (see below) |
 * | 10 | `iif LAN to LAN_ADDRESS lookup local` |
 * | 15 | `iif LAN lookup 100` |
 * | 20 + 5i, 21 + 5i | uplink i: DNS and NTP replies `lookup local` |
 * | 22 + 5i .. 24 + 5i | uplink i: tcp, udp, icmp `lookup 100` |
 * | 100 | `lookup local` (moved from 0) |
 * | 200 | `to LAN_NET lookup main` |
 * | 1000 + i | uplink i: `from ADDRESS lookup TABLE`, one per address |
 *
 * Every rule and route added carries the routing protocol
 * {@linkcode ROUTE_PROTOCOL}, so one `ip rule flush protocol` and one
 * `ip route flush table all proto` remove them whatever configuration (how
 * many uplinks, which tables) installed them; the same for `ip -6`.
 *
 * IPv6 (`ipv6.enabled`; off, the TUN has IPv6 disabled and no IPv6 route
 * reaches it, so nothing IPv6 crosses: the forward chain drops it). On, the
 * IPv6 rules (a list of their own, `ip -6 rule`) mirror the IPv4 ones with
 * the same preferences, and neighbour discovery stays with the kernel:
 * - `to fe80::/10` and `to ff00::/8` look up `local` first (pref 5): ND's
 *   solicitations go to a solicited-node group, router advertisements to
 *   all-nodes, and both link-local; steered, ip6_forward would refuse them.
 * - ICMPv6 from the WAN to the appliance's own WAN addresses looks up
 *   `local` (pref 6): a neighbour's reachability probe (a unicast
 *   solicitation) and its advertisement answering ours arrive there, and
 *   `ip rule` cannot select an ICMPv6 type. The input chain then passes
 *   ND and router advertisements only and drops the rest (`wan-input`), so
 *   the WAN addresses still answer no echo. What is steered from the WAN is
 *   tcp, udp and ICMPv6 to other addresses (a LAN host's, through a pinhole).
 * - ICMPv6 errors to the WAN addresses go to the TUN all the same (pref 4,
 *   ahead of 6): a packet too big about a NAT66 flow is addressed to the WAN
 *   address, and without it path MTU discovery toward a forwarded server
 *   breaks. The prerouting chain marks them by type
 *   ({@linkcode WAN_ICMP6_ERROR_MARK}), the rule steers the mark. Fail
 *   closed: with the process gone the rule finds no route, the packet falls
 *   to pref 6 and the input chain drops it.
 * - The LAN reaches the appliance's LAN address (pref 10) as over IPv4.
 * - Router advertisements keep configuring the WAN: with forwarding on the
 *   kernel ignores them unless `accept_ra` is 2, and switching
 *   `all.forwarding` on purges the default routes they made except on
 *   interfaces with `accept_ra` 2 (`rt6_purge_dflt_routers`), so it is set
 *   on every WAN interface before forwarding.
 * - Multicast listener queries reach the kernel too (input chain): its
 *   reports keep an MLD-snooping switch delivering the solicited-node
 *   group, without which neighbours stop finding the WAN address.
 * The prerouting chain drops spoofed IPv6 sources as IPv4 ones, letting
 * link-local and unspecified (`::`, duplicate address detection) sources
 * through on the LAN.
 * - An uplink's NPTv6 outside prefix (`npt6`) is routed to the appliance by
 *   the ISP, not on-link (no neighbour discovery answers for it): arriving
 *   on the WAN it is steered to the TUN by the uplink's tcp, udp and ICMPv6
 *   rules (22 + 5i ..) like a pinhole's LAN address, and as a source from
 *   the WAN it is spoofed. What the TUN writes from it leaves by its uplink's
 *   IPv6 table (`from OUTSIDE lookup TABLE` at 1000 + i) when the uplink has
 *   a `gateway6`, else by the main table.
 *
 * IPv6 replies by uplink: each uplink with a `gateway6` gets an IPv6 default
 * route in its own table (the IPv4 one's number; an IPv6 table is a table of
 * its own in the kernel) and one `from ADDRESS6 lookup TABLE` rule per
 * `addresses6` entry at the IPv4 rules' preferences, so a NAT66 forward's
 * replies (whose source the process rewrites to the WAN address) leave by the
 * uplink their flow came in on. IPv6 from the LAN is not translated: its
 * source is a LAN address, so the LAN prefix has one rule of its own
 * ({@linkcode LAN_EGRESS6_PREF}) to the table of the first masquerade uplink
 * with a gateway6 whose IPv6 probe answers ({@linkcode lanEgress6Uplink}),
 * replaced as the probes' health changes; an upstream's ingress filter takes
 * the LAN prefix only if it is routed there, which is the operator's part.
 * Without any gateway6 IPv6 leaves by the main table (router advertisements
 * or static routes), as before.
 *
 * | pref | IPv6 rule (besides the IPv4 ones') |
 * | --- | --- |
 * | 200 | `to LAN6_NET lookup main` |
 * | 1000 + i | uplink i: `from ADDRESS6 lookup TABLE`, one per `addresses6` |
 * | 1100 | `from LAN6_NET lookup TABLE` of the LAN's egress uplink |
 */

/** One uplink as the routing sees it (a structural subset of the configuration's uplink). */
export interface RoutingUplink {
  name: string;
  interface: string;
  /** Its addresses (dotted quads) with their connected networks (`198.51.100.0/26`). */
  addresses: readonly { address: string; network: string }[];
  /** Its IPv6 addresses (`2001:db8::1`, with `2001:db8::/64`); used only with `ipv6.enabled`. */
  addresses6?: readonly { address: string; network: string }[];
  /** NPTv6: the LAN prefix leaves it as `outside` (a prefix routed to the appliance). */
  npt6?: { outside: string } | null;
  /** Next hop of its default route; null: on-link only (no table, no rules by source). */
  gateway: string | null;
  /** IPv6 next hop (a link-local one is on `interface`); absent or null: no IPv6 table. */
  gateway6?: string | null;
  /** The IPv6 probe (its echo replies pass the input chain); absent or null: none. */
  probe6?: { target: string } | null;
  /** Its routing table number. */
  table: number;
}

/** The interfaces and addresses the host setup is built from. */
export interface RoutingPlan {
  tun: string;
  /** The WAN uplinks, at least one and at most {@linkcode MAX_UPLINKS}. */
  uplinks: readonly RoutingUplink[];
  lanInterface: string;
  lanAddress: string;
  /** The LAN network, CIDR. */
  lanNetwork: string;
  /**
   * DNS servers the appliance queries over the WAN (IPv4 and IPv6); empty
   * when they are unknown (a local resolver), then replies from any source
   * are taken.
   */
  resolvers: string[];
  /** The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`). */
  ephemeralPorts: [number, number];
  /** Routing table number used for steering. */
  table?: number;
  /** IPv6 through the TUN; absent or not enabled: IPv6 does not cross, as before. */
  ipv6?: RoutingIpv6;
  /** Uplink names masquerade prefers, in order (the LAN's IPv6 egress too); absent: all. */
  masquerade?: readonly string[];
}

/** The IPv6 side of the plan (a structural subset of the configuration's `ipv6`). */
export interface RoutingIpv6 {
  enabled: boolean;
  /** The appliance's LAN address (`2001:db8:1::1`) and the LAN prefix; null when not set. */
  lan: { address: string; network: string } | null;
}

/** The nftables table the fail-closed rules live in. */
export const NFT_TABLE = "inet knockgate";

/** UDP services whose replies reach the appliance itself from the WAN: DNS and NTP. */
export const LOCAL_UDP_SERVICES = [53, 123] as const;

/** Uplinks the rule numbering has room for. */
export const MAX_UPLINKS = 16;

/** The routing protocol number every rule and route of ours carries (unassigned in rt_protos). */
export const ROUTE_PROTOCOL = 75;

/** Preference of the rule that lets the LAN reach the appliance's LAN address. */
const LAN_LOCAL_PREF = 10;
/** Preference of the LAN's steering rule. */
const LAN_STEER_PREF = 15;
/** Preference of uplink 0's first rule; each uplink has a block of five. */
const UPLINK_PREF = 20;
const UPLINK_BLOCK = 5;
/** Where the local table's rule moves to (from 0). */
const LOCAL_PREF = 100;
/** Preference of `to LAN_NET lookup main`, before the rules by source. */
const LAN_MAIN_PREF = 200;
/** Preference of uplink i's rules by source address: 1000 + i. */
const FROM_PREF = 1000;

/** The preference of uplink `i`'s DNS bypass (`+ 1` NTP) and tcp steering (`+ 3` udp, `+ 4` icmp). */
export function uplinkPrefs(i: number): { bypass: number; steer: number; from: number } {
  const base = UPLINK_PREF + UPLINK_BLOCK * i;
  return { bypass: base, steer: base + 2, from: FROM_PREF + i };
}

/** `"a", "b"` quoted for nft; interface names are quoted so any name parses. */
function q(s: string): string {
  return JSON.stringify(s);
}

/** One nft value, or an anonymous set of several. */
function nftSet(items: readonly string[]): string {
  const unique = [...new Set(items)];
  return unique.length === 1 ? unique[0] : `{ ${unique.join(", ")} }`;
}

/** Every WAN address of the plan. */
function wanAddresses(p: RoutingPlan): string[] {
  return p.uplinks.flatMap((u) => u.addresses.map((a) => a.address));
}

/** The IPv6 LAN when IPv6 crosses the appliance, else null. */
function ipv6Lan(p: Pick<RoutingPlan, "ipv6">): { address: string; network: string } | null {
  return p.ipv6?.enabled ? p.ipv6.lan : null;
}

/** Every WAN IPv6 address of the plan (none unless IPv6 is enabled). */
function wanAddresses6(p: RoutingPlan): string[] {
  if (!p.ipv6?.enabled) return [];
  return p.uplinks.flatMap((u) => (u.addresses6 ?? []).map((a) => a.address));
}

/** Link-local unicast (RFC 4291 §2.5.6) and multicast (§2.7): the link's own, never steered. */
const LINK_SCOPE6 = ["fe80::/10", "ff00::/8"] as const;

/**
 * The fail-closed ruleset as one `nft -f` transaction: it creates the table
 * if absent, deletes it and defines it anew, so a start replaces whatever an
 * earlier run (or an earlier version) left without a window in which the
 * host is open.
 */
export function failClosedRuleset(p: RoutingPlan): string {
  const wan = nftSet(p.uplinks.map((u) => q(u.interface)));
  const lan = q(p.lanInterface), tun = q(p.tun);
  const [lo, hi] = p.ephemeralPorts;
  const dns = `iifname ${wan} udp sport 53`, toEphemeral = `udp dport ${lo}-${hi}`;
  const ours = [p.lanNetwork, ...wanAddresses(p)].join(", ");
  return `add table ${NFT_TABLE}
delete table ${NFT_TABLE}
table ${NFT_TABLE} {
  chain prerouting {
    type filter hook prerouting priority raw; policy accept;
    iifname ${lan} ip saddr != ${p.lanNetwork} counter drop comment "lan-spoofed"
    iifname ${lan} ip saddr ${p.lanAddress} counter drop comment "lan-spoofed"
    iifname ${wan} ip saddr { ${ours} } counter drop comment "wan-spoofed"${spoofed6(p, wan, lan)}${
    icmp6ErrorMark(p, wan)
  }
  }
  chain input {
    type filter hook input priority filter; policy accept;
${dnsReplies(p.resolvers, dns, toEphemeral)}
    iifname ${wan} udp sport 123 udp dport ${lo}-${hi} accept comment "ntp-reply"
    iifname ${wan} icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert${
    ipv6Lan(p) === null ? "" : ", mld-listener-query"
  } } accept${probe6Replies(p)}
    iifname ${wan} counter drop comment "wan-input"
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    iifname ${tun} accept
    oifname ${tun} accept
    counter comment "not-through-tun"
  }
  chain output {
    type filter hook output priority filter; policy accept;
    oifname ${wan} icmp type { time-exceeded, parameter-problem } counter drop comment "stealth"
    oifname ${wan} icmp type destination-unreachable icmp code != frag-needed counter drop comment "stealth"
    oifname ${wan} icmpv6 type { destination-unreachable, time-exceeded, parameter-problem } counter drop comment "stealth"
  }
}
`;
}

/**
 * The input rule(s) taking DNS replies: from the known resolvers of each
 * family (`ip saddr` matches IPv4 only, `ip6 saddr` IPv6 only), or from any
 * source when none is known.
 */
function dnsReplies(resolvers: readonly string[], dns: string, toEphemeral: string): string {
  const v4 = resolvers.filter((r) => !r.includes(":"));
  const v6 = resolvers.filter((r) => r.includes(":"));
  const accept = (from: string) => `    ${dns}${from} ${toEphemeral} accept comment "dns-reply"`;
  if (v4.length === 0 && v6.length === 0) return accept("");
  return [
    ...(v4.length > 0 ? [accept(` ip saddr { ${v4.join(", ")} }`)] : []),
    ...(v6.length > 0 ? [accept(` ip6 saddr { ${v6.join(", ")} }`)] : []),
  ].join("\n");
}

/** The uplinks whose IPv6 table is installed: IPv6 on, a gateway6 and an address to route from. */
function gatewayed6(p: Pick<RoutingPlan, "uplinks" | "ipv6">): RoutingUplink[] {
  if (ipv6Lan(p) === null) return [];
  return p.uplinks.filter((u) => (u.gateway6 ?? null) !== null && (u.addresses6 ?? []).length > 0);
}

/**
 * The input rules that let the IPv6 probe's echo replies reach its socket
 * (`device/icmp6_socket.ts`): from the probe's target to the uplink's first
 * IPv6 address on its interface, echo replies only. Stateless as the rest:
 * an echo reply is never answered, so accepting one gives nothing away.
 */
function probe6Replies(p: RoutingPlan): string {
  if (ipv6Lan(p) === null) return "";
  return p.uplinks.flatMap((u) => {
    const from = u.addresses6?.[0]?.address;
    const target = u.probe6?.target ?? null;
    if (from === undefined || target === null) return [];
    return [
      `\n    iifname ${
        q(u.interface)
      } ip6 saddr ${target} ip6 daddr ${from} icmpv6 type echo-reply accept comment "probe6-reply"`,
    ];
  }).join("");
}

/**
 * The prerouting rules against spoofed IPv6 sources, as the IPv4 ones; on
 * the LAN, link-local sources (neighbour discovery, router solicitations)
 * and `::` (duplicate address detection, RFC 4862 §5.4) are the link's own.
 */
function spoofed6(p: RoutingPlan, wan: string, lan: string): string {
  const l6 = ipv6Lan(p);
  if (l6 === null) return "";
  const outside = p.uplinks.flatMap((u) => (u.npt6 ? [u.npt6.outside] : []));
  const ours = [l6.network, ...wanAddresses6(p), ...outside].join(", ");
  return `
    iifname ${lan} ip6 saddr != { ${l6.network}, fe80::/10, ::/128 } counter drop comment "lan-spoofed"
    iifname ${lan} ip6 saddr ${l6.address} counter drop comment "lan-spoofed"
    iifname ${wan} ip6 saddr { ${ours} } counter drop comment "wan-spoofed"`;
}

/**
 * The ICMPv6 error types the kernel hands to the TUN when they come to a WAN
 * address (RFC 4443 §3): the process matches them to a flow or drops them.
 */
const ICMP6_ERRORS = "destination-unreachable, packet-too-big, time-exceeded, parameter-problem";

/**
 * The mark on an ICMPv6 error from the WAN to a WAN address, which the rule
 * at {@linkcode WAN_ICMP6_ERROR_PREF} steers to the TUN ahead of the ND rule
 * ("KG" in ASCII: an arbitrary value no other part of the host sets).
 */
export const WAN_ICMP6_ERROR_MARK = 0x4b47;
const MARK = `0x${WAN_ICMP6_ERROR_MARK.toString(16)}`;

/**
 * The prerouting rule that marks ICMPv6 errors to the WAN addresses (the
 * routing rules cannot select an ICMPv6 type, nft can). Set in the raw
 * prerouting hook, before the route lookup; with the process gone its rule
 * has no route and the input chain drops them (`wan-input`).
 */
function icmp6ErrorMark(p: RoutingPlan, wan: string): string {
  const ours = wanAddresses6(p);
  if (ipv6Lan(p) === null || ours.length === 0) return "";
  return `
    iifname ${wan} ip6 daddr ${nftSet(ours)} icmpv6 type { ${ICMP6_ERRORS} } meta mark set ${MARK}`;
}

/** The command that applies a ruleset given on its standard input. */
export const NFT_APPLY = ["nft", "-f", "-"];

const PROTO = String(ROUTE_PROTOCOL);

/** `ip rule add pref PREF SELECTORS... lookup TABLE protocol OURS`. */
function rule(pref: number, sel: readonly string[], table: string | number): string[] {
  return [
    "ip",
    "rule",
    "add",
    "pref",
    String(pref),
    ...sel,
    "lookup",
    String(table),
    "protocol",
    PROTO,
  ];
}

/** `ip route replace ROUTE... table TABLE proto OURS`. */
function route(table: number | string, ...spec: string[]): string[] {
  return ["ip", "route", "replace", ...spec, "table", String(table), "proto", PROTO];
}

/** The dotted quad `s` as an unsigned 32-bit number (no validation: the configuration did it). */
function u32(s: string): number {
  return s.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

/** True when `addr` lies in `cidr` (`a.b.c.d/n`). */
function inNetwork(addr: string, cidr: string): boolean {
  const [net, len] = cidr.split("/");
  const size = 2 ** (32 - Number(len));
  return Math.floor(u32(addr) / size) === Math.floor(u32(net) / size);
}

/**
 * The uplink's table: each connected network (source: its first address
 * there) and the default route. A gateway outside every connected network
 * (an address configured as /32) is declared on-link.
 */
function uplinkTableCommands(u: RoutingUplink, gateway: string): string[][] {
  const cmds: string[][] = [];
  const seen = new Set<string>();
  for (const a of u.addresses) {
    if (seen.has(a.network)) continue;
    seen.add(a.network);
    cmds.push(route(u.table, a.network, "dev", u.interface, "src", a.address));
  }
  const onLink = u.addresses.some((a) => inNetwork(gateway, a.network)) ? [] : ["onlink"];
  cmds.push(route(u.table, "default", "via", gateway, "dev", u.interface, ...onLink));
  return cmds;
}

/**
 * The commands (argv lists) that install the steering and the per-uplink
 * tables; run after the fail-closed table and after `clearSteeringCommands`.
 * Throws a RangeError for more than {@linkcode MAX_UPLINKS} uplinks.
 */
export function routingCommands(p: RoutingPlan): string[][] {
  if (p.uplinks.length === 0 || p.uplinks.length > MAX_UPLINKS) {
    throw new RangeError(`routing: 1 to ${MAX_UPLINKS} uplinks, not ${p.uplinks.length}`);
  }
  const t = String(p.table ?? 100);
  const steer = p.uplinks.flatMap((u, i) => {
    const at = uplinkPrefs(i).steer, iif = ["iif", u.interface];
    return ["tcp", "udp", "icmp"].map((proto, k) => rule(at + k, [...iif, "ipproto", proto], t));
  });
  const gatewayed = p.uplinks.filter((u) => u.gateway !== null);
  const replies = gatewayed.length === 0 ? [] : [
    rule(LAN_MAIN_PREF, ["to", p.lanNetwork], "main"),
    ...p.uplinks.flatMap((u, i) =>
      u.gateway === null ? [] : [
        ...uplinkTableCommands(u, u.gateway),
        ...u.addresses.map((a) => rule(uplinkPrefs(i).from, ["from", a.address], u.table)),
      ]
    ),
  ];
  return [
    route(t, "default", "dev", p.tun),
    // Ours (tagged): the flush in clearSteeringCommands removes it once the rule at 0 is back.
    rule(LOCAL_PREF, [], "local"),
    ["ip", "rule", "del", "pref", "0", "lookup", "local"],
    // LAN hosts still reach the appliance's own LAN address (management API).
    rule(LAN_LOCAL_PREF, ["iif", p.lanInterface, "to", p.lanAddress], "local"),
    rule(LAN_STEER_PREF, ["iif", p.lanInterface], t),
    ...steer,
    ...replies,
    // Off, the TUN takes no IPv6 route; on, it must have IPv6 before its route (below).
    ["sysctl", "-qw", `net.ipv6.conf.${p.tun}.disable_ipv6=${ipv6Lan(p) === null ? 1 : 0}`],
    ["sysctl", "-qw", "net.ipv4.conf.all.accept_local=1"],
    ["sysctl", "-qw", `net.ipv4.conf.${p.tun}.accept_local=1`],
    ["sysctl", "-qw", `net.ipv4.conf.${p.tun}.rp_filter=0`],
    ["sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"],
    // Early demux would tie a WAN packet to the appliance's own socket (the management API)
    // before routing, and the forward path drops such packets instead of steering them.
    // IPv6 input reads this same sysctl (ip6_rcv_finish_core): it covers both families.
    ["sysctl", "-qw", "net.ipv4.ip_early_demux=0"],
    // The datapath tells WAN from LAN by source address; the nft table drops spoofed sources
    // whatever `all` says, strict reverse-path filtering is the second line.
    ...p.uplinks.map((u) => ["sysctl", "-qw", `net.ipv4.conf.${u.interface}.rp_filter=1`]),
    ["sysctl", "-qw", `net.ipv4.conf.${p.lanInterface}.rp_filter=1`],
    ...routing6Commands(p, t),
    // Last: the fail-closed table is in place before anything is forwarded.
    ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
  ];
}

/** `rule` for the IPv6 rule list. */
function rule6(pref: number, sel: readonly string[], table: string | number): string[] {
  return ["ip", "-6", ...rule(pref, sel, table).slice(1)];
}

/** `route` in the IPv6 routing tables. */
function route6(table: number | string, ...spec: string[]): string[] {
  return ["ip", "-6", ...route(table, ...spec).slice(1)];
}

/** Preference of the rules that keep link-scope destinations with the kernel (IPv6). */
const LINK_LOCAL_PREF = 5;
/** Preference of the rules that steer marked ICMPv6 errors to the WAN addresses to the TUN. */
const WAN_ICMP6_ERROR_PREF = 4;
/** Preference of the rules that keep ICMPv6 to the WAN addresses with the kernel (ND). */
const WAN_ICMP6_PREF = 6;

/**
 * The IPv6 steering (see the module comment), empty unless IPv6 is enabled
 * with a LAN: the same preferences as IPv4 in the IPv6 rule list, link-scope
 * and ND traffic kept local before them, `accept_ra` 2 on the WAN, and
 * forwarding on last.
 */
function routing6Commands(p: RoutingPlan, t: string): string[][] {
  const lan = ipv6Lan(p);
  if (lan === null) return [];
  const steer = p.uplinks.flatMap((u, i) => {
    const at = uplinkPrefs(i).steer, iif = ["iif", u.interface];
    return ["tcp", "udp", "ipv6-icmp"].map((proto, k) =>
      rule6(at + k, [...iif, "ipproto", proto], t)
    );
  });
  const ndLocal = p.uplinks.flatMap((u) =>
    (u.addresses6 ?? []).map((a) =>
      rule6(WAN_ICMP6_PREF, ["iif", u.interface, "ipproto", "ipv6-icmp", "to", a.address], "local")
    )
  );
  const errorsSteered = p.uplinks.filter((u) => (u.addresses6 ?? []).length > 0).map((u) =>
    rule6(WAN_ICMP6_ERROR_PREF, ["iif", u.interface, "fwmark", MARK], t)
  );
  return [
    route6(t, "default", "dev", p.tun),
    rule6(LOCAL_PREF, [], "local"),
    ["ip", "-6", "rule", "del", "pref", "0", "lookup", "local"],
    ...errorsSteered,
    ...LINK_SCOPE6.map((net) => rule6(LINK_LOCAL_PREF, ["to", net], "local")),
    ...ndLocal,
    rule6(LAN_LOCAL_PREF, ["iif", p.lanInterface, "to", lan.address], "local"),
    rule6(LAN_STEER_PREF, ["iif", p.lanInterface], t),
    ...steer,
    ...replies6(p, lan.network),
    // Before forwarding: RAs keep their default routes and keep being heard (module comment).
    ...p.uplinks.map((u) => ["sysctl", "-qw", `net.ipv6.conf.${u.interface}.accept_ra=2`]),
    ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
  ];
}

/** Preference of the LAN prefix's IPv6 egress rule, after every uplink's rules by source. */
export const LAN_EGRESS6_PREF = 1100;

/**
 * The per-uplink IPv6 tables and rules by source (see the module comment),
 * and the LAN prefix's egress rule with every probe up; empty without a
 * gateway6.
 */
function replies6(p: RoutingPlan, lanNetwork: string): string[][] {
  const gw = gatewayed6(p);
  if (gw.length === 0) return [];
  const egress = lanEgress6Uplink(p, p.uplinks.map(() => true));
  return [
    rule6(LAN_MAIN_PREF, ["to", lanNetwork], "main"),
    ...p.uplinks.flatMap((u, i) => {
      if (!gw.includes(u)) return [];
      const nets = [...new Set(u.addresses6!.map((a) => a.network))];
      return [
        ...nets.map((net) => route6(u.table, net, "dev", u.interface)),
        route6(u.table, "default", "via", u.gateway6!, "dev", u.interface),
        ...u.addresses6!.map((a) => rule6(uplinkPrefs(i).from, ["from", a.address], u.table)),
        // NPTv6: LAN sources the process moved into the outside prefix leave by its uplink.
        ...(u.npt6 ? [rule6(uplinkPrefs(i).from, ["from", u.npt6.outside], u.table)] : []),
      ];
    }),
    ...(egress === null ? [] : [rule6(LAN_EGRESS6_PREF, ["from", lanNetwork], egress.table)]),
  ];
}

/**
 * The uplink the LAN's IPv6 leaves by, given each uplink's IPv6 health
 * (index = uplink order; an uplink without a probe counts as up): the first
 * of the masquerade list with a gateway6 that is up; all down, the first
 * with a gateway6; null when none has one (the main table routes it).
 */
export function lanEgress6Uplink(
  p: Pick<RoutingPlan, "uplinks" | "masquerade" | "ipv6">,
  up6: readonly boolean[],
): RoutingUplink | null {
  const gw = gatewayed6(p);
  const order = (p.masquerade ?? p.uplinks.map((u) => u.name))
    .map((name) => gw.find((u) => u.name === name))
    .filter((u): u is RoutingUplink => u !== undefined);
  return order.find((u) => up6[p.uplinks.indexOf(u)] !== false) ?? order[0] ?? null;
}

/**
 * The commands that move the LAN prefix's IPv6 egress rule from table
 * `from` to table `to`: the new rule first, then the old one deleted, so no
 * packet finds neither (of two rules at one preference the older matches
 * first, so the old one serves until it goes).
 */
export function lanEgress6Commands(p: RoutingPlan, from: number, to: number): string[][] {
  const lan = ipv6Lan(p);
  if (lan === null || from === to) return [];
  const sel = ["pref", String(LAN_EGRESS6_PREF), "from", lan.network, "lookup"];
  return [
    rule6(LAN_EGRESS6_PREF, ["from", lan.network], to),
    ["ip", "-6", "rule", "del", ...sel, String(from)],
  ];
}

/**
 * Rules that let replies to the appliance's own DNS and NTP queries bypass
 * the TUN (TOTP needs a synchronised clock): UDP from the service port to an
 * ephemeral port, where the kernel binds the client sockets of resolvers and
 * of systemd-timesyncd and chrony, on every WAN interface. Anything else from
 * port 53 or 123 goes to the TUN and is dropped there as a packet of no flow;
 * the input chain of the fail-closed table narrows DNS further to the known
 * resolvers (read at start: a changed resolv.conf takes a restart). No kernel
 * connection tracking is switched on (a SYN flood would fill it).
 */
export function localBypassCommands(p: RoutingPlan): string[][] {
  const [lo, hi] = p.ephemeralPorts;
  const families = ipv6Lan(p) === null ? [rule] : [rule, rule6];
  return families.flatMap((add) =>
    p.uplinks.flatMap((u, i) =>
      LOCAL_UDP_SERVICES.map((port, k) =>
        add(uplinkPrefs(i).bypass + k, [
          "iif",
          u.interface,
          "ipproto",
          "udp",
          "sport",
          String(port),
          "dport",
          `${lo}-${hi}`,
        ], "local")
      )
    )
  );
}

/**
 * The commands that remove every rule and route of ours, whatever plan
 * installed them: run (errors ignored) first on every start, so a start
 * after a crash (whose rules stayed) does not add them twice, and on stop.
 * The local table's rule goes back to 0 first, so the host never lacks one;
 * the flush then removes ours at 100 with the rest.
 */
export function clearSteeringCommands(_p?: RoutingPlan): string[][] {
  // IPv6 too, whether enabled or not: the crashed run may have had it.
  return [[], ["-6"]].flatMap((family) => [
    // As the kernel's own (`proto kernel`): an identical rule already there refuses the add.
    ["ip", ...family, "rule", "add", "pref", "0", "lookup", "local", "protocol", "kernel"],
    ["ip", ...family, "rule", "flush", "protocol", PROTO],
    ["ip", ...family, "route", "flush", "table", "all", "proto", PROTO],
  ]);
}

/**
 * The commands that undo `routingCommands` and `localBypassCommands` (best
 * effort, for a clean stop). The fail-closed table stays, and so does
 * `ip_forward`: the table keeps the host closed.
 */
export function unroutingCommands(p?: RoutingPlan): string[][] {
  return clearSteeringCommands(p);
}

/**
 * The name servers of a resolv.conf, IPv4 and IPv6 (RFC 5952 text, a zone
 * such as `%eth0` dropped: the nft match is by address), loopback ones left
 * out (a local resolver's upstreams are not named there).
 */
export function parseResolvers(resolvConf: string): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split("\n")) {
    const m = line.match(/^\s*nameserver\s+([0-9A-Fa-f:.]+)(?:%[\w.-]+)?\s*(?:#.*)?$/);
    const addr = m === null ? null : resolverAddress(m[1]);
    if (addr !== null && !out.includes(addr)) out.push(addr);
  }
  return out;
}

/** A name server's address in canonical text, or null (malformed, loopback). */
function resolverAddress(text: string): string | null {
  if (!text.includes(":")) {
    const ok = /^\d{1,3}(?:\.\d{1,3}){3}$/.test(text) &&
      text.split(".").every((o) => Number(o) <= 255);
    return ok && !text.startsWith("127.") ? text : null;
  }
  // The WHATWG URL parser writes an IPv6 host in RFC 5952 text, or refuses it.
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  return host === "::" || host === "::1" || host.startsWith("::ffff:") ? null : host;
}

/** Parses `net.ipv4.ip_local_port_range` ("32768\t60999"); the kernel default when unreadable. */
export function parsePortRange(text: string): [number, number] {
  const m = text.trim().match(/^(\d+)\s+(\d+)$/);
  const lo = m ? Number(m[1]) : 0, hi = m ? Number(m[2]) : 0;
  return m && lo >= 1 && lo <= hi && hi <= 65535 ? [lo, hi] : [32768, 60999];
}

/**
 * The resolvers the host queries: /etc/resolv.conf, and behind the
 * systemd-resolved stub (127.0.0.53) its upstream list.
 */
export function systemResolvers(): string[] {
  const read = (f: string) => {
    try {
      return Deno.readTextFileSync(f);
    } catch {
      return "";
    }
  };
  const found = parseResolvers(read("/etc/resolv.conf"));
  return found.length > 0 ? found : parseResolvers(read("/run/systemd/resolve/resolv.conf"));
}

/** The kernel's ephemeral port range in this network namespace. */
export function systemEphemeralPorts(): [number, number] {
  try {
    return parsePortRange(Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range"));
  } catch {
    return parsePortRange("");
  }
}

/** The command that prints the fail-closed table with its counters as JSON. */
export const NFT_LIST_JSON = ["nft", "-j", "list", "table", "inet", "knockgate"];

/**
 * The packets each commented counter rule of the fail-closed table dropped
 * (`lan-spoofed`, `wan-spoofed`, `wan-input`, `not-through-tun`, `stealth`),
 * summed by comment, from `nft -j list table` output; empty when unparsable.
 */
export function parseNftCounters(json: string): Record<string, number> {
  const out: Record<string, number> = {};
  let doc: { nftables?: { rule?: { comment?: string; expr?: unknown[] } }[] };
  try {
    doc = JSON.parse(json);
  } catch {
    return out;
  }
  for (const item of doc.nftables ?? []) {
    const rule = item.rule;
    if (!rule?.comment || !Array.isArray(rule.expr)) continue;
    for (const e of rule.expr as { counter?: { packets?: number } }[]) {
      const n = e?.counter?.packets;
      if (typeof n === "number") out[rule.comment] = (out[rule.comment] ?? 0) + n;
    }
  }
  return out;
}
