/**
 * The `Logger` fans events out to sinks, keeps the most recent ones in
 * bounded rings (for the API's event list) and feeds live subscribers (for
 * the API's event stream). Every event gets a sequence number, so a stream
 * client can resume after the last one it saw.
 *
 * History is kept per event class (`access`, `flow`, `system`, `failure`),
 * one ring each, so a flood of failures cannot push out the last success.
 * The sinks (stdout, syslog) get flood-prone events through a `LogLimiter`:
 * the first few of an interval in full, the rest as one summary line.
 * Rings and subscribers get every event.
 */

import type { Clock } from "../clock.ts";
import {
  type ApplianceEvent,
  EVENT_CLASSES,
  type EventClass,
  eventClass,
  type EventFields,
  type EventOf,
  type EventType,
  makeEvent,
  type Severity,
} from "./events.ts";
import { LogLimiter, type LogLimiterOptions } from "./limiter.ts";
import type { LogSink } from "./sink.ts";

/** An event with its sequence number (1, 2, ... in the order logged). */
export interface LogEntry {
  seq: number;
  event: ApplianceEvent;
}

/** Called for every event as it is logged. */
export type LogListener = (event: ApplianceEvent, seq: number) => void;

/** Options of a `Logger`. */
export interface LoggerOptions {
  /** Time source for `record()`. */
  clock: Clock;
  sinks?: LogSink[];
  /** Events kept per class for `recent()` / `entries()`; default 1000. */
  capacity?: number;
  /** Rate limits of the sinks; `false` gives the sinks every event. */
  limits?: LogLimiterOptions | false;
}

/** A bounded ring of entries, oldest overwritten first. */
class Ring {
  readonly #slots: (LogEntry | undefined)[];
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    this.#slots = new Array(capacity).fill(undefined);
  }

  push(entry: LogEntry): void {
    this.#slots[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#slots.length;
    this.#size = Math.min(this.#size + 1, this.#slots.length);
  }

  /** Entries with a sequence number above `afterSeq`, oldest first. */
  after(afterSeq: number): LogEntry[] {
    const out: LogEntry[] = [];
    const n = this.#slots.length;
    for (let i = this.#size; i > 0; i--) {
      const e = this.#slots[(this.#next - i + n) % n]!;
      if (e.seq > afterSeq) out.push(e);
    }
    return out;
  }
}

/** Fans events to sinks and subscribers and remembers the last `capacity` of them. */
export class Logger {
  #clock: Clock;
  #sinks: LogSink[];
  #capacity: number;
  #rings: Record<EventClass, Ring>;
  #limiter: LogLimiter | null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #seq = 0;
  #listeners = new Set<LogListener>();
  /** Sink or listener calls that threw (they are isolated from each other). */
  failures = 0;

  /** A logger with `options.sinks` and rings of `options.capacity` events per class. */
  constructor(options: LoggerOptions) {
    const capacity = options.capacity ?? 1000;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`Cannot create logger: capacity ${capacity} is not a positive integer`);
    }
    this.#clock = options.clock;
    this.#sinks = [...(options.sinks ?? [])];
    this.#capacity = capacity;
    this.#rings = Object.fromEntries(EVENT_CLASSES.map((c) => [c, new Ring(capacity)])) as Record<
      EventClass,
      Ring
    >;
    this.#limiter = options.limits === false ? null : new LogLimiter(options.limits);
  }

  /** Number of events each class's ring keeps. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Sequence number of the last event logged (0 before the first). */
  get lastSeq(): number {
    return this.#seq;
  }

  /** Adds a sink; it sees events logged from now on. */
  addSink(sink: LogSink): void {
    this.#sinks.push(sink);
  }

  /** Detaches `sink` (it is not closed); true when it was attached. */
  removeSink(sink: LogSink): boolean {
    const i = this.#sinks.indexOf(sink);
    if (i >= 0) this.#sinks.splice(i, 1);
    return i >= 0;
  }

  /** Logs a complete event; returns its sequence number. */
  log(event: ApplianceEvent): number {
    const limiter = this.#limiter;
    if (limiter === null) return this.#log(event, true);
    // An interval that ended before this event is summarised before it.
    for (const summary of limiter.due(event.time)) this.#log(summary, true);
    const seq = this.#log(event, limiter.admit(event));
    if (limiter.pending) this.#arm();
    return seq;
  }

  /** Writes the summaries of every interval that has ended by now (all with `all`). */
  flushSummaries(all = false): void {
    if (this.#limiter === null) return;
    for (const summary of this.#limiter.due(this.#clock.now(), all)) this.#log(summary, true);
  }

  #log(event: ApplianceEvent, toSinks: boolean): number {
    const seq = ++this.#seq;
    this.#rings[eventClass(event)].push({ seq, event });
    if (toSinks) this.#emit(event);
    for (const listener of this.#listeners) {
      try {
        listener(event, seq);
      } catch {
        this.failures++;
      }
    }
    return seq;
  }

  /** Schedules the summary of the earliest open interval (one timer at a time). */
  #arm(): void {
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#limiter!.nextDue() - this.#clock.now());
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.flushSummaries();
      if (this.#limiter!.pending) this.#arm();
    }, Math.min(wait, this.#limiter!.intervalMs));
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #emit(event: ApplianceEvent): void {
    for (const sink of this.#sinks) {
      try {
        sink.emit(event);
      } catch {
        this.failures++;
      }
    }
  }

  /** Builds an event stamped with the clock's time (default severity unless given) and logs it. */
  record<T extends EventType>(type: T, fields: EventFields<T>, severity?: Severity): EventOf<T> {
    const event = makeEvent(this.#clock, type, fields, severity);
    this.log(event);
    return event;
  }

  /**
   * Entries with a sequence number above `afterSeq` still kept, of the
   * given classes (default all), oldest first, at most `limit`.
   */
  entries(
    afterSeq = 0,
    limit = Infinity,
    classes: readonly EventClass[] = EVENT_CLASSES,
  ): LogEntry[] {
    const all = classes.flatMap((c) => this.#rings[c].after(afterSeq));
    if (classes.length > 1) all.sort((a, b) => a.seq - b.seq);
    return all.slice(0, limit);
  }

  /** The last `limit` events kept (default all), of the given classes, oldest first. */
  recent(limit = Infinity, classes: readonly EventClass[] = EVENT_CLASSES): ApplianceEvent[] {
    const all = this.entries(0, Infinity, classes);
    return all.slice(Math.max(0, all.length - limit)).map((e) => e.event);
  }

  /** Calls `listener` for every event logged from now on; returns the unsubscribe function. */
  subscribe(listener: LogListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Writes the open summaries, closes every sink (flushing queued output); subscribers are dropped. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.flushSummaries(true);
    this.#listeners.clear();
    await Promise.all(this.#sinks.map((s) => s.close()));
  }
}
