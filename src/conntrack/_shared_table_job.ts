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
