/**
 * The node registry: every appliance sharing a store writes its own record
 * under `["nodes", name]` every `HEARTBEAT_MS` (its management URL, version,
 * when it started and its data plane's flow and unlock counts), so any node
 * can show the whole fleet. A record whose heartbeat is older than
 * `DOWN_AFTER_MS` (3 heartbeats) is a node that is down, partitioned from the
 * store or removed. Records expire a day after their last heartbeat
 * (`expireIn`), so a removed node disappears by itself; `remove` drops one at
 * once. Heartbeats are in no area the data plane follows (`areaOf`), so they
 * never re-sync anything.
 */
import type { Clock } from "../clock.ts";
import { ValidationError } from "./errors.ts";
import type { StoreKv } from "./store_kv.ts";

const PREFIX: Deno.KvKey = ["nodes"];
/** How often a node writes its record. */
export const HEARTBEAT_MS = 5_000;
/** A node whose last heartbeat is older than this (3 heartbeats) is shown down. */
export const DOWN_AFTER_MS = 3 * HEARTBEAT_MS;
/** How long a record outlives its last heartbeat. */
const KEEP_MS = 24 * 3600_000;
/** What a node name may be. */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** What a node says about itself. */
export interface NodeRecord {
  /** `--node-name`, else the host name. */
  name: string;
  /** Its management API, e.g. `https://192.0.2.2:8443/`. */
  url: string;
  version: string;
  /** When it started, ms since the epoch. */
  startedAt: number;
  /** When it wrote this record, ms since the epoch (its own clock). */
  heartbeatAt: number;
  /** Its data plane's tracked flows and unlocked IPs at that time. */
  flows: number;
  unlocks: number;
}

/** A record as listed: `up` while its heartbeat is recent. */
export type NodeView = NodeRecord & { up: boolean };

/** Repository of the node registry. */
export class NodeRepo {
  /** Records in `kv`; `clock` decides which are recent. */
  constructor(private readonly kv: StoreKv, private readonly clock: Clock) {}

  /** Writes (replaces) this node's record. */
  async heartbeat(r: NodeRecord): Promise<void> {
    if (!NODE_NAME.test(r.name)) {
      throw new ValidationError(
        "name",
        `Cannot register node ${JSON.stringify(r.name)}: not a name`,
      );
    }
    await this.kv.set([...PREFIX, r.name], { ...r }, { expireIn: KEEP_MS });
  }

  /** Every registered node by name, `up` judged at the clock's now. */
  async list(): Promise<NodeView[]> {
    const now = this.clock.now();
    const out: NodeView[] = [];
    for await (const e of this.kv.list<NodeRecord>({ prefix: PREFIX })) {
      out.push({ ...e.value, up: now - e.value.heartbeatAt <= DOWN_AFTER_MS });
    }
    return out;
  }

  /** Drops the record of `name` (a node taken out of the fleet); no error if there is none. */
  async remove(name: string): Promise<void> {
    await this.kv.atomic().delete([...PREFIX, name]).commit();
  }
}
