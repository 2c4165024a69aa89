/** The contract between the `Logger` and the places events go. */

import type { ApplianceEvent } from "./events.ts";

/** A destination for events: stdout, syslog collectors, a test array. */
export interface LogSink {
  /** Takes one event; must not throw and must not block (queue or drop instead). */
  emit(e: ApplianceEvent): void;
  /** Waits for queued output and releases resources. */
  close(): Promise<void>;
}

/** Keeps every event in an array; for tests. */
export class MemorySink implements LogSink {
  /** Events received, in order. */
  readonly events: ApplianceEvent[] = [];
  /** Whether `close()` was called. */
  closed = false;

  /** Appends `e` to `events`. */
  emit(e: ApplianceEvent): void {
    this.events.push(e);
  }

  /** Marks the sink closed. */
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
