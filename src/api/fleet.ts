/**
 * A node of a fleet (several appliances on one etcd store) kept in step with
 * the others. `FleetSync` follows the store's change feed (`Store.onChange`:
 * etcd's watch, every node's writes, this one's included) and pushes each
 * changed area into this node's data plane: users, rules and settings through
 * `syncDatapath`; unlocks merged into the running table (`mergeUnlocks`), so
 * a knock at one node admits the source at all; revocations applied from the
 * store's notes (`UnlockRepo.revokeUnlock`), and the unlocks of a deleted or
 * knock-disabled user ended, as the node that made the change does; the
 * knock state other nodes wrote (claimed steps, failure buckets, penalties)
 * merged into the verifier, so a step used at one node is spent at all and a
 * source penalised at one is penalised at all. `KnockClaims` claims each
 * step a knock completed here before the data plane unlocks it. Changes
 * are applied one batch at a time; areas noted meanwhile are applied once
 * after it, so a burst costs one re-read per area, and the last state read
 * wins. `NodeHeartbeat` writes this node's record in the registry
 * (`NodeRepo`) every few seconds. On the KV backend the feed is silent and
 * only the heartbeat runs.
 */
import type { Config } from "../config/types.ts";
import type { DatapathApi } from "../datapath/control.ts";
import type {
  KnockClaim,
  KnockClaimAnswer,
  KnockStateRecord,
  UnlockRecord,
} from "../datapath/messages.ts";
import type { Clock } from "../clock.ts";
import { HEARTBEAT_MS, type NodeRecord } from "../store/nodes.ts";
import type { Store } from "../store/mod.ts";
import type { StoreArea } from "../store/store_kv.ts";
import type { SavedUnlock } from "../store/unlocks.ts";
import type { UserRecord } from "../store/users.ts";
import { knockActive, syncDatapath } from "./sync.ts";

/** What `FleetSync` works on. */
export interface FleetSyncOptions {
  store: Store;
  datapath: DatapathApi;
  config: Config;
  /** Runs after a settings change reached the data plane (the composition root reopens syslog). */
  onSettings?: () => Promise<void>;
  /** A batch that could not be applied (the next change tries again); default console.error. */
  onError?: (err: Error) => void;
}

/** What one unlocks pass did. */
export interface UnlockSyncResult {
  /** Unlocks handed to the data plane (new, or with later traffic than it had). */
  merged: number;
  /** Local unlocks ended by a revocation note or their user's removal. */
  revoked: number;
}

/**
 * The stored unlocks the local table lacks or has older: ones of users whose
 * knock is active, not revoked since their knock, new to `local` or with
 * later traffic (the same user), or a later knock (another user).
 */
export function unlocksToMerge(
  stored: readonly SavedUnlock[],
  local: readonly UnlockRecord[],
  active: ReadonlySet<string>,
  revokedAt: ReadonlyMap<string, number>,
): SavedUnlock[] {
  const mine = new Map(local.map((u) => [u.ip, u]));
  return stored.filter((r) => {
    if (!active.has(r.user)) return false;
    if ((revokedAt.get(r.ip) ?? -Infinity) >= r.unlockedAt) return false;
    const l = mine.get(r.ip);
    if (l === undefined) return true;
    return l.user === r.user ? r.lastSeen > l.lastSeen : r.unlockedAt > l.unlockedAt;
  });
}

/**
 * Why a local unlock must end: a revocation note newer than its knock, or
 * its user deleted or no longer knocking; null to keep it.
 */
export function revocationOf(
  u: UnlockRecord,
  users: ReadonlyMap<string, UserRecord>,
  notes: ReadonlyMap<string, { at: number; by: string }>,
): string | null {
  const note = notes.get(u.ip);
  if (note !== undefined && u.unlockedAt <= note.at) return note.by;
  const user = users.get(u.user);
  if (user === undefined) return "user-deleted";
  return user.knock.enabled ? null : "knock-disabled";
}

/** Follows the store's change feed into the data plane; see the module comment. */
export class FleetSync {
  readonly #o: FleetSyncOptions;
  readonly #pending = new Set<StoreArea>();
  /** Knock-state records the feed brought since the last pass; null: read them all again. */
  #knockState: KnockStateRecord[] | null = [];
  #running: Promise<void> | null = null;
  #unsubscribe: (() => void) | null = null;

  /** A sync of `o.datapath` with `o.store`; `start` subscribes. */
  constructor(o: FleetSyncOptions) {
    this.#o = o;
  }

  /** Subscribes to the store's changes. */
  start(): void {
    this.#unsubscribe ??= this.#o.store.onChange((c) => this.note(c.areas, c.knockState));
  }

  /** Unsubscribes and waits for the batch in progress. */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#pending.clear();
    await this.idle();
  }

  /**
   * Notes changed areas; they are applied after the batch in progress.
   * `knockState`: the knock-state records the change wrote; absent with the
   * area noted, every stored record is merged again.
   */
  note(areas: readonly StoreArea[], knockState?: readonly KnockStateRecord[]): void {
    for (const a of areas) this.#pending.add(a);
    if (areas.includes("knockState")) {
      if (knockState === undefined || this.#knockState === null) this.#knockState = null;
      else if (this.#knockState.length + knockState.length > MAX_PENDING_RECORDS) {
        this.#knockState = null; // a flood of them: one listing is cheaper
      } else this.#knockState.push(...knockState);
    }
    if (this.#pending.size === 0) return;
    this.#running ??= this.#drain();
  }

  /** Resolves once every area noted so far has been applied. */
  async idle(): Promise<void> {
    while (this.#running !== null) await this.#running;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.size > 0) {
        const areas = new Set(this.#pending);
        this.#pending.clear();
        try {
          await this.#apply(areas);
        } catch (err) {
          const report = this.#o.onError ??
            ((e: Error) => console.error(`fleet sync: ${e.message}`));
          report(err as Error);
        }
      }
    } finally {
      this.#running = null;
    }
  }

  async #apply(areas: ReadonlySet<StoreArea>): Promise<void> {
    const { store, datapath, config } = this.#o;
    if (areas.has("users") || areas.has("rules") || areas.has("settings")) {
      await syncDatapath(store, datapath, config);
    }
    if (areas.has("settings")) await this.#o.onSettings?.();
    if (areas.has("unlocks") || areas.has("users")) await this.syncUnlocks();
    if (areas.has("knockState")) await this.#syncKnockState();
  }

  async #syncKnockState(): Promise<void> {
    const noted = this.#knockState;
    this.#knockState = [];
    const records = noted ?? await this.#o.store.knockState.list();
    if (records.length > 0) this.#o.datapath.mergeKnockState?.(records);
  }

  /** Merges the store's unlocks into the data plane and applies revocations (one pass). */
  async syncUnlocks(): Promise<UnlockSyncResult> {
    const { store, datapath } = this.#o;
    const [stored, notes, users, local] = await Promise.all([
      store.unlocks.listUnlocks(),
      store.unlocks.listRevocations(),
      store.users.listUsers(),
      datapath.unlocks(),
    ]);
    const byName = new Map(users.map((u) => [u.name, u]));
    const noteOf = new Map(notes.map((n) => [n.ip, n]));
    let revoked = 0;
    for (const u of local) {
      const by = revocationOf(u, byName, noteOf);
      if (by !== null && (await datapath.revoke(u.ip, by)) !== null) revoked++;
    }
    const active = new Set(users.filter(knockActive).map((u) => u.name));
    const revokedAt = new Map(notes.map((n) => [n.ip, n.at]));
    const merge = unlocksToMerge(stored, local, active, revokedAt);
    if (merge.length > 0) datapath.mergeUnlocks?.(merge);
    return { merged: merge.length, revoked };
  }
}

/** Knock-state records noted between two passes before one listing replaces them. */
const MAX_PENDING_RECORDS = 65_536;

/** Where `KnockClaims` sends the answers (`DatapathControl.answerClaims`). */
export interface ClaimAnswerSink {
  answerClaims(answers: KnockClaimAnswer[]): void;
}

/** What `KnockClaims` has done since it was made. */
export interface KnockClaimStats {
  granted: number;
  taken: number;
  /** Not made: the store could not be written (or refused the record). */
  refused: number;
  /** From the sequence's completion to the answer handed to the data plane, the last one, ms. */
  lastMs: number;
  maxMs: number;
}

/**
 * Claims across the fleet the step of each knock the data plane completed
 * (`KnockStateRepo.claim`: one etcd txn) and answers it: granted (the data
 * plane unlocks), taken by another IP (a replay), or unreachable (refused:
 * fail closed). A store that cannot be written is reported once per
 * episode, when the first claim fails and when one works again, not per
 * knock; each refused knock is counted in the data plane.
 */
export class KnockClaims {
  readonly stats: KnockClaimStats = { granted: 0, taken: 0, refused: 0, lastMs: 0, maxMs: 0 };
  /** Claims refused in the current episode of an unwritable store; -1 outside one. */
  #refusing = -1;

  /** Claims in `store`, answers to `sink`; `log` reports episodes (default console.error). */
  constructor(
    private readonly store: Store,
    private readonly sink: ClaimAnswerSink,
    private readonly clock: Clock,
    private readonly log: (line: string) => void = (l) => console.error(l),
  ) {}

  /** Claims every one of `claims` (at once) and answers them together. */
  async handle(claims: readonly KnockClaim[]): Promise<void> {
    const answers = await Promise.all(claims.map((c) => this.#claim(c)));
    const now = this.clock.now();
    for (const c of claims) {
      this.stats.lastMs = Math.max(0, now - c.at);
      this.stats.maxMs = Math.max(this.stats.maxMs, this.stats.lastMs);
    }
    this.sink.answerClaims(answers);
  }

  async #claim(c: KnockClaim): Promise<KnockClaimAnswer> {
    try {
      const a = await this.store.knockState.claim({
        type: "replay",
        user: c.user,
        step: c.step,
        ip: c.ip,
        ...(c.family === 6 ? { family: 6 as const } : {}),
        expiresAt: c.expiresAt,
      });
      if (this.#refusing >= 0) {
        this.log(`knock claims work again: ${this.#refusing} knock(s) were refused meanwhile`);
        this.#refusing = -1;
      }
      if (a.granted) {
        this.stats.granted++;
        return { ...c, result: "granted" };
      }
      this.stats.taken++;
      return { ...c, result: "taken", firstIp: a.firstIp };
    } catch (err) {
      this.stats.refused++;
      if (this.#refusing < 0) {
        const why = (err as Error).message;
        this.log(
          `knock claims refused: the store cannot record a used step (${why}); completed ` +
            `knocks are refused until it can (fail closed), established unlocks keep working`,
        );
        this.#refusing = 0;
      }
      this.#refusing++;
      return { ...c, result: "unreachable" };
    }
  }
}

/** What a node says about itself besides the live counts. */
export type NodeIdentity = Pick<NodeRecord, "name" | "url" | "version" | "startedAt">;

/** Writes this node's registry record every `HEARTBEAT_MS` (see `NodeRepo`). */
export class NodeHeartbeat {
  #timer: ReturnType<typeof setInterval> | undefined;
  #beating: Promise<void> | null = null;

  /** The heartbeat of `self` into `store`, counts from `datapath`. */
  constructor(
    readonly self: NodeIdentity,
    private readonly store: Store,
    private readonly datapath: DatapathApi,
    private readonly clock: Clock,
  ) {}

  /** This node's record now (live counts), as the next heartbeat would write it. */
  async record(): Promise<NodeRecord> {
    const [conntrack, unlocks] = await Promise.all([
      this.datapath.conntrack().catch(() => ({} as Record<string, number>)),
      this.datapath.unlocks().catch(() => []),
    ]);
    return {
      ...this.self,
      heartbeatAt: this.clock.now(),
      flows: conntrack.size ?? 0,
      unlocks: unlocks.length,
    };
  }

  /** Writes one heartbeat; a store that refuses writes (degraded) is skipped silently. */
  beat(): Promise<void> {
    this.#beating ??= (async () => {
      try {
        await this.store.nodes.heartbeat(await this.record());
      } catch {
        /* degraded: the others see this node's heartbeat age, as they should */
      } finally {
        this.#beating = null;
      }
    })();
    return this.#beating;
  }

  /** Writes a heartbeat now and every `intervalMs` from now on. */
  start(intervalMs = HEARTBEAT_MS): void {
    if (this.#timer !== undefined) return;
    this.beat();
    this.#timer = setInterval(() => this.beat(), intervalMs);
  }

  /** Stops the heartbeat (the others see this node down after three intervals). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#beating;
  }
}
