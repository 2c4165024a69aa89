/**
 * Policy routing that hands every packet crossing the appliance to the TUN
 * device, so the Deno process sees and decides each one; what the process
 * writes back matches no steering rule and is routed by the kernel as usual.
 * See shared lab notes: the local table moves behind the steering rules, and
 * only tcp/udp/icmp from the WAN are steered so ARP for the WAN address still
 * answers.
 */

/** The interfaces and addresses the routing is built from. */
export interface RoutingPlan {
  tun: string;
  wanInterface: string;
  lanInterface: string;
  lanAddress: string;
  /** Routing table number used for steering. */
  table?: number;
}

/** The commands (argv lists) that install the steering; idempotent where `ip` allows. */
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
    ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
    ["sysctl", "-qw", `net.ipv6.conf.${p.tun}.disable_ipv6=1`],
    ["sysctl", "-qw", "net.ipv4.conf.all.accept_local=1"],
    ["sysctl", "-qw", `net.ipv4.conf.${p.tun}.accept_local=1`],
    ["sysctl", "-qw", `net.ipv4.conf.${p.tun}.rp_filter=0`],
    ["sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"],
    // Early demux would tie a WAN packet to the appliance's own socket (the management API)
    // before routing, and the forward path drops such packets instead of steering them.
    ["sysctl", "-qw", "net.ipv4.ip_early_demux=0"],
    // The datapath tells WAN from LAN by source address: refuse spoofed LAN sources on the WAN.
    ["sysctl", "-qw", `net.ipv4.conf.${p.wanInterface}.rp_filter=1`],
  ];
}

/** Connection mark of the appliance's own outbound connections ("KG"). */
export const LOCAL_CONN_MARK = "0x4b47";

/**
 * nftables commands that let replies to the appliance's own outbound
 * connections (NTP, DNS, updates) bypass the TUN: such connections are
 * marked when they leave, and their replies arriving on the WAN carry the
 * mark to a rule that delivers them locally ahead of the steering rules.
 */
export function localBypassCommands(p: RoutingPlan): string[][] {
  const nft = (...args: string[]) => ["nft", ...args];
  return [
    nft("add", "table", "ip", "knockgate"),
    nft("add", "chain", "ip", "knockgate", "out", "{ type filter hook output priority 0 ; }"),
    nft(
      "add",
      "chain",
      "ip",
      "knockgate",
      "pre",
      "{ type filter hook prerouting priority -150 ; }",
    ),
    nft(
      "add",
      "rule",
      "ip",
      "knockgate",
      "out",
      "ct",
      "direction",
      "original",
      "ct",
      "mark",
      "set",
      LOCAL_CONN_MARK,
    ),
    nft(
      "add",
      "rule",
      "ip",
      "knockgate",
      "pre",
      "iifname",
      p.wanInterface,
      "ct",
      "direction",
      "reply",
      "ct",
      "mark",
      LOCAL_CONN_MARK,
      "meta",
      "mark",
      "set",
      LOCAL_CONN_MARK,
    ),
    [
      "ip",
      "rule",
      "add",
      "pref",
      "25",
      "iif",
      p.wanInterface,
      "fwmark",
      LOCAL_CONN_MARK,
      "lookup",
      "local",
    ],
  ];
}

/** The commands that undo `routingCommands` (best effort, for a clean stop). */
export function unroutingCommands(p: RoutingPlan): string[][] {
  const t = String(p.table ?? 100);
  return [
    ["nft", "delete", "table", "ip", "knockgate"],
    ["ip", "rule", "del", "pref", "25"],
    ["ip", "rule", "add", "pref", "0", "lookup", "local"],
    ["ip", "rule", "del", "pref", "100", "lookup", "local"],
    ["ip", "rule", "del", "pref", "10"],
    ["ip", "rule", "del", "pref", "20"],
    ["ip", "rule", "del", "pref", "30"],
    ["ip", "rule", "del", "pref", "31"],
    ["ip", "rule", "del", "pref", "32"],
    ["ip", "route", "flush", "table", t],
  ];
}
