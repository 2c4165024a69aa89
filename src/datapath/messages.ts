/**
 * Messages between the control plane (main thread) and the data-plane Worker.
 * Structured-clone friendly: plain objects only.
 */
import type { ApplianceEvent } from "../log/events.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import type { KnockProfile } from "../knock/profile.ts";
import type { KnockSettings } from "../config/types.ts";
import type { UnlockInfo as UnlockRecord } from "../knock/unlock_table.ts";
import type { KnockStateRecord } from "../knock/verifier.ts";
import type { TunStats } from "../device/mod.ts";

/** A user as the data plane sees it: knock profile plus the TOTP secret (base32). */
export interface KnockUser extends KnockProfile {
  secret: string;
}

/** Knock engine settings, as the configuration names them. */
export type { KnockSettings } from "../config/types.ts";

/** Replay memory, failure buckets and penalties, as the verifier emits them and the store saves them. */
export type { KnockStateRecord } from "../knock/verifier.ts";

/** One unlock, as the data plane reports it and the store saves it. */
export type { UnlockInfo as UnlockRecord } from "../knock/unlock_table.ts";

/** One tracked flow, for the status table. */
export interface FlowRecord {
  proto: number;
  state: string;
  origSrc: string;
  origSrcPort: number;
  origDst: string;
  origDstPort: number;
  replySrc: string;
  replySrcPort: number;
  replyDst: string;
  replyDstPort: number;
  packets: number;
  bytes: number;
  expiresInSec: number;
  rule: string | null;
  assured: boolean;
}

/** A completed knock whose step the control plane must claim across the fleet before it unlocks. */
export interface KnockClaim {
  ip: string;
  user: string;
  step: number;
  /** The client's drift in steps, recorded with the unlock. */
  drift: number;
  /** 6: the IPv6 half of a step paired by family, claimed under its own key. */
  family?: 6;
  /** The WAN address knocked (the unlock's). */
  wanAddress: string;
  /** When the step can no longer match: the claim's expiry in the store (ms since the epoch). */
  expiresAt: number;
  /** When the sequence completed (ms since the epoch). */
  at: number;
}

/** The answer to a `KnockClaim`: granted, taken by `firstIp`, or not made (store unreachable). */
export interface KnockClaimAnswer extends KnockClaim {
  result: "granted" | "taken" | "unreachable";
  /** The IP holding the step (`taken`). */
  firstIp?: string;
}

/** A rule's stable id in the data plane (flows and per-rule counters name rules by it). */
export interface RuleIdName {
  id: number;
  name: string;
}

/** An uplink as the data plane sees it. */
export interface DatapathUplink {
  name: string;
  /** Its public addresses, dotted quads; the first is its primary (masquerade, probes). */
  addresses: string[];
  /** The management port answers (after a knock) on its addresses. */
  management: boolean;
  /** Its IPv6 addresses, RFC 5952 text (used with `DatapathSettings.ipv6`). */
  addresses6?: string[];
  /** NPTv6 (RFC 6296): the LAN prefix leaves this uplink as `outside` (a prefix); absent: none. */
  npt6?: { outside: string } | null;
  /** The gateway health probe, or null (then the uplink counts as up). */
  probe: { target: string; intervalMs: number; downAfter: number; upAfter: number } | null;
  /** Its interface (a link-local IPv6 probe target is scoped to it). */
  interface?: string;
  /** The IPv6 gateway's probe (ICMPv6 echo from `addresses6[0]`); absent or null: none. */
  probe6?: { target: string; intervalMs: number; downAfter: number; upAfter: number } | null;
}

/** An uplink's IPv6 gateway health (`uplink_probe6.ts`). */
export interface Uplink6Status {
  up: boolean;
  target: string;
  sent: number;
  received: number;
  /** To the kernel's receive time stamp of the reply. */
  lastRttMs: number | null;
  /** When `up` last changed, ms since the epoch; 0 never. */
  changedAt: number;
}

/** An uplink's health, for the status table and the API. */
export interface UplinkStatus {
  name: string;
  up: boolean;
  /** A probe watches it (false: always up). */
  probing: boolean;
  target: string | null;
  sent: number;
  received: number;
  lastRttMs: number | null;
  /** When `up` last changed, ms since the epoch; 0 never. */
  changedAt: number;
  /** Masquerade from the LAN uses this uplink now. */
  masquerade: boolean;
  /** The IPv6 gateway's probe; null or absent when none watches it. */
  ipv6?: Uplink6Status | null;
}

/** Everything the data plane is configured with. */
export interface DatapathSettings {
  /** The primary WAN address (`uplinks[0].addresses[0]`); the data plane reads `uplinks`. */
  wanAddress: string;
  /** Every uplink, in configuration order (health and masquerade name them by index). */
  uplinks: DatapathUplink[];
  /** Uplink names masquerade may use, in order of preference. */
  masquerade: string[];
  lanAddress: string;
  lanNetwork: string;
  managementPort: number;
  /** "knock": the management port opens from the WAN to unlocked IPs; "never": closed. */
  managementWanAccess: "knock" | "never";
  /** WAN sources admitted to knock-enforcing rules without knocking (CIDRs). */
  allow: string[];
  maxFlows: number;
  /** Unlocked IPs held at most (the least recently unlocked is evicted); fixed at start. */
  maxUnlocks?: number;
  knock: KnockSettings;
  /** IPv6 through the data plane; absent or null: every IPv6 packet is dropped as bad-version. */
  ipv6?: DatapathIpv6 | null;
}

/** The IPv6 side of the data plane's settings (the configuration's `ipv6` section, enabled). */
export interface DatapathIpv6 {
  /** The appliance's LAN address, RFC 5952 text. */
  lanAddress: string;
  /** The LAN prefix, `2001:db8:1::/64`: sources inside it are the LAN's. */
  lanNetwork: string;
  /** Prefix length of the source network one IPv6 knock unlocks (64 .. 128). */
  unlockPrefix: number;
  /** One knock step may unlock one source of each family (`ipv6.pairFamilies`); absent: false. */
  pairFamilies?: boolean;
}

/** What restoring the saved flow table did at start. */
export interface RestoredFlows {
  restored: number;
  skipped: number;
  /** The snapshot was written by a clean stop (false: a checkpoint, the last run crashed). */
  final: boolean;
  /** When it was taken (Unix seconds). */
  savedAt: number;
  /** Why it could not be read, when it could not. */
  error?: string;
}

/** The device the Worker opens. */
export interface DeviceSettings {
  name: string;
  mtu: number;
  offload: boolean;
  /** TUN queues, one data-plane Worker each (default 1). */
  queues?: number;
}

/**
 * A data-plane Worker's place among the queues. Worker 0 admits (knocks,
 * unlocks, rules) and owns the flow table; the others track flows it created
 * and hand it every other packet through their `handoff` ring.
 */
export interface WorkerRole {
  /** Queue number, 0..count-1. */
  index: number;
  count: number;
  /** Every queue's TUN file descriptor, in queue order (opened by the control plane; this Worker reads `fds[index]`). */
  fds: number[];
  /** The device's name, MTU and offloads, as the control plane opened it. */
  name: string;
  mtu: number;
  offload: boolean;
  /** The shared flow table (`ConnTable.createBuffer`). */
  table: SharedArrayBuffer;
  /** The gate's shared tables (`Admission.gateBuffers`): worker 0 writes, every Worker gates and touches unlocks. */
  gate: { unlocks: SharedArrayBuffer; knocking: SharedArrayBuffer };
  /** The handoff rings of trackers 1..count-1, in order (worker 0 consumes all; tracker k produces `rings[k - 1]`). */
  rings: SharedArrayBuffer[];
  /** Worker 0's doorbell (an eventfd), rung by the trackers when they hand over packets. */
  doorbell: number;
}

/** What the data plane answers queries about (`uplinks`: `UplinkStatus[]`). */
export type DatapathQuery = "unlocks" | "flows" | "conntrack" | "rules" | "uplinks" | "device";

/** Control plane to Worker. */
export type ToWorker =
  | {
    type: "init";
    device: DeviceSettings;
    settings: DatapathSettings;
    forwards: PortForwardRule[];
    openPorts: OpenPortsRule[];
    users: KnockUser[];
    unlocks: UnlockRecord[];
    /** The verifier's state saved before the restart. */
    knockState: KnockStateRecord[];
    /** Completed knocks are claimed across the fleet before they unlock (`knock-claims`). */
    knockClaims?: boolean;
    /** The flow-table snapshot saved before the restart (see flow_snapshot.ts), or null. */
    flows: Uint8Array | null;
    counters: SharedArrayBuffer;
    control: SharedArrayBuffer;
    role: WorkerRole;
    /** The offloads the kernel accepted when the control plane opened the device. */
    offloads: string[];
    /** The source-NAT port key (see `DatapathInit.portKey`). */
    portKey?: [number, number];
  }
  | { type: "rules"; forwards: PortForwardRule[]; openPorts: OpenPortsRule[] }
  | { type: "users"; users: KnockUser[] }
  | { type: "settings"; settings: DatapathSettings }
  | { type: "revoke"; ip: string; id: number; by?: string }
  /** Loosen every TCP flow's windows (an HA transition); the reply is the count. */
  | { type: "loosen"; id: number }
  /** Unlocks other nodes admitted (a shared store), merged into the running table. */
  | { type: "unlocks"; records: UnlockRecord[] }
  /** The answers to `knock-claims`. */
  | { type: "claim-answers"; answers: KnockClaimAnswer[] }
  /** Replay memory, failures and penalties other nodes wrote, merged into the verifier. */
  | { type: "knock-state"; records: KnockStateRecord[] }
  | { type: "query"; id: number; what: DatapathQuery; limit?: number }
  | { type: "stop" };

/** The TUN's counters and the offloads the kernel accepted (the `device` query). */
export interface DeviceStatus extends TunStats {
  offloads: string[];
  /** Each Worker's counters in queue order: its queue's reads, and every write it made (worker 0 writes handed-off packets through the trackers' queues); their sum is the rest of this record. */
  queues?: TunStats[];
}

/** Worker to control plane. */
export type FromWorker =
  | { type: "ready"; device: string; restored: RestoredFlows | null }
  | { type: "fatal"; message: string }
  | { type: "events"; events: ApplianceEvent[] }
  /** The verifier's changed state, once per housekeeping tick (before that tick's events). */
  | { type: "knock-state"; records: KnockStateRecord[] }
  /** Completed knocks to claim (answered by `claim-answers`), sent after the loop turn that saw them. */
  | { type: "knock-claims"; claims: KnockClaim[] }
  | { type: "reply"; id: number; data: unknown }
  /** A flow-table snapshot to save: a checkpoint every few seconds, and a final one before "stopped". */
  | { type: "flows"; snapshot: Uint8Array; final: boolean }
  | { type: "stopped" };
