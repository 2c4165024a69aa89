/** The messages and key pool of `shared_table_test.ts` and its Workers (`_shared_table_worker.ts`). */
import { PROTO_UDP } from "./constants.ts";

/** What the test sends. */
export interface WorkerJob {
  buffer: SharedArrayBuffer;
  sync: SharedArrayBuffer;
  shard: number;
  seed: number;
  ops: number;
  maxMs: number;
  keys: number;
}

/** What the Worker answers. */
export interface WorkerResult {
  held: [number, number][];
  errors: string[];
  ops: number;
  created: number;
  clashes: number;
}

const WAN = 0xc6336402; // 198.51.100.2
const SERVER = 0xc000020a; // 192.0.2.10

/**
 * Key `k`'s tuples: client 203.0.113.x:port -> WAN:52201..52203, DNATed to
 * SERVER:8080. The three keys of one client differ only in the WAN port and
 * share the reply tuple, so creates clash on either tuple.
 */
export function keyTuples(k: number): { orig: number[]; reply: number[] } {
  const client = Math.floor(k / 3);
  const src = 0xcb007100 + (client & 31);
  const sport = 1000 + (client >> 5);
  return {
    orig: [PROTO_UDP, src, sport, WAN, 52201 + (k % 3)],
    reply: [PROTO_UDP, SERVER, 8080, src, sport],
  };
}

/** The TCP hammer (`_tcp_hammer_worker.ts`): an owner and trackers on one `workers` table. */
export interface HammerJob {
  role: "owner" | "tracker";
  buffer: SharedArrayBuffer;
  /** Int32 words, see HAMMER_*. */
  sync: SharedArrayBuffer;
  worker: number;
  /** Tracker Workers (the owner waits for them to finish). */
  trackers: number;
  seed: number;
  /** Batches at most, and milliseconds at most (the owner's; trackers stop when it does). */
  batches: number;
  maxMs: number;
  keys: number;
}

/** One direction of one flow generation as the tracker that played it left it. */
export interface HammerEnd {
  id: number;
  generation: number;
  dir: number;
  /** The sender's next sequence number (what td_end must be). */
  next: number;
  /** Its FIN was accepted. */
  fin: boolean;
  /** Data segments accepted. */
  data: number;
}

/** What a hammer Worker answers. */
export interface HammerResult {
  errors: string[];
  batches: number;
  /** Owner: flows created, removed, killed, refused (FULL), gone by `onExpire` reason. */
  counts: Record<string, number>;
  /** Owner: its table's stats, limbo and slot census after the final drain. */
  stats: Record<string, number>;
  /** Tracker: the directions it played, per live flow generation. */
  ends: HammerEnd[];
}

/**
 * Sync words of the hammer (Int32): Workers started, the current second,
 * trackers finished, the owner's stop, a word nobody changes (to sleep on),
 * then each tracker's batch count (the owner's clock follows the slowest).
 */
export const HAMMER_STARTED = 0, HAMMER_NOW = 1, HAMMER_DONE = 2, HAMMER_STOP = 3, HAMMER_IDLE = 4;
export const HAMMER_PROGRESS = 8;
/** Bytes of the hammer's sync buffer (up to 8 trackers). */
export const HAMMER_SYNC_BYTES = 4 * (HAMMER_PROGRESS + 8);
/** The hammer's first second. */
export const HAMMER_T0 = 1_700_000_000;
/** Short timeouts, so the owner's wheel frees flows in every state while the trackers run. */
export const HAMMER_TIMEOUTS = {
  tcpSynSent: 6,
  tcpSynRecv: 3,
  tcpEstablished: 12,
  tcpFinWait: 4,
  tcpCloseWait: 4,
  tcpLastAck: 3,
  tcpTimeWait: 2,
  tcpClose: 1,
};

const CLIENT_NET = 0xcb007100; // 203.0.113.0

/**
 * Hammer key `k`'s TCP tuples: client 203.0.113.x:40000+k -> WAN:52201,
 * DNATed to SERVER:8080 (the reply tuple differs from the inverted original,
 * as it does on two queues).
 */
export function hammerTuples(k: number): { orig: number[]; reply: number[] } {
  const src = CLIENT_NET + (k & 0xff);
  const sport = 40000 + k;
  return { orig: [6, src, sport, WAN, 52201], reply: [6, SERVER, 8080, src, sport] };
}
