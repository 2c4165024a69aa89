/**
 * Events to syslog collectors over UDP: RFC 5424 framing by default
 * (RFC 5426 transport: one message per datagram), RFC 3164 (BSD) as an option.
 * Uses `node:dgram`: `Deno.listenDatagram` is still unstable.
 */

import dgram from "node:dgram";
import { isIPv6 } from "node:net";
import type { ApplianceEvent, Severity } from "./events.ts";
import { formatEvent } from "./format.ts";
import type { LogSink } from "./sink.ts";

/** Message framing a collector expects. */
export type SyslogFormat = "rfc5424" | "rfc3164";

/** Default facility: 16, `local0`. */
export const DEFAULT_FACILITY = 16;

/** Default syslog UDP port. */
export const DEFAULT_SYSLOG_PORT = 514;

/** Datagrams waiting for the kernel beyond which new ones are dropped, not queued. */
const MAX_PENDING = 1024;

/** One collector to send to. */
export interface SyslogCollector {
  /** Host name or IP address. */
  host: string;
  /** UDP port, default 514. */
  port?: number;
  /** Framing, default `rfc5424`. */
  format?: SyslogFormat;
  /** Facility 0..23, default 16 (`local0`). */
  facility?: number;
}

/** Options of a `SyslogSink`. */
export interface SyslogSinkOptions {
  collectors: SyslogCollector[];
  /** HOSTNAME field; default the machine's host name. */
  hostname?: string;
  /** APP-NAME (RFC 5424) and TAG (RFC 3164); default `knockgate`. */
  appName?: string;
  /** PROCID; default this process's id. */
  procId?: string;
  /** Least severe severity sent (default 6, info). */
  maxSeverity?: Severity;
}

/** What a message header needs besides the event. */
export interface SyslogHeader {
  facility: number;
  hostname: string;
  appName: string;
  procId: string;
}

/** Counters of a `SyslogSink`. */
export interface SyslogStats {
  /** Datagrams handed to the kernel successfully. */
  sent: number;
  /** Datagrams that failed (resolution or send error). */
  errors: number;
  /** Datagrams dropped because too many were pending. */
  dropped: number;
}

/** PRI value: facility * 8 + severity (RFC 5424 §6.2.1). */
export function priority(facility: number, severity: Severity): number {
  return facility * 8 + severity;
}

/**
 * `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG` (RFC 5424 §6), with
 * the event type as MSGID, no structured data, and MSG without a BOM.
 */
export function frameRfc5424(e: ApplianceEvent, h: SyslogHeader): string {
  const time = new Date(e.time).toISOString();
  return `<${priority(h.facility, e.severity)}>1 ${time} ${field(h.hostname, 255)} ` +
    `${field(h.appName, 48)} ${field(h.procId, 128)} ${field(e.type, 32)} - ${formatEvent(e)}`;
}

/** `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PROCID]: MSG` (RFC 3164 §4.1), time in UTC. */
export function frameRfc3164(e: ApplianceEvent, h: SyslogHeader): string {
  const tag = `${field(h.appName, 32)}[${field(h.procId, 128)}]`;
  return `<${priority(h.facility, e.severity)}>${bsdTimestamp(e.time)} ${field(h.hostname, 255)} ` +
    `${tag}: ${formatEvent(e)}`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `Oct  7 05:36:54`: the day is padded with a space, not a zero (RFC 3164 §4.1.2). */
export function bsdTimestamp(ms: number): string {
  const d = new Date(ms);
  const day = String(d.getUTCDate()).padStart(2, " ");
  return `${MONTHS[d.getUTCMonth()]} ${day} ${d.toISOString().slice(11, 19)}`;
}

/** A header field: printable ASCII without spaces, at most `max` characters, `-` when empty. */
function field(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, "_").slice(0, max);
  return clean === "" ? "-" : clean;
}

/** Sends every event to every configured collector; never throws on send. */
export class SyslogSink implements LogSink {
  #collectors: Required<SyslogCollector>[];
  #header: Omit<SyslogHeader, "facility">;
  #maxSeverity: Severity;
  #sockets = new Map<"udp4" | "udp6", dgram.Socket>();
  #encoder = new TextEncoder();
  #pending = 0;
  #idle: (() => void)[] = [];
  #closed = false;
  /** Counters since the sink was created. */
  readonly stats: SyslogStats = { sent: 0, errors: 0, dropped: 0 };

  /** A sink for `options.collectors`; sockets open on first use. */
  constructor(options: SyslogSinkOptions) {
    this.#collectors = options.collectors.map((c) => ({
      host: c.host,
      port: c.port ?? DEFAULT_SYSLOG_PORT,
      format: c.format ?? "rfc5424",
      facility: c.facility ?? DEFAULT_FACILITY,
    }));
    this.#header = {
      hostname: options.hostname ?? localHostname(),
      appName: options.appName ?? "knockgate",
      procId: options.procId ?? String(Deno.pid),
    };
    this.#maxSeverity = options.maxSeverity ?? 6;
  }

  /** Frames `e` for each collector and sends it; drops when closed or overloaded. */
  emit(e: ApplianceEvent): void {
    if (this.#closed || e.severity > this.#maxSeverity) return;
    for (const c of this.#collectors) {
      const header = { ...this.#header, facility: c.facility };
      const text = c.format === "rfc3164" ? frameRfc3164(e, header) : frameRfc5424(e, header);
      this.#send(c, this.#encoder.encode(text));
    }
  }

  /** Resolves once every datagram handed to the kernel so far has been sent or failed. */
  flush(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Flushes, then closes the sockets; later events are ignored. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    const closing = [...this.#sockets.values()].map((s) =>
      new Promise<void>((resolve) => s.close(() => resolve()))
    );
    this.#sockets.clear();
    await Promise.all(closing);
  }

  #send(c: Required<SyslogCollector>, bytes: Uint8Array): void {
    if (this.#pending >= MAX_PENDING) {
      this.stats.dropped++;
      return;
    }
    this.#pending++;
    try {
      this.#socket(isIPv6(c.host) ? "udp6" : "udp4").send(bytes, c.port, c.host, (err) => {
        this.#done(err);
      });
    } catch (err) {
      // send() throws synchronously on a bad port or a closed socket.
      this.#done(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #done(err: Error | null): void {
    if (err) this.stats.errors++;
    else this.stats.sent++;
    if (--this.#pending === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  #socket(type: "udp4" | "udp6"): dgram.Socket {
    let s = this.#sockets.get(type);
    if (!s) {
      s = dgram.createSocket(type);
      // An unresolvable host or an ICMP error surfaces here; count it, never crash.
      s.on("error", () => this.stats.errors++);
      this.#sockets.set(type, s);
    }
    return s;
  }
}

/** The machine's host name, or `-` when it cannot be read (no --allow-sys). */
function localHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "-";
  }
}
