/**
 * The shell's tables (cli-table3, no colours so output is the same on a
 * terminal and in a pipe): a generic table and key/value list, and the
 * views of unlocks, users, rules, flows and status.
 */
import Table from "cli-table3";
import type {
  FleetNode,
  Flow,
  Forward,
  OpenPorts,
  Status,
  StoreHealth,
  Unlock,
  Uplink,
  User,
} from "./api_types.ts";
import {
  formatAgo,
  formatBytes,
  formatDrift,
  formatDuration,
  formatRange,
  formatTime,
  formatUntil,
  formatWan,
} from "./format.ts";

type Cell = string | number;

/** A table with a header row. */
export function renderTable(head: string[], rows: Cell[][]): string {
  const t = new Table({ head, style: { head: [], border: [], compact: true } });
  t.push(...rows.map((r) => r.map(String)));
  return t.toString();
}

/**
 * The store's state in one line: `kv file`, `etcd connected (revision 42)`,
 * or `etcd UNREACHABLE since ...: changes refused, forwarding continues`.
 */
export function storeText(h: StoreHealth, now: number): string {
  if (h.backend === "kv") return "kv file";
  if (h.connected) return `etcd connected (revision ${h.revision})`;
  const since = h.lastContactMs === 0 ? "start" : formatAgo(h.lastContactMs, now);
  return `etcd UNREACHABLE (last contact ${since}): changes refused, forwarding continues`;
}

/** The fleet: every node, up or down by its heartbeat, this one marked. */
export function nodesTable(nodes: readonly FleetNode[], now: number): string {
  if (nodes.length === 0) return "No nodes registered.";
  return renderTable(
    ["Node", "State", "Heartbeat", "Management", "Version", "Flows", "Unlocks"],
    nodes.map((n) => [
      n.self ? `${n.name} (this)` : n.name,
      n.up ? "up" : "DOWN",
      formatAgo(n.heartbeatAt, now),
      n.url,
      n.version,
      n.flows,
      n.unlocks,
    ]),
  );
}

/** A two-column table of names and values. */
export function renderPairs(pairs: [string, Cell][]): string {
  const t = new Table({ style: { head: [], border: [], compact: true } });
  t.push(...pairs.map(([k, v]) => [k, String(v)]));
  return t.toString();
}

/**
 * The unlocked IPs, as the router's `exec portknock` lists them, with the WAN
 * address each knock arrived on (an unlock opens rules on every uplink).
 */
export function unlocksTable(unlocks: readonly Unlock[], now: number): string {
  if (unlocks.length === 0) return "No IP has passed the knock.";
  const rows = [...unlocks].sort((a, b) => a.unlockedAt - b.unlockedAt).map((u) => [
    u.ip,
    u.wanAddress === "" ? "-" : u.wanAddress,
    u.user,
    formatTime(u.unlockedAt),
    formatAgo(u.lastSeen, now),
    formatUntil(u.expiresAt, now),
    formatDrift(u.drift),
    u.flows,
    formatBytes(u.bytes),
  ]);
  return renderTable(
    ["IP", "WAN address", "User", "Since", "Last seen", "Expires", "Drift", "Flows", "Bytes"],
    rows,
  );
}

/** A user's MFA state in a word. */
function mfaState(u: User): string {
  if (!u.mfa.enrolled) return "pending";
  return u.mfa.rotating ? "rotating" : "enrolled";
}

/** A user's knock settings in a word or three. */
function knockText(u: User): string {
  const k = u.knock;
  return k.enabled ? `${k.firstPort} +${k.length} ${k.transport}` : "off";
}

/** Every user, one per row. */
export function usersTable(users: readonly User[]): string {
  if (users.length === 0) return "No users.";
  return renderTable(
    ["Name", "Role", "MFA", "Knock", "Allowed rules"],
    users.map((u) => [u.name, u.role, mfaState(u), knockText(u), u.allowedRules.join(", ")]),
  );
}

/** One user in detail. */
export function userDetail(u: User): string {
  return renderPairs([
    ["Name", u.name],
    ["Role", u.role],
    ["MFA", mfaState(u)],
    ["Knock", u.knock.enabled ? "enabled" : "disabled"],
    ["Knock first port", u.knock.firstPort],
    ["Knock length", u.knock.length],
    ["Knock transport", u.knock.transport],
    ["Allowed rules", u.allowedRules.join(", ")],
    ["Created", formatTime(u.createdAt)],
    ["Updated", formatTime(u.updatedAt)],
    ["Version", u.version],
  ]);
}

function usersText(users: readonly string[]): string {
  return users.length === 0 ? "any" : users.join(", ");
}

/** Every rule of both kinds, one per row. */
export function rulesTable(forwards: readonly Forward[], open: readonly OpenPorts[]): string {
  if (forwards.length + open.length === 0) return "No rules.";
  const rows: Cell[][] = [
    ...forwards.map((f) => [
      f.name,
      f.privateAddress.includes(":") ? "nat66" : "forward",
      f.enabled ? "yes" : "no",
      formatWan(f),
      `${f.protocol} ${formatRange(f.publicPorts)}`,
      hostPort(f.privateAddress, formatRange(f.privatePorts)),
      f.enforceKnock ? "yes" : "no",
      usersText(f.users),
    ]),
    ...open.map((o) => [
      o.name,
      o.privateAddress.includes(":") ? "pinhole" : "open",
      o.enabled ? "yes" : "no",
      formatWan(o),
      o.ports.map((p) => `${p.protocol} ${formatRange(p.ports)}`).join(", "),
      [o.privateAddress, ...(o.outsideAddresses ?? []).map((a) => `${a.address} (${a.uplink})`)]
        .join(", "),
      o.enforceKnock ? "yes" : "no",
      usersText(o.users),
    ]),
  ];
  return renderTable(["Name", "Kind", "Enabled", "WAN", "Public", "To", "Knock", "Users"], rows);
}

/** The WAN uplinks: addresses, gateway, health, management and masquerade. */
export function uplinksTable(uplinks: readonly Uplink[]): string {
  if (uplinks.length === 0) return "No uplinks.";
  const state = (u: Uplink) => {
    if (u.status === null) return "unknown";
    if (!u.status.up) return "down";
    return u.status.probing ? "up" : "up (no probe)";
  };
  const probes = (u: Uplink) =>
    u.status?.probing ? `${u.status.received}/${u.status.sent} answered` : "-";
  const masquerade = (u: Uplink) =>
    u.status?.masquerade
      ? "in use"
      : u.masqueradeOrder === null
      ? "no"
      : `choice ${u.masqueradeOrder + 1}`;
  return renderTable(
    [
      "Uplink",
      "Interface",
      "Addresses",
      "Gateway",
      "State",
      "Probes",
      "Management",
      "Masquerade",
      "IPv6 gateway",
    ],
    uplinks.map((u) => [
      u.name,
      u.interface,
      [...u.addresses, ...(u.addresses6 ?? [])].join(", "),
      u.gateway ?? "on-link",
      state(u),
      probes(u),
      u.management ? "yes" : "no",
      masquerade(u),
      ipv6GatewayText(u),
    ]),
  );
}

/**
 * An uplink's IPv6 next hop and its probe: `fe80::1 up 4/4 answered, LAN egress`;
 * `-` without a gateway6 or an IPv6 probe.
 */
export function ipv6GatewayText(u: Uplink): string {
  const p = u.status?.ipv6 ?? null;
  if ((u.gateway6 ?? null) === null && p === null) return "-";
  const health = p === null
    ? "no probe"
    : `${p.up ? "up" : "down"} ${p.received}/${p.sent} answered`;
  return `${u.gateway6 ?? p!.target} ${health}${u.lanIpv6Egress ? ", LAN egress" : ""}`;
}

const PROTO: Record<number, string> = { 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6" };

/** `192.0.2.12:8080`, or `[2001:db8::12]:8080` for an IPv6 address. */
function hostPort(addr: string, port: number | string): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/**
 * What NAT did to a flow, from its two tuples: the reply's source is where
 * the destination went (a forward, NAT66), its destination what the source
 * became (masquerade, NPTv6); "-" for neither.
 */
function translation(f: Flow): string {
  const out: string[] = [];
  if (f.replySrc !== f.origDst || f.replySrcPort !== f.origDstPort) {
    out.push(hostPort(f.replySrc, f.replySrcPort));
  }
  if (f.replyDst !== f.origSrc || f.replyDstPort !== f.origSrcPort) {
    out.push(`from ${hostPort(f.replyDst, f.replyDstPort)}`);
  }
  return out.length === 0 ? "-" : out.join(", ");
}

/** Tracked flows, one per row. */
export function flowsTable(flows: readonly Flow[]): string {
  if (flows.length === 0) return "No tracked flows.";
  return renderTable(
    ["Proto", "State", "Source", "Destination", "Translated to", "Rule", "Packets", "Bytes", "TTL"],
    flows.map((f) => [
      PROTO[f.proto] ?? String(f.proto),
      f.state,
      hostPort(f.origSrc, f.origSrcPort),
      hostPort(f.origDst, f.origDstPort),
      translation(f),
      f.rule ?? "-",
      f.packets,
      formatBytes(f.bytes),
      `${f.expiresInSec}s`,
    ]),
  );
}

/** The appliance at a glance: overview, counters, drops, conntrack. */
export function statusText(s: Status): string {
  const c = s.clock;
  const sync = c.synchronised === null
    ? "unknown"
    : c.synchronised
    ? "synchronised"
    : "NOT synchronised";
  const overview = renderPairs([
    ["Uptime", formatDuration(s.uptimeSec * 1000)],
    ["Unlocked IPs", s.unlocks],
    ["Store", storeText(s.store, c.now)],
    ["Clock", `${sync} (${c.detail})`],
    ["Appliance time", formatTime(c.now)],
  ]);
  const counters = renderTable(["Counter", "Value"], Object.entries(s.counters.stats));
  const dropRows = Object.entries(s.counters.drops).filter(([, n]) => n > 0);
  const drops = dropRows.length === 0
    ? "No drops."
    : renderTable(["Drop reason", "Packets"], dropRows);
  const conntrack = renderTable(["Conntrack", "Value"], Object.entries(s.conntrack));
  return [overview, counters, drops, conntrack].join("\n");
}
