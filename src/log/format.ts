/**
 * One human-readable line per event, in the style of the DrayTek router's
 * syslog (`[Port Unlock] P:6 203.0.113.10:42829->198.51.100.1:52201 #192.0.2.12:8080`).
 * The same line is the MSG of a syslog message and the tail of a stdout line.
 */

import type { ApplianceEvent } from "./events.ts";

/** Formats `e` as one line without a timestamp and without a trailing newline. */
export function formatEvent(e: ApplianceEvent): string {
  switch (e.type) {
    case "knock-success":
      return `[Port Knock] success ${kv("user", e.user)} ${kv("ip", e.ip)} drift=${e.drift} ` +
        `step=${e.step}`;
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
      // The router's exact text: P:<IP protocol> src:port->wan:port #private:port.
      return `[Port Unlock] P:${e.proto} ${e.src}:${e.srcPort}->${e.dst}:${e.dstPort} ` +
        `#${e.privateAddr}:${e.privatePort}`;
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
  }
}

/** `key=value`, the value quoted when it is empty or holds a space, a quote or `=`. */
function kv(key: string, value: string): string {
  return `${key}=${/^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`;
}

/** ` key=value` when `value` is set, else nothing. */
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
