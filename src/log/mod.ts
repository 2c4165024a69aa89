/**
 * Appliance events and where they go: a `Logger` fanning events to stdout and
 * syslog collectors (RFC 5424 / RFC 3164 over UDP), with a ring of recent
 * events and live subscribers.
 *
 * ```ts
 * const logger = new Logger({ clock: systemClock, sinks: [new StdoutSink()] });
 * logger.record("knock-success", { ip: "203.0.113.10", user: "alice", drift: 0, step: 1, wan: "198.51.100.1" });
 * ```
 */

export * from "./events.ts";
export * from "./format.ts";
export * from "./logger.ts";
export * from "./sink.ts";
export * from "./stdout.ts";
export * from "./syslog.ts";
export * from "./escape.ts";
export * from "./limiter.ts";
