/**
 * One human-readable line per event, in the style of the DrayTek router's
 * syslog (`[Port Unlock] P:6 203.0.113.10:42829->198.51.100.1:52201 #192.0.2.12:8080`).
 * The same line is the MSG of a syslog message and the tail of a stdout line.
 */

import { escapeControl } from "./escape.ts";
import type { ApplianceEvent, EventType, LogSummaryEvent } from "./events.ts";

/** Formats `e` as one line without a timestamp and without a trailing newline. */
export function formatEvent(e: ApplianceEvent): string {
  switch (e.type) {
    case "knock-success":
      return `[Port Knock] success ${kv("user", e.user)} ${kv("ip", e.ip)} ${kv("wan", e.wan)} ` +
        `drift=${e.drift} step=${e.step}`;
    case "knock-failure":
      return `[Port Knock] failure ${kv("ip", e.ip)}${optional("user", e.user)} ` +
        kv("reason", e.reason);
    case "knock-replay":
      return `[Port Knock] replay ${kv("user", e.user)} ${kv("ip", e.ip)} step=${e.step} ` +
        kv("first-ip", e.firstIp);
    case "knock-penalty":
      return `[Port Knock] penalty ${kv("ip", e.ip)} until=${isoSeconds(e.until)}`;
    case "unlock-expired":
      return `[Port Lock] ${kv("ip", e.ip)} ${kv("user", e.user)} ${kv("reason", e.reason)}`;
    case "unlock-revoked":
      return `[Port Lock] ${kv("ip", e.ip)} ${kv("user", e.user)} reason=revoked ${kv("by", e.by)}`;
    case "flow-admitted":
      // The router's exact text: P:<IP protocol> src:port->wan:port #private:port
      // (an IPv6 address in brackets before its port, RFC 5952 §6).
      return `[Port Unlock] P:${e.proto} ${hostPort(e.src, e.srcPort)}->` +
        `${hostPort(e.dst, e.dstPort)} #${hostPort(e.privateAddr, e.privatePort)}`;
    case "config-changed":
      return `[Config] changed ${kv("source", e.source)} ${kv("detail", e.detail)}`;
    case "clock-unsynchronised":
      return `[Clock] unsynchronised ${kv("detail", e.detail)}`;
    case "appliance-start":
      return `[Appliance] start ${kv("version", e.version)} ${kv("wan", e.wan)} ${
        kv("lan", e.lan)
      }`;
    case "appliance-stop":
      return `[Appliance] stop ${kv("reason", e.reason)}`;
    case "packet-drop-summary":
      return `[Drops] interval=${Math.round(e.intervalMs / 1000)}s${dropList(e.drops)}`;
    case "management-login":
      return `[Management] login ${e.success ? "success" : "failure"} ${kv("user", e.user)} ` +
        `${kv("ip", e.ip)}${optional("reason", e.reason)}`;
    case "uplink-down":
      return `[Uplink] down ${kv("uplink", e.uplink)}${family(e.family)} ${
        kv("target", e.target)
      } ` +
        `lost=${e.lost}`;
    case "uplink-up":
      // A tenth of a millisecond says enough of a gateway's round trip.
      return `[Uplink] up ${kv("uplink", e.uplink)}${family(e.family)} ${kv("target", e.target)} ` +
        `rtt-ms=${Math.round(e.rttMs * 10) / 10}`;
    case "log-summary":
      return summaryLine(e);
  }
}

/** How a summary names its kind: the line's tag and what is counted. */
const SUMMARY_WORDS: Partial<Record<EventType, [string, string]>> = {
  "knock-failure": ["[Port Knock]", "failures"],
  "knock-replay": ["[Port Knock]", "replays refused"],
  "packet-drop-summary": ["[Drops]", "drops"],
};

/**
 * `[Port Knock] 18234 failures from 18012 sources in 10 s (wrong-port 18000,
 * window-expired 234; top: 198.18.0.7 x12; 5 shown)`.
 */
function summaryLine(e: LogSummaryEvent): string {
  const [tag, what] = SUMMARY_WORDS[e.kind] ?? ["[Log]", `${e.kind} events`];
  const from = e.sources > 0 ? ` from ${e.sources} source${e.sources === 1 ? "" : "s"}` : "";
  const parts: string[] = [];
  const reasons = Object.entries(e.reasons).map(([r, n]) => `${escapeControl(r)} ${n}`);
  if (reasons.length > 0) parts.push(reasons.join(", "));
  if (e.top.length > 0) parts.push(`top: ${e.top.map((t) => `${t.ip} x${t.count}`).join(", ")}`);
  parts.push(`${e.shown} shown`);
  const seconds = Math.max(1, Math.round(e.intervalMs / 1000));
  return `${tag} ${e.count} ${what}${from} in ${seconds} s (${parts.join("; ")})`;
}

/**
 * `key=value`, the value quoted when it is empty or holds a space, a quote or
 * `=`; control characters are escaped either way, so no value ends the line.
 */
function kv(key: string, value: string): string {
  const safe = escapeControl(value);
  return `${key}=${/^[^\s"=]+$/.test(safe) ? safe : `"${safe.replaceAll('"', '\\"')}"`}`;
}

/** `192.0.2.12:8080`, or `[2001:db8::12]:8080` for an IPv6 address. */
function hostPort(addr: string, port: number): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** ` key=value` when `value` is set, else nothing. */
/** ` family=ipv6` for the IPv6 probe's events; nothing for the IPv4 one's (as before). */
function family(f: "ipv6" | undefined): string {
  return f === undefined ? "" : ` family=${f}`;
}

function optional(key: string, value: string | undefined): string {
  return value === undefined ? "" : ` ${kv(key, value)}`;
}

/** ` reason=count` for every non-zero count, or ` none`. */
function dropList(drops: Record<string, number>): string {
  let out = "";
  for (const [reason, count] of Object.entries(drops)) {
    if (count > 0) out += ` ${kv(reason, String(count))}`;
  }
  return out === "" ? " none" : out;
}

/** `2023-10-17T05:36:54Z`: an ISO 8601 UTC time to the second. */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19) + "Z";
}
