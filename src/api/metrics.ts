/**
 * `/metrics` in the Prometheus text exposition format (version 0.0.4): the
 * data plane's counters (read live from shared memory), the knock engine's,
 * per-rule traffic, failed sign-ins, the host firewall's drops and the
 * appliance's own state. Counters end in `_total`, units are in the names.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  DROP_COUNT,
  dropName,
  KNOCK_FAILURE_BASE,
  KNOCK_FAILURE_REASONS,
  KNOCK_STAT_BASE,
  KNOCK_STATS,
  MAX_RULE_IDS,
  RULE_BASE,
  Stat,
} from "../datapath/counters.ts";
import type { RuleIdName, UplinkStatus } from "../datapath/messages.ts";
import type { ClockHealth } from "../host/clock_health.ts";
import { ANY_ROLE, requireRole } from "./auth.ts";
import { errors, newRouter, SIGNED_IN } from "./_router.ts";
import type { SignInFailures } from "./sign_in_failures.ts";
import type { StoreHealth } from "../store/store_kv.ts";
import { APPLIANCE_VERSION } from "./version.ts";
import type { ApiDeps, AppEnv } from "./types.ts";
import { uplinkStatuses } from "./uplinks.ts";

/** Content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What the metrics are made of. */
export interface MetricsInput {
  counters: Float64Array;
  unlocks: number;
  conntrack: Record<string, number>;
  uptimeSec: number;
  /** The rules by stable id; rules without one are not listed. */
  rules?: RuleIdName[];
  /** Failed sign-ins by reason. */
  signInFailures?: [string, number][];
  /** The host firewall's packets by rule comment; omitted when not read. */
  host?: Record<string, number>;
  /** true/false when known; null or absent when the clock's state cannot be told. */
  clockSynchronised?: boolean | null;
  /** The uplinks' health; omitted when the data plane cannot tell. */
  uplinks?: UplinkStatus[] | null;
  /** Labels of `knockgate_build_info`. */
  build?: { version: string; deno: string; commit?: string };
  /** Each data-plane Worker's counters, in TUN queue order (their sum is `counters`). */
  workers?: Float64Array[];
  /** The store backend's state and the time it is judged at (ms since the epoch). */
  store?: { health: StoreHealth; now: number };
}

type Sample = [labels: string, value: number];

/** The data plane's running counts: slot, metric name, help. */
const DATAPLANE: [number, string, string][] = [
  [
    Stat.RxPackets,
    "rx_packets_total",
    "Packets the data plane read from the TUN device, both directions",
  ],
  [Stat.RxBytes, "rx_bytes_total", "Bytes (IP packets) the data plane read from the TUN device"],
  [
    Stat.TxPackets,
    "tx_packets_total",
    "Packets the data plane forwarded or delivered to the appliance",
  ],
  [Stat.TxBytes, "tx_bytes_total", "Bytes (IP packets) the data plane forwarded or delivered"],
  [
    Stat.FastPath,
    "fast_path_packets_total",
    "Packets of tracked flows rewritten from their flow entry alone",
  ],
  [
    Stat.SlowPath,
    "slow_path_packets_total",
    "Packets without a tracked flow that went through rule lookup and the knock gate",
  ],
  [Stat.FlowsCreated, "flows_created_total", "Flows added to the connection tracking table"],
  [
    Stat.FlowsAdmittedByKnock,
    "flows_admitted_by_knock_total",
    "New flows to knock-enforcing rules let in because their source had knocked",
  ],
  [
    Stat.Fragments,
    "fragments_total",
    "IPv4 fragments the data plane received, first and later ones",
  ],
  [
    Stat.IcmpErrorsTranslated,
    "icmp_errors_translated_total",
    "ICMP errors about tracked flows translated and passed on",
  ],
  [
    Stat.PickedUp,
    "tcp_picked_up_total",
    "Mid-stream TCP connections taken up without a handshake (after a restart or failover)",
  ],
  [
    Stat.HandedOff,
    "handed_off_packets_total",
    "Packets a queue's tracker Worker handed to the admission Worker (new flows, knocks)",
  ],
];

/** Per-queue counts (label `queue`): slot, metric name, help. */
const PER_QUEUE: [number, string, string][] = [
  [Stat.RxPackets, "queue_rx_packets_total", "Packets each TUN queue's Worker read"],
  [
    Stat.FastPath,
    "queue_fast_path_packets_total",
    "Packets of tracked flows each queue's Worker forwarded from the shared flow table",
  ],
  [
    Stat.HandedOff,
    "queue_handed_off_packets_total",
    "Packets each tracker Worker handed to the admission Worker (queue 0)",
  ],
  [
    Stat.HandoffReceived,
    "queue_handoff_received_packets_total",
    "Packets the admission Worker took from the trackers' handoff rings",
  ],
];

/** The knock engine's counts, by `KNOCK_STATS` key: metric name, help. */
const KNOCK: Record<(typeof KNOCK_STATS)[number], [string, string]> = {
  knocks: [
    "knock_packets_total",
    "Packets the knock verifier consumed as knocks, retransmissions included",
  ],
  replays: [
    "knock_replays_total",
    "Completed sequences refused as replays: their TOTP step was already used from another IP, or after its unlock ended",
  ],
  penalties: [
    "knock_penalties_total",
    "Penalties started: a source failed too often and its knocks are ignored for the penalty time (overflow bucket included)",
  ],
  penalisedKnocks: [
    "knock_penalised_total",
    "Sequence starts ignored because the source is serving a penalty",
  ],
  throttledAttempts: [
    "knock_throttled_total",
    "Sequence starts refused because the user's attempt budget for the TOTP step was spent",
  ],
  strays: [
    "knock_strays_total",
    "Unrelated packets a sequence in progress tolerated without failing",
  ],
  overflowFailures: [
    "knock_overflow_failures_total",
    "Failures counted against all untracked sources together because the failure table was full",
  ],
  evictedSequences: [
    "knock_evicted_sequences_total",
    "Sequences in progress dropped to make room for new ones",
  ],
  missingSequences: [
    "knock_missing_sequences_total",
    "Sequence starts ignored because no sequence was derived yet for their TOTP step",
  ],
  claims: [
    "knock_claims_total",
    "Completed sequences whose TOTP step was claimed across the fleet before unlocking (etcd store)",
  ],
  claimsUnreachable: [
    "knock_claims_unreachable_total",
    "Completed sequences refused because the store could not be reached to claim their step (fail closed)",
  ],
  claimsDropped: [
    "knock_claims_dropped_total",
    "Completed sequences refused because the claim queue was full",
  ],
};

/** Conntrack statistics: metric name, type, help. */
const CONNTRACK: Record<string, [string, "counter" | "gauge", string]> = {
  size: ["conntrack_flows", "gauge", "Flows in the connection tracking table"],
  capacity: ["conntrack_capacity_flows", "gauge", "Flows the connection tracking table can hold"],
  fragments: [
    "conntrack_fragments",
    "gauge",
    "First fragments remembered so later fragments can be translated",
  ],
  inserted: [
    "conntrack_inserted_total",
    "counter",
    "Flows inserted into the connection tracking table",
  ],
  expired: ["conntrack_expired_total", "counter", "Flows removed after their idle timeout"],
  evicted: [
    "conntrack_evicted_total",
    "counter",
    "Unassured flows evicted early to make room in a full table",
  ],
  refused: [
    "conntrack_refused_total",
    "counter",
    "New flows refused because the table was full of assured flows",
  ],
  killed: [
    "conntrack_killed_total",
    "counter",
    "Flows ended at once (a revoke, or a SYN reusing a finished tuple)",
  ],
  removed: ["conntrack_removed_total", "counter", "Flows removed by the control plane"],
  clashes: [
    "conntrack_clashes_total",
    "counter",
    "New flows refused because a tuple already belonged to another flow",
  ],
  invalid: [
    "conntrack_invalid_total",
    "counter",
    "Packets TCP state tracking found invalid for their flow",
  ],
  reopened: [
    "conntrack_reopened_total",
    "counter",
    "Finished TCP flows started over by a new SYN on the same tuple",
  ],
  outOfWindow: [
    "conntrack_out_of_window_total",
    "counter",
    "TCP segments outside their flow's window (dropped)",
  ],
  challenged: [
    "conntrack_challenged_total",
    "counter",
    "Inexact in-window RSTs and SYNs on established flows, passed for the endpoint's challenge ACK (RFC 5961), state kept",
  ],
};

/** Escapes a label value (backslash, double quote, newline). */
export function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** Escapes HELP text (backslash, newline). */
function escapeHelp(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function snakeCase(s: string): string {
  return s.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`).replace(/[^a-zA-Z0-9_]/g, "_");
}

function family(
  out: string[],
  name: string,
  type: "counter" | "gauge",
  help: string,
  samples: Sample[],
): void {
  const full = `knockgate_${name}`;
  out.push(`# HELP ${full} ${escapeHelp(help)}`, `# TYPE ${full} ${type}`);
  for (const [labels, v] of samples) out.push(`${full}${labels} ${Number.isFinite(v) ? v : 0}`);
}

function label(name: string, value: string): string {
  return `{${name}="${escapeLabel(value)}"}`;
}

/** Health of each uplink: up, its probes, and the one masquerade uses. */
function uplinkFamilies(out: string[], uplinks: readonly UplinkStatus[]): void {
  const each = (value: (u: UplinkStatus) => number): Sample[] =>
    uplinks.map((u) => [label("uplink", u.name), value(u)]);
  family(
    out,
    "uplink_up",
    "gauge",
    "1 while the uplink's gateway answers its health probe (always 1 without a probe), else 0",
    each((u) => u.up ? 1 : 0),
  );
  family(
    out,
    "uplink_probes_sent_total",
    "counter",
    "ICMP echo requests the health probe sent to the uplink's gateway",
    each((u) => u.sent),
  );
  family(
    out,
    "uplink_probes_received_total",
    "counter",
    "ICMP echo replies the health probe received from the uplink's gateway",
    each((u) => u.received),
  );
  family(
    out,
    "masquerade_uplink",
    "gauge",
    "1 for the uplink whose primary address masquerade from the LAN uses now, else 0",
    each((u) => u.masquerade ? 1 : 0),
  );
  uplink6Families(out, uplinks);
}

/** The IPv6 gateway probes' health and counts: one sample per uplink with a probe6, none without. */
function uplink6Families(out: string[], uplinks: readonly UplinkStatus[]): void {
  const probed = uplinks.filter((u) => u.ipv6 != null);
  if (probed.length === 0) return;
  const each = (value: (s: NonNullable<UplinkStatus["ipv6"]>) => number): Sample[] =>
    probed.map((u) => [label("uplink", u.name), value(u.ipv6!)]);
  family(
    out,
    "uplink_ipv6_up",
    "gauge",
    "1 while the uplink's IPv6 gateway answers its ICMPv6 health probe (probe6), else 0",
    each((s) => s.up ? 1 : 0),
  );
  family(
    out,
    "uplink_ipv6_probes_sent_total",
    "counter",
    "ICMPv6 echo requests the IPv6 health probe sent to the uplink's target",
    each((s) => s.sent),
  );
  family(
    out,
    "uplink_ipv6_probes_received_total",
    "counter",
    "ICMPv6 echo replies the IPv6 health probe received from the uplink's target",
    each((s) => s.received),
  );
}

/** The store backend: connected, how long since a member answered, the revision held. */
function storeFamilies(out: string[], h: StoreHealth, now: number): void {
  const backend = label("backend", h.backend);
  family(
    out,
    "store_connected",
    "gauge",
    "1 while the store answers (the KV file always), 0 while no etcd member does: changes are refused, forwarding goes on",
    [[backend, h.connected ? 1 : 0]],
  );
  family(
    out,
    "store_last_contact_seconds",
    "gauge",
    "Seconds since an etcd member last answered this node (0 for the KV file)",
    [[backend, h.backend === "kv" ? 0 : Math.max(0, (now - h.lastContactMs) / 1000)]],
  );
  family(
    out,
    "store_revision",
    "gauge",
    "The etcd revision this node's copy of the store reflects (0 for the KV file)",
    [[backend, h.revision]],
  );
}

/** The metrics page. */
export function renderMetrics(m: MetricsInput): string {
  const out: string[] = [];
  const c = m.counters;
  if (m.build) {
    const b = m.build;
    const commit = b.commit ? `,commit="${escapeLabel(b.commit)}"` : "";
    family(
      out,
      "build_info",
      "gauge",
      "The appliance's version and the Deno it runs on (always 1)",
      [
        [`{version="${escapeLabel(b.version)}",deno="${escapeLabel(b.deno)}"${commit}}`, 1],
      ],
    );
  }
  for (const [slot, name, help] of DATAPLANE) family(out, name, "counter", help, [["", c[slot]]]);
  const workers = m.workers ?? [];
  for (const [slot, name, help] of workers.length > 0 ? PER_QUEUE : []) {
    family(out, name, "counter", help, workers.map((w, i) => [label("queue", String(i)), w[slot]]));
  }
  const drops: Sample[] = [];
  // Slot 0 means "no drop"; every reason is listed, zeros included, for stable series.
  for (let code = 1; code < DROP_COUNT; code++) {
    drops.push([label("reason", dropName(code)), c[code]]);
  }
  family(
    out,
    "packets_dropped_total",
    "counter",
    "Packets the data plane dropped, by reason (knocks are dropped unanswered by design)",
    drops,
  );
  family(
    out,
    "knock_successes_total",
    "counter",
    "Knock sequences completed correctly: the source IP was unlocked",
    [["", c[Stat.Unlocks]]],
  );
  family(
    out,
    "knock_failures_total",
    "counter",
    "Knock sequences that ended without unlocking, by reason",
    KNOCK_FAILURE_REASONS.map((r, i) => [label("reason", r), c[KNOCK_FAILURE_BASE + i]]),
  );
  KNOCK_STATS.forEach((k, i) => {
    const [name, help] = KNOCK[k];
    family(out, name, "counter", help, [["", c[KNOCK_STAT_BASE + i]]]);
  });
  family(out, "unlocked_ips", "gauge", "Source IPs currently unlocked by a knock", [[
    "",
    m.unlocks,
  ]]);
  if (m.signInFailures) {
    family(
      out,
      "sign_in_failures_total",
      "counter",
      "Failed sign-ins to the management interface since start, by reason",
      m.signInFailures.map(([r, n]) => [label("reason", r), n]),
    );
  }
  if (m.rules) {
    const rules = m.rules.filter((r) => r.id >= 0 && r.id < MAX_RULE_IDS)
      .sort((a, b) => a.name.localeCompare(b.name));
    const help = "of flows through each forward or open-ports rule, both directions";
    family(
      out,
      "rule_packets_total",
      "counter",
      `Packets ${help}`,
      rules.map((r) => [label("rule", r.name), c[RULE_BASE + 2 * r.id]]),
    );
    family(
      out,
      "rule_bytes_total",
      "counter",
      `Bytes (IP headers included) ${help}`,
      rules.map((r) => [label("rule", r.name), c[RULE_BASE + 2 * r.id + 1]]),
    );
  }
  if (m.uplinks) uplinkFamilies(out, m.uplinks);
  for (const [k, v] of Object.entries(m.conntrack)) {
    const [name, type, help] = CONNTRACK[k] ??
      [`conntrack_${snakeCase(k)}_total`, "counter", `Connection tracking: ${k}`];
    family(out, name, type, help, [["", v]]);
  }
  if (m.host) {
    family(
      out,
      "host_filter_packets_total",
      "counter",
      "Packets the host's nftables table matched, by rule: spoofed sources, WAN input and stealth are dropped; not-through-tun counts forwarding that bypassed the TUN (dropped by policy)",
      Object.entries(m.host).sort(([a], [b]) => a.localeCompare(b)).map((
        [r, n],
      ) => [label("rule", r), n]),
    );
  }
  if (m.clockSynchronised !== undefined) {
    family(
      out,
      "clock_synchronised",
      "gauge",
      "1 when the system clock is NTP-synchronised, 0 when it is not or cannot be told (knocks and sign-in codes need a right clock)",
      [["", m.clockSynchronised ? 1 : 0]],
    );
  }
  if (m.store) storeFamilies(out, m.store.health, m.store.now);
  family(out, "uptime_seconds", "gauge", "Seconds since the appliance started", [[
    "",
    m.uptimeSec,
  ]]);
  return out.join("\n") + "\n";
}

const metrics = createRoute({
  operationId: "getMetrics",
  method: "get",
  path: "/metrics",
  tags: ["status"],
  summary: "Prometheus metrics (any signed-in role; bearer tokens suit scrapers)",
  middleware: [requireRole(...ANY_ROLE)],
  security: SIGNED_IN,
  responses: {
    200: { description: "Metrics", content: { "text/plain": { schema: z.string() } } },
    ...errors(401),
  },
});

/** What the metrics router reads besides `deps`. */
export interface MetricsSources {
  /** When the appliance started, ms since the epoch. */
  startedAt: number;
  /** The (cached) clock health. */
  clock?: () => Promise<ClockHealth>;
  signInFailures?: SignInFailures;
}

/** The metrics router (mounted at the root: `/metrics`). */
export function metricsRouter(deps: ApiDeps, src: MetricsSources): OpenAPIHono<AppEnv> {
  const app = newRouter();
  app.openapi(metrics, async (c) => {
    const [unlocks, conntrack, rules, host, clock, uplinks] = await Promise.all([
      deps.datapath.unlocks(),
      deps.datapath.conntrack(),
      deps.datapath.ruleIds(),
      deps.hostCounters?.().catch(() => undefined),
      src.clock?.(),
      uplinkStatuses(deps.datapath),
    ]);
    const body = renderMetrics({
      counters: deps.datapath.counters,
      workers: deps.datapath.workerCounters?.(),
      unlocks: unlocks.length,
      conntrack,
      rules,
      signInFailures: src.signInFailures?.entries(),
      host,
      uplinks,
      clockSynchronised: clock?.synchronised,
      build: { version: APPLIANCE_VERSION, deno: Deno.version.deno },
      // The store stamps its contacts with the system clock, not the API's.
      store: { health: deps.store.health(), now: Date.now() },
      uptimeSec: Math.max(0, Math.floor((deps.clock.now() - src.startedAt) / 1000)),
    });
    return c.text(body, 200, { "Content-Type": METRICS_CONTENT_TYPE });
  });
  return app;
}
