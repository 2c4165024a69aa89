/**
 * The appliance's events: everything worth telling an operator, as one
 * discriminated union on `type`. Events are rare compared with packets (one
 * per knock, unlock or admitted flow), so they are plain objects with
 * addresses as dotted quads.
 */

import type { Clock } from "../clock.ts";

/** Syslog severities (RFC 5424 §6.2.1); lower is more severe. */
export const Severity = {
  Emergency: 0,
  Alert: 1,
  Critical: 2,
  Error: 3,
  Warning: 4,
  Notice: 5,
  Info: 6,
  Debug: 7,
} as const;

/** A syslog severity number, 0 (emergency) .. 7 (debug). */
export type Severity = typeof Severity[keyof typeof Severity];

/** Fields every event carries. */
export interface EventBase {
  /** Milliseconds since the Unix epoch. */
  time: number;
  /** Syslog severity. */
  severity: Severity;
}

/** A source IP completed a user's knock sequence and is now unlocked. */
export interface KnockSuccessEvent extends EventBase {
  type: "knock-success";
  ip: string;
  user: string;
  /** The WAN address the unlocking knock arrived on. */
  wan: string;
  /** Which candidate matched: -1 (T-1), 0 (T) or 1 (T+1): the client's clock drift in steps. */
  drift: number;
  /** The time step `T` of the matched sequence. */
  step: number;
}

/** A knock sequence ended without unlocking. */
export interface KnockFailureEvent extends EventBase {
  type: "knock-failure";
  ip: string;
  /** The user whose first port started the sequence, when known. */
  user?: string;
  /** Why, e.g. `wrong-port`, `window-expired`, `wrong-transport`. */
  reason: string;
}

/** A step that already unlocked one IP for a user was tried from another IP. */
export interface KnockReplayEvent extends EventBase {
  type: "knock-replay";
  ip: string;
  user: string;
  step: number;
  /** The IP the step first unlocked. */
  firstIp: string;
}

/** A source IP failed too often; its knocks are ignored until `until`. */
export interface KnockPenaltyEvent extends EventBase {
  type: "knock-penalty";
  ip: string;
  /** Milliseconds since the Unix epoch when the penalty ends. */
  until: number;
}

/** An unlock ended on its own. */
export interface UnlockExpiredEvent extends EventBase {
  type: "unlock-expired";
  ip: string;
  user: string;
  /** `idle` (no traffic for the idle timeout) or `lifetime` (absolute limit reached). */
  reason: string;
}

/** An operator (or a user change) ended an unlock. */
export interface UnlockRevokedEvent extends EventBase {
  type: "unlock-revoked";
  ip: string;
  user: string;
  /** Who or what revoked it, e.g. an admin name, `user-deleted`. */
  by: string;
}

/** A new WAN flow matched a rule and was admitted (the router's `[Port Unlock]` line). */
export interface FlowAdmittedEvent extends EventBase {
  type: "flow-admitted";
  /** IP protocol number (next header for IPv6): 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6. */
  proto: 6 | 17 | 1 | 58;
  src: string;
  srcPort: number;
  /** The WAN address the client connected to. */
  dst: string;
  dstPort: number;
  privateAddr: string;
  privatePort: number;
  /** Name of the rule that matched. */
  rule: string;
  /** The user whose unlock admitted the flow, when the rule enforces knocking. */
  user?: string;
}

/** The configuration or the rule set changed. */
export interface ConfigChangedEvent extends EventBase {
  type: "config-changed";
  /** Where the change came from, e.g. `file`, `api`, `cli`. */
  source: string;
  /** What changed, in a few words. */
  detail: string;
}

/** The system clock is not synchronised; TOTP steps may be wrong. */
export interface ClockUnsynchronisedEvent extends EventBase {
  type: "clock-unsynchronised";
  detail: string;
}

/** The appliance started. */
export interface ApplianceStartEvent extends EventBase {
  type: "appliance-start";
  version: string;
  wan: string;
  lan: string;
}

/** The appliance is stopping. */
export interface ApplianceStopEvent extends EventBase {
  type: "appliance-stop";
  reason: string;
}

/** Periodic counts of dropped packets by reason (never one event per drop). */
export interface PacketDropSummaryEvent extends EventBase {
  type: "packet-drop-summary";
  /** Length of the period the counts cover, in milliseconds. */
  intervalMs: number;
  /** Drops per reason name in that period; reasons with no drops may be left out. */
  drops: Record<string, number>;
}

/** A sign-in to the management interface succeeded or failed. */
export interface ManagementLoginEvent extends EventBase {
  type: "management-login";
  ip: string;
  user: string;
  success: boolean;
  /** Why a failed sign-in failed. */
  reason?: string;
}

/** An uplink's gateway stopped answering its health probe; masquerade moves off it. */
export interface UplinkDownEvent extends EventBase {
  type: "uplink-down";
  uplink: string;
  /** "ipv6": the IPv6 gateway's probe (`probe6`); absent: the IPv4 one. */
  family?: "ipv6";
  /** The probe's target (the gateway unless configured). */
  target: string;
  /** Consecutive probes lost. */
  lost: number;
}

/** An uplink's gateway answers its health probe again. */
export interface UplinkUpEvent extends EventBase {
  type: "uplink-up";
  uplink: string;
  /** "ipv6": the IPv6 gateway's probe (`probe6`); absent: the IPv4 one. */
  family?: "ipv6";
  target: string;
  /** Round-trip time of the answer that brought it up, ms. */
  rttMs: number;
}

/**
 * Events of one kind that the log sinks did not get one by one within an
 * interval (a flood of knock failures, say): counted here instead.
 */
export interface LogSummaryEvent extends EventBase {
  type: "log-summary";
  /** The type of the events summarised, e.g. `knock-failure`. */
  kind: EventType;
  /** Length of the interval, in milliseconds. */
  intervalMs: number;
  /** Events of `kind` in the interval, those written in full included. */
  count: number;
  /** Of them, how many the sinks got in full (the first of the interval). */
  shown: number;
  /** Distinct source addresses, estimated (HyperLogLog, about 1.6 % standard error). */
  sources: number;
  /** Counts by reason (for drops: by drop reason), largest first. */
  reasons: Record<string, number>;
  /** The busiest sources seen more than once, most events first (certain lower bounds of their counts). */
  top: { ip: string; count: number }[];
}

/** Every event the appliance reports. */
export type ApplianceEvent =
  | KnockSuccessEvent
  | KnockFailureEvent
  | KnockReplayEvent
  | KnockPenaltyEvent
  | UnlockExpiredEvent
  | UnlockRevokedEvent
  | FlowAdmittedEvent
  | ConfigChangedEvent
  | ClockUnsynchronisedEvent
  | ApplianceStartEvent
  | ApplianceStopEvent
  | PacketDropSummaryEvent
  | ManagementLoginEvent
  | UplinkDownEvent
  | UplinkUpEvent
  | LogSummaryEvent;

/** The `type` tag of an event. */
export type EventType = ApplianceEvent["type"];

/** The event of a given type. */
export type EventOf<T extends EventType> = Extract<ApplianceEvent, { type: T }>;

/** The fields of an event of type `T` other than `type`, `time` and `severity`. */
export type EventFields<T extends EventType> = Omit<EventOf<T>, "type" | "time" | "severity">;

/** Default severity of each event type. */
export const DEFAULT_SEVERITY: Readonly<Record<EventType, Severity>> = {
  "knock-success": Severity.Notice,
  "knock-failure": Severity.Warning,
  "knock-replay": Severity.Warning,
  "knock-penalty": Severity.Warning,
  "unlock-expired": Severity.Info,
  "unlock-revoked": Severity.Notice,
  "flow-admitted": Severity.Info,
  "config-changed": Severity.Notice,
  "clock-unsynchronised": Severity.Error,
  "appliance-start": Severity.Notice,
  "appliance-stop": Severity.Notice,
  "packet-drop-summary": Severity.Info,
  "management-login": Severity.Notice,
  "uplink-down": Severity.Warning,
  "uplink-up": Severity.Notice,
  "log-summary": Severity.Warning,
};

/** Every event type, in declaration order. */
export const EVENT_TYPES: readonly EventType[] = Object.keys(DEFAULT_SEVERITY) as EventType[];

/**
 * Builds an event of type `type` stamped with `clock`'s time and the type's
 * default severity (unless `severity` is given).
 */
export function makeEvent<T extends EventType>(
  clock: Clock,
  type: T,
  fields: EventFields<T>,
  severity: Severity = DEFAULT_SEVERITY[type],
): EventOf<T> {
  return { type, time: clock.now(), severity, ...fields } as unknown as EventOf<T>;
}

/**
 * Classes of events, each kept in its own part of the event history so that
 * a flood of one (failures) cannot push out another (the last success).
 */
export const EVENT_CLASSES = ["access", "flow", "system", "failure"] as const;

/** `access`: unlocks and penalties; `flow`: admitted flows; `system`: config, sign-ins, start/stop, uplinks; `failure`: failures, replays, drops. */
export type EventClass = typeof EVENT_CLASSES[number];

const CLASS_OF: Readonly<Record<EventType, EventClass>> = {
  "knock-success": "access",
  "knock-penalty": "access",
  "unlock-expired": "access",
  "unlock-revoked": "access",
  "flow-admitted": "flow",
  "config-changed": "system",
  "clock-unsynchronised": "system",
  "appliance-start": "system",
  "appliance-stop": "system",
  "management-login": "system",
  "uplink-down": "system",
  "uplink-up": "system",
  "knock-failure": "failure",
  "knock-replay": "failure",
  "packet-drop-summary": "failure",
  "log-summary": "failure",
};

/** The class of `e`; a failed sign-in is a failure (anyone can cause many). */
export function eventClass(e: ApplianceEvent): EventClass {
  if (e.type === "management-login" && !e.success) return "failure";
  return CLASS_OF[e.type] ?? "failure";
}
