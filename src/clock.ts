/**
 * Time, passed in rather than read deep inside: every layer that needs the
 * time takes a `Clock`, so tests drive it by hand.
 */

/** A source of the current time in milliseconds since the Unix epoch. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The system's wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to; for tests. */
export class ManualClock implements Clock {
  #ms: number;
  /** Starts at `ms` milliseconds since the epoch. */
  constructor(ms = 0) {
    this.#ms = ms;
  }
  /** The current manual time in milliseconds. */
  now(): number {
    return this.#ms;
  }
  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.#ms += ms;
  }
  /** Sets the clock to `ms` milliseconds since the epoch. */
  set(ms: number): void {
    this.#ms = ms;
  }
}
