/**
 * Data-path counters: packets and bytes in and out, and every drop counted by
 * reason. They live in a Float64Array that may sit on a SharedArrayBuffer, so
 * the control plane reads them live without asking the Worker.
 */
import type { KnockFailureReason, KnockStats } from "../knock/mod.ts";
import { PARSE_ERROR_COUNT, parseErrorName } from "../packet/mod.ts";

/** Why a packet was dropped, after the packet layer's parse errors. */
export const Drop = {
  /** A TCP/UDP/ICMP packet without a tracked flow that cannot start one. */
  NoFlow: PARSE_ERROR_COUNT,
  /** A new flow to a WAN port with no rule: dropped silently, a stealthy closed port. */
  NoRule: PARSE_ERROR_COUNT + 1,
  /** A new flow to a rule that enforces knocking, from a locked source. */
  Locked: PARSE_ERROR_COUNT + 2,
  /** A knock, consumed by the verifier and never answered. */
  Knock: PARSE_ERROR_COUNT + 3,
  /** A knock from a source IP serving a penalty. */
  Penalised: PARSE_ERROR_COUNT + 4,
  /** The flow table is full of assured flows. */
  TableFull: PARSE_ERROR_COUNT + 5,
  /** TCP state tracking found the segment invalid for its flow. */
  InvalidTcp: PARSE_ERROR_COUNT + 6,
  /** A non-first fragment whose first fragment was never seen in time. */
  FragmentOrphan: PARSE_ERROR_COUNT + 7,
  /** A protocol the appliance does not forward (not TCP, UDP or ICMP). */
  Protocol: PARSE_ERROR_COUNT + 8,
  /** An ICMP message that is neither an echo nor an error about a tracked flow. */
  IcmpUnmatched: PARSE_ERROR_COUNT + 9,
  /** A WAN packet not addressed to one of the WAN addresses. */
  NotForUs: PARSE_ERROR_COUNT + 10,
  /** A LAN packet that has nothing to cross (to the LAN itself, or a martian). */
  LanLocal: PARSE_ERROR_COUNT + 11,
  /** No port left for source NAT. */
  NatExhausted: PARSE_ERROR_COUNT + 12,
  /** Device refused the write. */
  WriteError: PARSE_ERROR_COUNT + 13,
  /** A new flow's reply tuple is already another flow's (a NAT clash; the table has room). */
  NatClash: PARSE_ERROR_COUNT + 14,
  /** A TCP segment outside its flow's window (a blind RST or SYN, forged or stale data). */
  TcpOutOfWindow: PARSE_ERROR_COUNT + 15,
  /** A new flow from the LAN to the WAN while no uplink may masquerade (the masquerade list is empty). */
  NoUplink: PARSE_ERROR_COUNT + 16,
  /** A packet a queue's Worker had to hand to the admission Worker while its handoff ring was full. */
  HandoffFull: PARSE_ERROR_COUNT + 17,
  /**
   * An IPv4 packet naming an address in 240.0.0.0/4 (reserved, RFC 1112 §4):
   * never on the wire, and the range interned IPv6 addresses use (`ipv6_ids.ts`).
   */
  ReservedAddress: PARSE_ERROR_COUNT + 18,
  /** A new IPv6 source or destination while every interned id is held (`ipv6_ids.ts`). */
  Ipv6IdsFull: PARSE_ERROR_COUNT + 19,
  /** Neighbour discovery, router advertisement or MLD in the TUN: the kernel's, never forwarded. */
  NeighbourDiscovery: PARSE_ERROR_COUNT + 20,
  /** A new IPv6 flow through NPTv6 whose address RFC 6296 cannot map (an all-ones word, §3.4-3.5). */
  Npt6Unmappable: PARSE_ERROR_COUNT + 21,
} as const;

const DROP_NAMES = [
  "no-flow",
  "no-rule",
  "locked",
  "knock",
  "penalised",
  "table-full",
  "invalid-tcp",
  "fragment-orphan",
  "protocol",
  "icmp-unmatched",
  "not-for-us",
  "lan-local",
  "nat-exhausted",
  "write-error",
  "nat-clash",
  "tcp-out-of-window",
  "no-uplink",
  "handoff-full",
  "reserved-address",
  "ipv6-ids-full",
  "neighbour-discovery",
  "npt6-unmappable",
];

/** Number of drop reasons, parse errors included (index 0, "none", unused). */
export const DROP_COUNT = PARSE_ERROR_COUNT + DROP_NAMES.length;

/** The name of drop reason `code`, such as `bad-checksum` or `locked`. */
export function dropName(code: number): string {
  return code < PARSE_ERROR_COUNT ? parseErrorName(code) : DROP_NAMES[code - PARSE_ERROR_COUNT];
}

/** Slots of the non-drop counters, placed after the drop reasons. */
export const Stat = {
  RxPackets: DROP_COUNT,
  RxBytes: DROP_COUNT + 1,
  TxPackets: DROP_COUNT + 2,
  TxBytes: DROP_COUNT + 3,
  /** Packets of tracked flows rewritten from the flow entry alone. */
  FastPath: DROP_COUNT + 4,
  /** Packets that went through rule lookup and admission. */
  SlowPath: DROP_COUNT + 5,
  FlowsCreated: DROP_COUNT + 6,
  FlowsAdmittedByKnock: DROP_COUNT + 7,
  Unlocks: DROP_COUNT + 8,
  Fragments: DROP_COUNT + 9,
  IcmpErrorsTranslated: DROP_COUNT + 10,
  Drops: DROP_COUNT + 11,
  /** TCP flows picked up in mid stream (no SYN seen; after a restart that lost them). */
  PickedUp: DROP_COUNT + 12,
  /** Echo replies to the uplink health probe, consumed (not forwarded, not dropped). */
  ProbeReplies: DROP_COUNT + 13,
  /** Packets a tracker Worker handed to the admission Worker (worker 0), which counts them again as `HandoffReceived`. */
  HandedOff: DROP_COUNT + 14,
  /** Packets worker 0 took from the trackers' handoff rings (not counted again in `RxPackets`). */
  HandoffReceived: DROP_COUNT + 15,
} as const;

const STAT_NAMES = [
  "rx_packets",
  "rx_bytes",
  "tx_packets",
  "tx_bytes",
  "fast_path_packets",
  "slow_path_packets",
  "flows_created",
  "flows_admitted_by_knock",
  "unlocks",
  "fragments",
  "icmp_errors_translated",
  "drops",
  "tcp_picked_up",
  "uplink_probe_replies",
  "handed_off_packets",
  "handoff_received_packets",
];

/** The verifier's running counts the data plane copies out, once per housekeeping tick. */
export const KNOCK_STATS = [
  "knocks",
  "replays",
  "penalties",
  "penalisedKnocks",
  "throttledAttempts",
  "strays",
  "overflowFailures",
  "evictedSequences",
  "missingSequences",
  "claims",
  "claimsUnreachable",
  "claimsDropped",
] as const satisfies readonly (keyof KnockStats)[];

/** Slot of the verifier's count `KNOCK_STATS[i]`. */
export const KNOCK_STAT_BASE = DROP_COUNT + STAT_NAMES.length;

/** Why a knock sequence failed, one counter each (counted as the verifier reports them). */
export const KNOCK_FAILURE_REASONS = [
  "wrong-port",
  "wrong-transport",
  "window-expired",
  "profile-changed",
  "evicted",
] as const satisfies readonly KnockFailureReason[];

// Every reason has a slot: a new reason fails the type check here.
const _everyReason: readonly (typeof KNOCK_FAILURE_REASONS)[number][] = [] as KnockFailureReason[];

/** Slot of the failures for `KNOCK_FAILURE_REASONS[i]`. */
export const KNOCK_FAILURE_BASE = KNOCK_STAT_BASE + KNOCK_STATS.length;

/** The slot counting knock failures for `reason`. */
export function knockFailureSlot(reason: KnockFailureReason): number {
  return KNOCK_FAILURE_BASE + KNOCK_FAILURE_REASONS.indexOf(reason);
}

/**
 * Rules counted per stable rule id (admission's ids are never reused, so
 * edits past this many distinct rule names go uncounted).
 */
export const MAX_RULE_IDS = 4096;

/** Slot of rule `id`'s packets (`RULE_BASE + 2 * id`) and bytes (`+ 1`), both directions. */
export const RULE_BASE = KNOCK_FAILURE_BASE + KNOCK_FAILURE_REASONS.length;

/** Total number of counter slots. */
export const COUNTER_SLOTS = RULE_BASE + 2 * MAX_RULE_IDS;

/** Allocates counters, shared between threads when `shared` is true. */
export function newCounters(shared = true): Float64Array {
  const bytes = COUNTER_SLOTS * Float64Array.BYTES_PER_ELEMENT;
  return new Float64Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
}

/** The element-wise sum of every Worker's counters (one array per data-plane Worker). */
export function sumCounters(parts: readonly Float64Array[]): Float64Array {
  const sum = new Float64Array(COUNTER_SLOTS);
  for (const c of parts) for (let i = 0; i < COUNTER_SLOTS; i++) sum[i] += c[i];
  return sum;
}

/** A plain snapshot of the counters: stats by name and drops by reason (non-zero only). */
export interface CounterSnapshot {
  stats: Record<string, number>;
  drops: Record<string, number>;
}

/** Reads `c` into a `CounterSnapshot`. */
export function snapshotCounters(c: Float64Array): CounterSnapshot {
  const stats: Record<string, number> = {};
  STAT_NAMES.forEach((n, i) => stats[n] = c[DROP_COUNT + i]);
  const drops: Record<string, number> = {};
  for (let i = 1; i < DROP_COUNT; i++) if (c[i] > 0) drops[dropName(i)] = c[i];
  return { stats, drops };
}
