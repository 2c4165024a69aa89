/**
 * The `Logger` fans events out to sinks, keeps the most recent ones in a
 * bounded ring (for the API's event list) and feeds live subscribers (for
 * the API's event stream). Every event gets a sequence number, so a stream
 * client can resume after the last one it saw.
 */

import type { Clock } from "../clock.ts";
import {
  type ApplianceEvent,
  type EventFields,
  type EventOf,
  type EventType,
  makeEvent,
  type Severity,
} from "./events.ts";
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
  /** Events kept for `recent()` / `entries()`; default 1000. */
  capacity?: number;
}

/** Fans events to sinks and subscribers and remembers the last `capacity` of them. */
export class Logger {
  #clock: Clock;
  #sinks: LogSink[];
  #ring: (ApplianceEvent | undefined)[];
  #seq = 0;
  #listeners = new Set<LogListener>();
  /** Sink or listener calls that threw (they are isolated from each other). */
  failures = 0;

  /** A logger with `options.sinks` and a ring of `options.capacity` events. */
  constructor(options: LoggerOptions) {
    const capacity = options.capacity ?? 1000;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`Cannot create logger: capacity ${capacity} is not a positive integer`);
    }
    this.#clock = options.clock;
    this.#sinks = [...(options.sinks ?? [])];
    this.#ring = new Array(capacity).fill(undefined);
  }

  /** Number of events the ring keeps. */
  get capacity(): number {
    return this.#ring.length;
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
    const seq = ++this.#seq;
    // Slot of sequence n is (n - 1) mod capacity: the oldest entry is overwritten.
    this.#ring[(seq - 1) % this.#ring.length] = event;
    for (const sink of this.#sinks) {
      try {
        sink.emit(event);
      } catch {
        this.failures++;
      }
    }
    for (const listener of this.#listeners) {
      try {
        listener(event, seq);
      } catch {
        this.failures++;
      }
    }
    return seq;
  }

  /** Builds an event stamped with the clock's time (default severity unless given) and logs it. */
  record<T extends EventType>(type: T, fields: EventFields<T>, severity?: Severity): EventOf<T> {
    const event = makeEvent(this.#clock, type, fields, severity);
    this.log(event);
    return event;
  }

  /** Entries with a sequence number above `afterSeq` still in the ring, oldest first, at most `limit`. */
  entries(afterSeq = 0, limit = Infinity): LogEntry[] {
    const first = Math.max(afterSeq + 1, this.#seq - this.#ring.length + 1, 1);
    const last = Math.min(this.#seq, first + limit - 1);
    const out: LogEntry[] = [];
    for (let seq = first; seq <= last; seq++) {
      out.push({ seq, event: this.#ring[(seq - 1) % this.#ring.length]! });
    }
    return out;
  }

  /** The last `limit` events (default all kept), oldest first. */
  recent(limit = this.#ring.length): ApplianceEvent[] {
    return this.entries(Math.max(0, this.#seq - limit)).map((e) => e.event);
  }

  /** Calls `listener` for every event logged from now on; returns the unsubscribe function. */
  subscribe(listener: LogListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Closes every sink (flushing queued output); subscribers are dropped. */
  async close(): Promise<void> {
    this.#listeners.clear();
    await Promise.all(this.#sinks.map((s) => s.close()));
  }
}
