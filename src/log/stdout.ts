/** Events as lines on standard output, the router's way: `2023-10-17 05:36:54 [Port Unlock] ...`. */

import type { ApplianceEvent, Severity } from "./events.ts";
import { formatEvent } from "./format.ts";
import type { LogSink } from "./sink.ts";

/** Options of a `StdoutSink`. */
export interface StdoutSinkOptions {
  /** Least severe severity written (default 6, info); debug events are left out. */
  maxSeverity?: Severity;
  /** Where lines go (default `console.log`); each call gets one line without a newline. */
  write?: (line: string) => void;
}

/** Writes one timestamped line per event. */
export class StdoutSink implements LogSink {
  #maxSeverity: Severity;
  #write: (line: string) => void;

  /** A sink writing to stdout, or to `options.write`. */
  constructor(options: StdoutSinkOptions = {}) {
    this.#maxSeverity = options.maxSeverity ?? 6;
    this.#write = options.write ?? ((line) => console.log(line));
  }

  /** Writes `e` unless it is less severe than the sink's limit. */
  emit(e: ApplianceEvent): void {
    if (e.severity > this.#maxSeverity) return;
    this.#write(formatLine(e));
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** `YYYY-MM-DD hh:mm:ss <event line>` with the time in UTC. */
export function formatLine(e: ApplianceEvent): string {
  return `${timestamp(e.time)} ${formatEvent(e)}`;
}

/** `2023-10-17 05:36:54` in UTC. */
export function timestamp(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}
