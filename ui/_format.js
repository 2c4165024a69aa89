// @ts-check
/**
 * Formatting of the server-rendered pages and fragments: sizes, times, port
 * ranges (and their parsing from form text), table cells, event summaries.
 * Plain JavaScript with JSDoc types, no DOM and no Deno APIs.
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/**
 * A byte count with a binary unit, e.g. `1.5 KiB`.
 * @param {number} n
 * @returns {string}
 */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 1024) return `${Math.max(0, Math.round(n || 0))} B`;
  let v = n;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${UNITS[i]}`;
}

/**
 * An integer with thousands separators, e.g. `12,345`.
 * @param {number} n
 * @returns {string}
 */
export function formatCount(n) {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** @param {number} n */
function pad(n) {
  return String(n).padStart(2, "0");
}

/**
 * A moment in UTC, e.g. `2026-01-01 12:00:05 UTC` (the appliance's own clock).
 * @param {number} ms milliseconds since the epoch
 * @returns {string}
 */
export function formatTime(ms) {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return "-";
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

/**
 * A length of time in words, e.g. `45 s`, `12 min`, `1 h 05 min`, `2 d 3 h`.
 * @param {number} sec
 * @returns {string}
 */
export function formatDuration(sec) {
  const s = Math.max(0, Math.round(sec));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/**
 * How long ago `ms` was, e.g. `12 s ago`.
 * @param {number} ms
 * @param {number} now
 * @returns {string}
 */
export function formatAgo(ms, now) {
  return now - ms < 5000 ? "just now" : `${formatDuration((now - ms) / 1000)} ago`;
}

/**
 * How long until `ms`, e.g. `in 59 min`; `expired` once past.
 * @param {number} ms
 * @param {number} now
 * @returns {string}
 */
export function formatIn(ms, now) {
  return ms <= now ? "expired" : `in ${formatDuration((ms - now) / 1000)}`;
}

/**
 * A TOTP drift in steps: `0`, `+1` or `-1`.
 * @param {number} steps
 * @returns {string}
 */
export function formatDrift(steps) {
  return steps > 0 ? `+${steps}` : String(steps);
}

/**
 * The name of an IP protocol number.
 * @param {number} proto
 * @returns {string}
 */
export function protoName(proto) {
  return proto === 6
    ? "TCP"
    : proto === 17
    ? "UDP"
    : proto === 1
    ? "ICMP"
    : proto === 58
    ? "ICMPv6"
    : `proto ${proto}`;
}

/**
 * A port range as typed in the forms: `52201` or `52210-52219`.
 * @param {{start: number, end: number}} r
 * @returns {string}
 */
export function formatPortRange(r) {
  return r.start === r.end ? String(r.start) : `${r.start}-${r.end}`;
}

/**
 * Parses `52201` or `52210-52219` (spaces allowed around the dash).
 * @param {string} text
 * @returns {{start: number, end: number} | string} the range, or why it is wrong
 */
export function parsePortRange(text) {
  const m = /^\s*(\d{1,5})\s*(?:[-\u2013]\s*(\d{1,5})\s*)?$/.exec(text);
  if (!m) return "Enter a port (1-65535) or a range such as 52210-52219";
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  for (const p of [start, end]) {
    if (p < 1 || p > 65535) return `Port ${p} is out of range 1-65535`;
  }
  if (start > end) return `The range ${start}-${end} is reversed`;
  return { start, end };
}

const SEVERITIES = [
  "emergency",
  "alert",
  "critical",
  "error",
  "warning",
  "notice",
  "info",
  "debug",
];

/**
 * The syslog name of a severity number.
 * @param {number} n
 * @returns {string}
 */
export function severityName(n) {
  return SEVERITIES[n] ?? String(n);
}

/**
 * @typedef {{ seq?: number, type: string, time: number, severity: number,
 *   [field: string]: unknown }} EventView
 */

/**
 * @param {EventView} e
 * @param {string} key
 * @returns {string}
 */
function str(e, key) {
  const v = e[key];
  return v === undefined || v === null ? "" : String(v);
}

/** @type {Record<string, (e: EventView) => string>} */
const SUMMARIES = {
  "knock-success": (e) =>
    `${str(e, "ip")} unlocked by ${str(e, "user")} (drift ${formatDrift(Number(e.drift))})`,
  "knock-failure": (e) =>
    `Knock from ${str(e, "ip")} failed: ${str(e, "reason")}` +
    (e.user ? ` (user ${str(e, "user")})` : ""),
  "knock-replay": (e) =>
    `Replayed knock of ${str(e, "user")} from ${str(e, "ip")} (first used by ${str(e, "firstIp")})`,
  "knock-penalty": (e) =>
    `${str(e, "ip")} ignored until ${formatTime(Number(e.until))} after repeated failures`,
  "unlock-expired": (e) =>
    `Unlock of ${str(e, "ip")} (${str(e, "user")}) expired: ${str(e, "reason")}`,
  "unlock-revoked": (e) =>
    `Unlock of ${str(e, "ip")} (${str(e, "user")}) revoked by ${str(e, "by")}`,
  // The router's syslog line: [Port Unlock] P:6 src:port->dst:port #private:port
  "flow-admitted": (e) =>
    `[Port Unlock] P:${str(e, "proto")} ${hostPort(str(e, "src"), str(e, "srcPort"))}->` +
    `${hostPort(str(e, "dst"), str(e, "dstPort"))} ` +
    `#${hostPort(str(e, "privateAddr"), str(e, "privatePort"))}` +
    ` rule ${str(e, "rule")}${e.user ? ` user ${str(e, "user")}` : ""}`,
  "config-changed": (e) => `${str(e, "detail")} (${str(e, "source")})`,
  "clock-unsynchronised": (e) => `Clock not synchronised: ${str(e, "detail")}`,
  "appliance-start": (e) =>
    `Appliance ${str(e, "version")} started (WAN ${str(e, "wan")}, LAN ${str(e, "lan")})`,
  "appliance-stop": (e) => `Appliance stopping: ${str(e, "reason")}`,
  "packet-drop-summary": (e) => {
    const drops = /** @type {Record<string, number>} */ (e.drops ?? {});
    const parts = Object.entries(drops).map(([k, v]) => `${k} ${formatCount(v)}`);
    return `Drops in ${formatDuration(Number(e.intervalMs) / 1000)}: ${parts.join(", ") || "none"}`;
  },
  "management-login": (e) =>
    `Sign-in of ${str(e, "user")} from ${str(e, "ip")} ${
      e.success ? "succeeded" : `failed (${str(e, "reason") || "unknown"})`
    }`,
};

/**
 * One line describing an event, e.g. `203.0.113.10 unlocked by alice (drift 0)`.
 * @param {EventView} e
 * @returns {string}
 */
export function eventSummary(e) {
  const f = SUMMARIES[e.type];
  if (f) return f(e);
  const rest = Object.entries(e).filter(([k]) => !["seq", "type", "time", "severity"].includes(k));
  return rest.map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join(" ");
}

/**
 * Text a user searched for matches an event (its type, summary or any field), case-insensitive.
 * @param {EventView} e
 * @param {string} query
 * @returns {boolean}
 */
export function eventMatches(e, query) {
  const q = query.trim().toLowerCase();
  if (q === "") return true;
  return `${e.type} ${eventSummary(e)} ${JSON.stringify(e)}`.toLowerCase().includes(q);
}

/**
 * One cell of a table row: its column label (shown beside the value on narrow
 * screens), its text, and an optional class and tooltip.
 * @typedef {{ label: string, text: string, cls?: string, title?: string }} CellSpec
 */

/**
 * @typedef {{ ip: string, user: string, wanAddress: string, unlockedAt: number,
 *   lastSeen: number, expiresAt: number, drift: number, flows: number, bytes: number }} UnlockView
 */

/** Column labels of the unlocked-IP table (without the action column). */
export const UNLOCK_HEADERS = [
  "IP",
  "WAN address",
  "User",
  "Since",
  "Last seen",
  "Expires",
  "Drift",
  "Flows",
  "Bytes",
];

/**
 * The cells of one unlocked IP; the first is the row header.
 * @param {UnlockView} u
 * @param {number} now the appliance's time
 * @returns {CellSpec[]}
 */
export function unlockCells(u, now) {
  const driftNote = u.drift === 0
    ? "Knocked with the current code"
    : `Knocked with the code ${Math.abs(u.drift)} step(s) ${u.drift < 0 ? "behind" : "ahead"}`;
  return [
    { label: "IP", text: u.ip, cls: "mono" },
    {
      label: "WAN address",
      text: u.wanAddress === "" ? "-" : u.wanAddress,
      cls: "mono",
      title: "The WAN address the knock arrived on; the unlock opens rules on every uplink",
    },
    { label: "User", text: u.user },
    { label: "Since", text: formatTime(u.unlockedAt) },
    { label: "Last seen", text: formatAgo(u.lastSeen, now), title: formatTime(u.lastSeen) },
    { label: "Expires", text: formatIn(u.expiresAt, now), title: formatTime(u.expiresAt) },
    { label: "Drift", text: formatDrift(u.drift), cls: "num", title: driftNote },
    { label: "Flows", text: formatCount(u.flows), cls: "num" },
    { label: "Bytes", text: formatBytes(u.bytes), cls: "num" },
  ];
}

/**
 * @typedef {{ proto: number, state: string, origSrc: string, origSrcPort: number,
 *   origDst: string, origDstPort: number, replySrc: string, replySrcPort: number,
 *   replyDst: string, replyDstPort: number, packets: number, bytes: number,
 *   expiresInSec: number, rule: string | null, assured: boolean }} FlowView
 */

/** Column labels of the tracked-flow table. */
export const FLOW_HEADERS = [
  "Protocol",
  "From",
  "To",
  "Translated to",
  "State",
  "Packets",
  "Bytes",
  "Rule",
  "Expires",
];

/**
 * @param {string} addr
 * @param {number} port
 * @param {number} proto
 */
function endpoint(addr, port, proto) {
  return proto === 1 || proto === 58 ? addr : hostPort(addr, port);
}

/**
 * What NAT did to a flow, read from its two tuples: the reply's source is
 * where the destination was translated to (a forward, NAT66), the reply's
 * destination what the source became (masquerade, NPTv6); "-" for neither.
 * @param {FlowView} f
 * @returns {string}
 */
export function flowTranslation(f) {
  const out = [];
  if (f.replySrc !== f.origDst || f.replySrcPort !== f.origDstPort) {
    out.push(endpoint(f.replySrc, f.replySrcPort, f.proto));
  }
  if (f.replyDst !== f.origSrc || f.replyDstPort !== f.origSrcPort) {
    out.push(`from ${endpoint(f.replyDst, f.replyDstPort, f.proto)}`);
  }
  return out.length === 0 ? "-" : out.join(", ");
}

/**
 * `192.0.2.12:8080`, or `[2001:db8::12]:8080` for an IPv6 address (RFC 5952 §6).
 * @param {string} addr
 * @param {number | string} port
 * @returns {string}
 */
export function hostPort(addr, port) {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/**
 * The cells of one tracked flow; the first is the row header.
 * @param {FlowView} f
 * @returns {CellSpec[]}
 */
export function flowCells(f) {
  return [
    { label: "Protocol", text: protoName(f.proto) },
    { label: "From", text: endpoint(f.origSrc, f.origSrcPort, f.proto), cls: "mono" },
    { label: "To", text: endpoint(f.origDst, f.origDstPort, f.proto), cls: "mono" },
    { label: "Translated to", text: flowTranslation(f), cls: "mono" },
    { label: "State", text: f.assured ? `${f.state} (assured)` : f.state },
    { label: "Packets", text: formatCount(f.packets), cls: "num" },
    { label: "Bytes", text: formatBytes(f.bytes), cls: "num" },
    { label: "Rule", text: f.rule ?? "-" },
    { label: "Expires", text: `in ${formatDuration(f.expiresInSec)}` },
  ];
}

/** @type {Record<string, string>} */
const STAT_LABELS = {
  rx_packets: "Packets received",
  rx_bytes: "Data received",
  tx_packets: "Packets sent",
  tx_bytes: "Data sent",
  fast_path_packets: "Fast-path packets",
  slow_path_packets: "Slow-path packets",
  flows_created: "Flows created",
  flows_admitted_by_knock: "Flows admitted by a knock",
  unlocks: "Unlocks",
  fragments: "Fragments",
  icmp_errors_translated: "ICMP errors translated",
  drops: "Packets dropped",
};

/**
 * The traffic counters as label/value pairs, in the data plane's order.
 * @param {Record<string, number>} stats
 * @returns {[string, string][]}
 */
export function statRows(stats) {
  return Object.entries(stats).map(([k, v]) => [
    STAT_LABELS[k] ?? k,
    k.endsWith("_bytes") ? formatBytes(v) : formatCount(v),
  ]);
}

/** @type {Record<string, string>} */
const DROP_LABELS = {
  "no-flow": "No flow (stray packet)",
  "no-rule": "No rule (closed port)",
  locked: "Locked (needs a knock)",
  knock: "Knock packets (consumed)",
  penalised: "Penalised source",
  "table-full": "Flow table full",
  "invalid-tcp": "Invalid TCP",
  "fragment-orphan": "Orphan fragment",
  protocol: "Unsupported protocol",
  "icmp-unmatched": "Unmatched ICMP",
  "not-for-us": "Not for the WAN address",
  "lan-local": "LAN-local",
  "nat-exhausted": "NAT ports exhausted",
  "write-error": "Device write error",
};

/**
 * The drop reasons as label/count pairs, largest first.
 * @param {Record<string, number>} drops
 * @returns {[string, string][]}
 */
export function dropRows(drops) {
  return Object.entries(drops).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1])
    .map(([k, v]) => [DROP_LABELS[k] ?? k, formatCount(v)]);
}

/**
 * @typedef {{ uptimeSec: number, unlocks: number, conntrack: Record<string, number>,
 *   counters: { stats: Record<string, number>, drops: Record<string, number> } }} StatusView
 */

/**
 * The dashboard's summary figures.
 * @param {StatusView} s
 * @returns {[string, string][]}
 */
export function summaryItems(s) {
  const size = s.conntrack.size ?? 0;
  const cap = s.conntrack.capacity;
  return [
    ["Unlocked IPs", formatCount(s.unlocks)],
    ["Tracked flows", cap ? `${formatCount(size)} of ${formatCount(cap)}` : formatCount(size)],
    ["Packets dropped", formatCount(s.counters.stats.drops ?? 0)],
    ["Uptime", formatDuration(s.uptimeSec)],
  ];
}

/**
 * @typedef {{ protocol: "tcp" | "udp" | "both", ports: { start: number, end: number } }} PortEntry
 */

/**
 * The ports of an open-ports rule as typed in its form: `tcp 80, both 53, udp 5000-5010`.
 * @param {PortEntry[]} entries
 * @returns {string}
 */
export function formatPortList(entries) {
  return entries.map((e) => `${e.protocol} ${formatPortRange(e.ports)}`).join(", ");
}

/**
 * The WAN address a rule listens on, as the rule tables show it: `all`,
 * `isp-a` (every address of that uplink) or `isp-a 198.51.100.2`.
 * @param {{ uplink: string, wanAddress: string }} r
 * @returns {string}
 */
export function formatWan(r) {
  if (r.uplink === "all") return "all";
  return r.wanAddress === "all" ? r.uplink : `${r.uplink} ${r.wanAddress}`;
}

/**
 * Parses a port list such as `tcp 80, udp 5000-5010, both 53` (a bare port means tcp).
 * @param {string} text
 * @returns {PortEntry[] | string} the entries, or why the text is wrong
 */
export function parsePortList(text) {
  const parts = text.split(/[,;\n]/).map((p) => p.trim()).filter((p) => p !== "");
  if (parts.length === 0) return "Enter at least one port, e.g. tcp 80";
  /** @type {PortEntry[]} */
  const out = [];
  for (const part of parts) {
    const m = /^(?:(tcp|udp|both)\s*[: ]\s*)?(.+)$/i.exec(part);
    const protocol = /** @type {PortEntry["protocol"]} */ ((m?.[1] ?? "tcp").toLowerCase());
    const range = parsePortRange(m?.[2] ?? "");
    if (typeof range === "string") return `"${part}": ${range}`;
    out.push({ protocol, ports: range });
  }
  return out;
}

/** Column labels of the event table. */
export const EVENT_HEADERS = ["Time", "Type", "Severity", "Details"];

/**
 * The cells of one event; the first is the row header.
 * @param {EventView} e
 * @returns {CellSpec[]}
 */
export function eventCells(e) {
  const sev = severityName(e.severity);
  return [
    { label: "Time", text: formatTime(e.time), cls: "nowrap" },
    { label: "Type", text: e.type, cls: "mono" },
    { label: "Severity", text: sev, cls: `sev sev-${sev}` },
    { label: "Details", text: eventSummary(e), cls: "wrap" },
  ];
}
