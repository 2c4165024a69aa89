/**
 * Rate limits for the log sinks: of the events an attacker can cause at will
 * (knock failures, refused replays, drops), the first few of each interval
 * are written in full and the rest are counted into one `log-summary` per
 * kind and interval. Everything else (successes, penalties, config changes)
 * always passes. Memory is fixed per kind, however many sources a flood uses.
 */
import { DistinctCounter, TopCounter } from "./_sketch.ts";
import type { ApplianceEvent, EventType, LogSummaryEvent } from "./events.ts";
import { DEFAULT_SEVERITY } from "./events.ts";

/** Event types a flood produces: they are limited unless a `LogLimiter` is told otherwise. */
export const LIMITED_TYPES: readonly EventType[] = [
  "knock-failure",
  "knock-replay",
  "packet-drop-summary",
];

/** Options of a `LogLimiter`. */
export interface LogLimiterOptions {
  /** Length of an interval in ms; default 10 s. */
  intervalMs?: number;
  /** Events of a kind written in full at the start of each interval; default 5. */
  burst?: number;
  /** Sources named in a summary; default 3. */
  topN?: number;
  /** Types to limit; default `LIMITED_TYPES`. */
  types?: readonly EventType[];
}

/** Reasons counted apart per kind; more are counted as `other`. */
const MAX_REASONS = 16;

/** One kind's current interval. */
class Window {
  start = 0;
  /** Events seen. */
  events = 0;
  /** What they count: one each, or a drop summary's drops. */
  count = 0;
  shown = 0;
  readonly reasons = new Map<string, number>();
  readonly sources = new DistinctCounter(12);
  readonly top = new TopCounter(128);

  reset(start: number): void {
    this.start = start;
    this.events = 0;
    this.count = 0;
    this.shown = 0;
    this.reasons.clear();
    this.sources.clear();
    this.top.clear();
  }

  addReason(reason: string, n: number): void {
    const key = this.reasons.has(reason) || this.reasons.size < MAX_REASONS ? reason : "other";
    this.reasons.set(key, (this.reasons.get(key) ?? 0) + n);
  }
}

/** Says which events the sinks get in full and builds the summaries of the rest. */
export class LogLimiter {
  readonly intervalMs: number;
  readonly burst: number;
  readonly #topN: number;
  readonly #windows = new Map<EventType, Window>();

  /** A limiter with `options` (10 s intervals, 5 in full, top 3 by default). */
  constructor(options: LogLimiterOptions = {}) {
    this.intervalMs = options.intervalMs ?? 10_000;
    this.burst = options.burst ?? 5;
    this.#topN = options.topN ?? 3;
    for (const t of options.types ?? LIMITED_TYPES) this.#windows.set(t, new Window());
  }

  /**
   * Counts `e`; true when the sinks should get it in full. Call `due()`
   * first so an interval that ended before `e` is summarised before it.
   */
  admit(e: ApplianceEvent): boolean {
    const w = this.#windows.get(e.type);
    if (w === undefined) return true;
    if (w.events === 0) w.reset(e.time);
    w.events++;
    if (e.type === "packet-drop-summary") {
      for (const [reason, n] of Object.entries(e.drops)) {
        w.count += n;
        w.addReason(reason, n);
      }
    } else {
      w.count++;
      if ("reason" in e && typeof e.reason === "string") w.addReason(e.reason, 1);
    }
    if ("ip" in e && typeof e.ip === "string") {
      w.sources.add(e.ip);
      w.top.add(e.ip);
    }
    const full = w.shown < this.burst;
    if (full) w.shown++;
    return full;
  }

  /** Whether some kind has events the sinks did not get; when so, `due()` must run by `nextDue()`. */
  get pending(): boolean {
    for (const w of this.#windows.values()) if (this.#suppressed(w)) return true;
    return false;
  }

  /** The end of the earliest interval that holds events, or Infinity. */
  nextDue(): number {
    let next = Infinity;
    for (const w of this.#windows.values()) {
      if (w.events > 0) next = Math.min(next, w.start + this.intervalMs);
    }
    return next;
  }

  /**
   * Closes every interval that ended by `nowMs` (all of them with `all`):
   * returns a summary for each that held events the sinks did not get.
   */
  due(nowMs: number, all = false): LogSummaryEvent[] {
    const out: LogSummaryEvent[] = [];
    for (const [kind, w] of this.#windows) {
      if (w.events === 0 || (!all && nowMs < w.start + this.intervalMs)) continue;
      if (this.#suppressed(w)) out.push(this.#summary(kind, w, nowMs));
      w.events = 0;
    }
    return out;
  }

  #suppressed(w: Window): boolean {
    return w.events > w.shown;
  }

  #summary(kind: EventType, w: Window, nowMs: number): LogSummaryEvent {
    const reasons: Record<string, number> = {};
    for (const [r, n] of [...w.reasons].sort((a, b) => b[1] - a[1])) reasons[r] = n;
    return {
      type: "log-summary",
      time: nowMs,
      severity: DEFAULT_SEVERITY["log-summary"],
      kind,
      intervalMs: Math.min(this.intervalMs, Math.max(0, nowMs - w.start)) || this.intervalMs,
      count: w.count,
      shown: w.shown,
      sources: w.sources.estimate(),
      reasons,
      // Only sources seen more than once for certain: in a flood of one-off
      // spoofed sources there is no busiest one to name.
      top: w.top.top(this.#topN, 2).map(({ key, count }) => ({ ip: key, count })),
    };
  }
}
