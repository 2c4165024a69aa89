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

/** UDP services whose replies reach the appliance itself from the WAN: DNS and NTP. */
export const LOCAL_UDP_SERVICES = [53, 123] as const;

/**
 * Rules that let replies to the appliance's own DNS and NTP queries bypass
 * the TUN (TOTP needs a synchronised clock). Only UDP, by source port: the
 * appliance has no UDP listener on the WAN, so nothing is exposed, and no
 * kernel connection tracking is switched on (a SYN flood would fill it).
 */
export function localBypassCommands(p: RoutingPlan): string[][] {
  return LOCAL_UDP_SERVICES.map((port, i) => [
    "ip",
    "rule",
    "add",
    "pref",
    String(25 + i),
    "iif",
    p.wanInterface,
    "ipproto",
    "udp",
    "sport",
    String(port),
    "lookup",
    "local",
  ]);
}

/** The commands that undo `routingCommands` (best effort, for a clean stop). */
export function unroutingCommands(p: RoutingPlan): string[][] {
  const t = String(p.table ?? 100);
  return [
    ...LOCAL_UDP_SERVICES.map((_, i) => ["ip", "rule", "del", "pref", String(25 + i)]),
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
