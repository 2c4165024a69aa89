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
 * the WAN address still answers.
 */

/** The interfaces and addresses the host setup is built from. */
export interface RoutingPlan {
  tun: string;
  wanInterface: string;
  lanInterface: string;
  wanAddress: string;
  lanAddress: string;
  /** The LAN network, CIDR. */
  lanNetwork: string;
  /**
   * DNS servers the appliance queries over the WAN (IPv4); empty when they
   * are unknown (a local resolver), then replies from any source are taken.
   */
  resolvers: string[];
  /** The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`). */
  ephemeralPorts: [number, number];
  /** Routing table number used for steering. */
  table?: number;
}

/** The nftables table the fail-closed rules live in. */
export const NFT_TABLE = "inet knockgate";

/** UDP services whose replies reach the appliance itself from the WAN: DNS and NTP. */
export const LOCAL_UDP_SERVICES = [53, 123] as const;

/** Preference of the first local bypass rule (one per service). */
const BYPASS_PREF = 25;

/** `"a", "b"` quoted for nft; interface names are quoted so any name parses. */
function q(s: string): string {
  return JSON.stringify(s);
}

/**
 * The fail-closed ruleset as one `nft -f` transaction: it creates the table
 * if absent, deletes it and defines it anew, so a start replaces whatever an
 * earlier run (or an earlier version) left without a window in which the
 * host is open.
 */
export function failClosedRuleset(p: RoutingPlan): string {
  const wan = q(p.wanInterface), lan = q(p.lanInterface), tun = q(p.tun);
  const [lo, hi] = p.ephemeralPorts;
  const dnsFrom = p.resolvers.length > 0 ? ` ip saddr { ${p.resolvers.join(", ")} }` : "";
  return `add table ${NFT_TABLE}
delete table ${NFT_TABLE}
table ${NFT_TABLE} {
  chain prerouting {
    type filter hook prerouting priority raw; policy accept;
    iifname ${lan} ip saddr != ${p.lanNetwork} counter drop comment "lan-spoofed"
    iifname ${lan} ip saddr ${p.lanAddress} counter drop comment "lan-spoofed"
    iifname ${wan} ip saddr { ${p.lanNetwork}, ${p.wanAddress} } counter drop comment "wan-spoofed"
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname ${wan} udp sport 53${dnsFrom} udp dport ${lo}-${hi} accept comment "dns-reply"
    iifname ${wan} udp sport 123 udp dport ${lo}-${hi} accept comment "ntp-reply"
    iifname ${wan} icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept
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

/** The command that applies a ruleset given on its standard input. */
export const NFT_APPLY = ["nft", "-f", "-"];

/** The commands (argv lists) that install the steering; run after the fail-closed table. */
export function routingCommands(p: RoutingPlan): string[][] {
  const t = String(p.table ?? 100);
  const steer = (
    pref: number,
    ...sel: string[]
  ) => ["ip", "rule", "add", "pref", String(pref), ...sel, "lookup", t];
  return [
    ["ip", "route", "replace", "default", "dev", p.tun, "table", t],
    ["ip", "rule", "add", "pref", "100", "lookup", "local"],
    ["ip", "rule", "del", "pref", "0", "lookup", "local"],
    // LAN hosts still reach the appliance's own LAN address (management API).
    [
      "ip",
      "rule",
      "add",
      "pref",
      "10",
      "iif",
      p.lanInterface,
      "to",
      p.lanAddress,
      "lookup",
      "local",
    ],
    steer(20, "iif", p.lanInterface),
    steer(30, "iif", p.wanInterface, "ipproto", "tcp"),
    steer(31, "iif", p.wanInterface, "ipproto", "udp"),
    steer(32, "iif", p.wanInterface, "ipproto", "icmp"),
    ["sysctl", "-qw", `net.ipv6.conf.${p.tun}.disable_ipv6=1`],
    ["sysctl", "-qw", "net.ipv4.conf.all.accept_local=1"],
    ["sysctl", "-qw", `net.ipv4.conf.${p.tun}.accept_local=1`],
    ["sysctl", "-qw", `net.ipv4.conf.${p.tun}.rp_filter=0`],
    ["sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"],
    // Early demux would tie a WAN packet to the appliance's own socket (the management API)
    // before routing, and the forward path drops such packets instead of steering them.
    ["sysctl", "-qw", "net.ipv4.ip_early_demux=0"],
    // The datapath tells WAN from LAN by source address; the nft table drops spoofed sources
    // whatever `all` says, strict reverse-path filtering is the second line.
    ["sysctl", "-qw", `net.ipv4.conf.${p.wanInterface}.rp_filter=1`],
    ["sysctl", "-qw", `net.ipv4.conf.${p.lanInterface}.rp_filter=1`],
    // Last: the fail-closed table is in place before anything is forwarded.
    ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
  ];
}

/**
 * Rules that let replies to the appliance's own DNS and NTP queries bypass
 * the TUN (TOTP needs a synchronised clock): UDP from the service port to an
 * ephemeral port, where the kernel binds the client sockets of resolvers and
 * of systemd-timesyncd and chrony. Anything else from port 53 or 123 goes to
 * the TUN and is dropped there as a packet of no flow; the input chain of the
 * fail-closed table narrows DNS further to the known resolvers (read at
 * start: a changed resolv.conf takes a restart). No kernel
 * connection tracking is switched on (a SYN flood would fill it).
 */
export function localBypassCommands(p: RoutingPlan): string[][] {
  const [lo, hi] = p.ephemeralPorts;
  return LOCAL_UDP_SERVICES.map((port, i) => [
    "ip",
    "rule",
    "add",
    "pref",
    String(BYPASS_PREF + i),
    "iif",
    p.wanInterface,
    "ipproto",
    "udp",
    "sport",
    String(port),
    "dport",
    `${lo}-${hi}`,
    "lookup",
    "local",
  ]);
}

/**
 * The commands that remove the steering and the bypass but leave the local
 * table's rules as they are: run first on every start, so a start after a
 * crash (whose rules stayed) does not add them twice.
 */
export function clearSteeringCommands(p: RoutingPlan): string[][] {
  const t = String(p.table ?? 100);
  return [
    ...LOCAL_UDP_SERVICES.map((_, i) => ["ip", "rule", "del", "pref", String(BYPASS_PREF + i)]),
    ...[10, 20, 30, 31, 32].map((pref) => ["ip", "rule", "del", "pref", String(pref)]),
    ["ip", "route", "flush", "table", t],
  ];
}

/**
 * The commands that undo `routingCommands` and `localBypassCommands` (best
 * effort, for a clean stop). The fail-closed table stays, and so does
 * `ip_forward`: the table keeps the host closed.
 */
export function unroutingCommands(p: RoutingPlan): string[][] {
  return [
    ...clearSteeringCommands(p),
    ["ip", "rule", "add", "pref", "0", "lookup", "local"],
    ["ip", "rule", "del", "pref", "100", "lookup", "local"],
  ];
}

/**
 * The IPv4 name servers of a resolv.conf, loopback ones left out (a local
 * resolver's upstreams are not named there).
 */
export function parseResolvers(resolvConf: string): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split("\n")) {
    const m = line.match(/^\s*nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*(?:#.*)?$/);
    if (!m || m[1].startsWith("127.") || out.includes(m[1])) continue;
    if (m[1].split(".").every((o) => Number(o) <= 255)) out.push(m[1]);
  }
  return out;
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
