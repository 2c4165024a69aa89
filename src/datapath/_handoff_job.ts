/** The job `handoff_test.ts` posts to `_handoff_worker.ts`, and the packets both sides agree on. */

/** What one Worker of the test does. */
export interface HandoffJob {
  /**
   * `produce`: push `count` packets (retrying when full); `consume`: pop and check them.
   * `stamp` / `time`: one 64-byte packet every `pauseUs` carrying the time it was pushed; the
   * consumer, asleep on the doorbell between them, measures how late each arrives.
   */
  role: "produce" | "consume" | "stamp" | "time" | "consumeAll";
  ring: SharedArrayBuffer;
  /** `consumeAll`: every producer's ring, popped in turn, with one doorbell for all. */
  rings?: SharedArrayBuffer[];
  /** Workers in the test (for the common start); default 2. */
  workers?: number;
  /** The doorbell's fd, or -1: then the consumer spins instead of sleeping. */
  bellFd: number;
  /** Int32 words: [0] Workers started, for a common start. */
  sync: SharedArrayBuffer;
  seed: number;
  count: number;
  /** Largest packet size the producer draws (1..maxSize). */
  maxSize: number;
  /** Packets per burst at most; the producer pauses up to `pauseUs` after each burst. */
  burst: number;
  pauseUs: number;
  /** The Worker gives up after this long. */
  maxMs: number;
}

/** What a Worker posts back. */
export interface HandoffResult {
  /** Producer: pushes refused (ring full). Consumer: packets received. */
  done: number;
  refused: number;
  /** Consumer: the times it slept, and the sleeps that ended by timeout with records waiting. */
  sleeps: number;
  lostWakeups: number;
  errors: string[];
  /** `time`: push-to-pop latencies in microseconds, sorted. */
  latenciesUs?: number[];
}

/** xorshift32, seeded. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Byte `j` of packet `seq` (headroom bytes have negative `j`). */
export function patternByte(seq: number, j: number): number {
  return (seq * 131 + j * 7 + (j >> 8)) & 0xff;
}
