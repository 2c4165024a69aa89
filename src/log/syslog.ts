/**
 * Events to syslog collectors over UDP: RFC 5424 framing by default
 * (RFC 5426 transport: one message per datagram), RFC 3164 (BSD) as an option.
 * Uses `node:dgram`: `Deno.listenDatagram` is still unstable.
 *
 * A collector given by name is resolved in the background (the system
 * resolver, so /etc/hosts counts), each try bounded by a timeout and retried
 * with backoff; until it resolves its messages wait in a short queue. Nothing
 * here ever waits on DNS: not `emit`, not `flush`, not `close`.
 */

import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
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

/** Messages kept per collector while its name is unresolved; later ones are dropped. */
export const MAX_UNRESOLVED_QUEUE = 64;

/** Timing of background name resolution. */
export interface ResolveTiming {
  /** One lookup is given up after this long; default 3 s. */
  timeoutMs: number;
  /** First retry after a failure; doubled each time up to `maxRetryMs`; default 1 s. */
  retryMs: number;
  /** Longest wait between retries; default 60 s. */
  maxRetryMs: number;
  /** A resolved name is looked up again this often; default 10 minutes. */
  refreshMs: number;
}

const DEFAULT_TIMING: ResolveTiming = {
  timeoutMs: 3000,
  retryMs: 1000,
  maxRetryMs: 60_000,
  refreshMs: 600_000,
};

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
  /** Background resolution of collectors given by name. */
  resolve?: Partial<ResolveTiming>;
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
  /** Datagrams dropped because too many were pending, or queued for an unresolved name. */
  dropped: number;
  /** Lookups of collector names that failed or timed out (each is retried). */
  resolveFailures: number;
}

/** Where a collector stands: its address once resolved. */
export interface CollectorStatus {
  host: string;
  port: number;
  /** The address sent to, null while the name is unresolved. */
  address: string | null;
  /** Messages waiting for the name to resolve. */
  queued: number;
  /** Why the last lookup failed, if it did. */
  lastError: string | null;
}

/** One collector with its resolution state. */
class Target {
  address: string | null = null;
  family: 4 | 6 = 4;
  queue: Uint8Array[] = [];
  lastError: string | null = null;
  timer: ReturnType<typeof setTimeout> | undefined;
  backoffMs = 0;

  constructor(readonly c: Required<SyslogCollector>) {
    const family = isIP(c.host);
    if (family !== 0) {
      this.address = c.host;
      this.family = family as 4 | 6;
    }
  }
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

/** Sends every event to every configured collector; never throws on send, never waits on DNS. */
export class SyslogSink implements LogSink {
  #targets: Target[];
  #timing: ResolveTiming;
  #header: Omit<SyslogHeader, "facility">;
  #maxSeverity: Severity;
  #sockets = new Map<"udp4" | "udp6", dgram.Socket>();
  #encoder = new TextEncoder();
  #pending = 0;
  #idle: (() => void)[] = [];
  #closed = false;
  /** Counters since the sink was created. */
  readonly stats: SyslogStats = { sent: 0, errors: 0, dropped: 0, resolveFailures: 0 };

  /** A sink for `options.collectors`; names start resolving now, sockets open on first use. */
  constructor(options: SyslogSinkOptions) {
    this.#timing = { ...DEFAULT_TIMING, ...options.resolve };
    this.#targets = options.collectors.map((c) =>
      new Target({
        host: c.host,
        port: c.port ?? DEFAULT_SYSLOG_PORT,
        format: c.format ?? "rfc5424",
        facility: c.facility ?? DEFAULT_FACILITY,
      })
    );
    this.#header = {
      hostname: options.hostname ?? localHostname(),
      appName: options.appName ?? "knockgate",
      procId: options.procId ?? String(Deno.pid),
    };
    this.#maxSeverity = options.maxSeverity ?? 6;
    for (const t of this.#targets) if (t.address === null) this.#resolve(t);
  }

  /** Each collector's address (null while unresolved) and queue. */
  collectors(): CollectorStatus[] {
    return this.#targets.map((t) => ({
      host: t.c.host,
      port: t.c.port,
      address: t.address,
      queued: t.queue.length,
      lastError: t.lastError,
    }));
  }

  /** Frames `e` for each collector and sends it; queues while unresolved; drops when closed or overloaded. */
  emit(e: ApplianceEvent): void {
    if (this.#closed || e.severity > this.#maxSeverity) return;
    for (const t of this.#targets) {
      const header = { ...this.#header, facility: t.c.facility };
      const text = t.c.format === "rfc3164" ? frameRfc3164(e, header) : frameRfc5424(e, header);
      const bytes = this.#encoder.encode(text);
      if (t.address !== null) this.#send(t, bytes);
      else if (t.queue.length < MAX_UNRESOLVED_QUEUE) t.queue.push(bytes);
      else this.stats.dropped++;
    }
  }

  /** Resolves once every datagram handed to the kernel so far has been sent or failed (queued ones are not waited for). */
  flush(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops resolving, flushes, then closes the sockets; later events and queued messages are dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#targets) {
      clearTimeout(t.timer);
      this.stats.dropped += t.queue.length;
      t.queue = [];
    }
    await this.flush();
    const closing = [...this.#sockets.values()].map((s) =>
      new Promise<void>((resolve) => s.close(() => resolve()))
    );
    this.#sockets.clear();
    await Promise.all(closing);
  }

  /** Looks `t`'s name up once, bounded by the timeout; schedules the retry or the refresh. */
  async #resolve(t: Target): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer in ${this.#timing.timeoutMs} ms`)),
        this.#timing.timeoutMs,
      );
      Deno.unrefTimer(timer);
    });
    try {
      const all = await Promise.race([lookup(t.c.host, { all: true, verbatim: true }), timeout]);
      if (this.#closed) return;
      // IPv4 first: that is what collectors listen on most (and "localhost" may list ::1 first).
      const found = all.find((a) => a.family === 4) ?? all[0];
      if (found === undefined) throw new Error("no address");
      t.address = found.address;
      t.family = found.family === 6 ? 6 : 4;
      t.lastError = null;
      t.backoffMs = 0;
      for (const bytes of t.queue.splice(0)) this.#send(t, bytes);
      this.#schedule(t, this.#timing.refreshMs);
    } catch (err) {
      if (this.#closed) return;
      this.stats.resolveFailures++;
      t.lastError = err instanceof Error ? err.message : String(err);
      // A name that stopped resolving keeps its last address until one resolves again.
      t.backoffMs = Math.min(
        this.#timing.maxRetryMs,
        t.backoffMs === 0 ? this.#timing.retryMs : 2 * t.backoffMs,
      );
      this.#schedule(t, t.backoffMs);
    } finally {
      clearTimeout(timer);
    }
  }

  #schedule(t: Target, ms: number): void {
    t.timer = setTimeout(() => this.#resolve(t), ms);
    Deno.unrefTimer(t.timer);
  }

  #send(t: Target, bytes: Uint8Array): void {
    if (this.#pending >= MAX_PENDING) {
      this.stats.dropped++;
      return;
    }
    this.#pending++;
    try {
      this.#socket(t.family === 6 ? "udp6" : "udp4").send(bytes, t.c.port, t.address!, (err) => {
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
