/** The shared control words of `mq_probe.ts` and `_mq_queue_worker.ts`. */

/** Flows (UDP source ports `FIRST_PORT + f`) the probe sends to `PEER:PEER_PORT`. */
export const FLOWS = 16;
export const FIRST_PORT = 41000;
export const PEER_PORT = 9000;
export const LOCAL = "198.51.100.1";
export const PEER = "198.51.100.2";
export const MTU = 1400;

// Int32 indexes of the control buffer.
/** Set to 1: the Workers stop. */
export const STOP = 0;
/** Workers that started. */
export const READY = 1;
/** Count phase: counts go to block `PHASE` (0 before the writes, 1 after). */
export const PHASE = 2;
/**
 * A write request: `WRITE_MASK` bit f set asks Worker `WRITE_BY[f]` to write a reply of flow f
 * through queue `WRITE_VIA[f]`.
 */
export const WRITE_MASK = 3;
/** Writes done. */
export const WRITES_DONE = 4;
/** The doorbell test: 1 asks Worker 0 to wait, 2 it is about to, 3 done. */
export const BELL = 5;
/** Its result: 1 the wait returned true, 2 false. */
export const BELL_WOKE = 6;
/** Packets Worker 0 could read after that wait (0: the bell, not a packet, woke it). */
export const BELL_READ = 7;
/** Set to 1: both Workers write `SHARED_WRITES` datagrams through queue 0 at once. */
export const SHARED = 8;
/** Workers done with the shared writes. */
export const SHARED_DONE = 9;
/** Base of the shared writes the kernel accepted, per Worker: `SHARED_OK + index`. */
export const SHARED_OK = 10;
/** Datagrams each Worker writes through queue 0 in the shared-write phase, in bursts of 10. */
export const SHARED_WRITES = 100;
/** The local port they go to. */
export const SHARED_PORT = 42000;
/** Base of the per-flow Worker that writes the reply, `WRITE_BY + f`. */
export const WRITE_BY = 16;
/** Base of the per-flow queue it writes the reply through, `WRITE_VIA + f`. */
export const WRITE_VIA = 40;
/** Base of the counts: `COUNTS + (phase * 2 + queue) * FLOWS + f`. */
export const COUNTS = 64;
export const CONTROL_WORDS = COUNTS + 4 * FLOWS;

/** What the probe posts to each Worker. */
export interface QueueJob {
  index: number;
  /** Every queue's fd; the Worker reads `fds[index]` and may write through any. */
  fds: number[];
  name: string;
  mtu: number;
  offload: boolean;
  bellFd: number;
  control: SharedArrayBuffer;
  maxMs: number;
}
