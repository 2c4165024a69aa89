/**
 * The control plane's handle on the data plane: open the TUN (one queue per
 * data-plane Worker), start the Workers, push rule, user and setting changes
 * (applied within one loop tick), ask for the unlock and flow tables, and
 * receive events. Worker 0 admits and owns the flow table; it starts first
 * (it sets the shared table up), then the trackers (see worker.ts).
 */
import { ConnTable } from "../conntrack/mod.ts";
import { adviseHugePages, Doorbell, sumTunStats, TunDevice, type TunStats } from "../device/mod.ts";
import type { ApplianceEvent } from "../log/events.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import { Admission } from "./admission.ts";
import { newCounters, sumCounters } from "./counters.ts";
import { HandoffRing } from "./handoff.ts";
import type {
  DatapathSettings,
  DeviceSettings,
  DeviceStatus,
  FlowRecord,
  FromWorker,
  KnockClaim,
  KnockClaimAnswer,
  KnockStateRecord,
  KnockUser,
  RestoredFlows,
  RuleIdName,
  ToWorker,
  UnlockRecord,
  UplinkStatus,
  WorkerRole,
} from "./messages.ts";

/** Statistics of the one shared flow table, the same from every Worker (not summed). */
const SHARED_TABLE_STATS = new Set(["size", "capacity", "limbo"]);

/** Bytes of each tracker's handoff ring: room for a burst of new flows (or of a flood, then dropped as handoff-full). */
const HANDOFF_RING_BYTES = 4 << 20;

/** What the data plane starts with. */
export interface DatapathInit {
  device: DeviceSettings;
  settings: DatapathSettings;
  forwards: PortForwardRule[];
  openPorts: OpenPortsRule[];
  users: KnockUser[];
  unlocks: UnlockRecord[];
  /** The verifier's state saved before the restart (`KnockStateRepo.list`). */
  knockState?: KnockStateRecord[];
  /** The flow-table snapshot saved before the restart (`readSnapshotFile`), restored before traffic passes. */
  flows?: Uint8Array | null;
  /** Share of the flow ids that may hold a TCP flow (`conntrack.tcpShare`; default 1). */
  tcpShare?: number;
  /**
   * A fleet (the etcd store): a completed knock unlocks only once
   * `onClaims`' handler has claimed its step and `answerClaims` says so.
   */
  knockClaims?: boolean;
  /**
   * The source-NAT port key, derived from the store's secret key
   * (`portKeyFromSecret`): nodes sharing the key remap a clashing masquerade
   * flow to the same port. Absent: random probes.
   */
  portKey?: [number, number];
}

/** The operations the API and CLI layers need from the data plane. */
export interface DatapathApi {
  /** Live counters (shared memory). */
  readonly counters: Float64Array;
  setRules(forwards: PortForwardRule[], openPorts: OpenPortsRule[]): void;
  setUsers(users: KnockUser[]): void;
  setSettings(settings: DatapathSettings): void;
  /** Ends the unlock of `ip`; `by` (who asked) is named in the `unlock-revoked` event. */
  revoke(ip: string, by?: string): Promise<UnlockRecord | null>;
  unlocks(): Promise<UnlockRecord[]>;
  /** Merges unlocks other nodes admitted into the running table (a shared store; no event). */
  mergeUnlocks?(records: UnlockRecord[]): void;
  /** Merges the knock state other nodes wrote (replay memory, failures, penalties) into the verifier. */
  mergeKnockState?(records: KnockStateRecord[]): void;
  flows(limit?: number): Promise<FlowRecord[]>;
  conntrack(): Promise<Record<string, number>>;
  /** The rules by stable id, naming the per-rule counters (`RULE_BASE` in counters.ts). */
  ruleIds(): Promise<RuleIdName[]>;
  /** Each data-plane Worker's counters, in TUN queue order. */
  workerCounters?(): Float64Array[];
}

/** One data-plane Worker as the control plane holds it. */
class PlaneWorker {
  readonly worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  readonly counters = newCounters(true);
  /** [messages posted, messages handled] (see `EngineOptions.control`). */
  readonly control = new Int32Array(new SharedArrayBuffer(8));
  readonly stopped: Promise<void>;
  onStopped = () => {};

  constructor(readonly index: number) {
    this.stopped = new Promise((r) => this.onStopped = r);
  }

  /** Posts `m` and tells the Worker's loop to yield so it is handled promptly. */
  send(m: ToWorker): void {
    this.worker.postMessage(m);
    Atomics.add(this.control, 0, 1);
  }

  /** Ends the loop (bounded wait) and the Worker. */
  async stop(): Promise<void> {
    this.send({ type: "stop" });
    await Promise.race([this.stopped, new Promise((r) => setTimeout(r, 2000))]);
    this.worker.terminate();
  }
}

/** Runs the data plane in one Worker per TUN queue and speaks to them. */
export class DatapathControl implements DatapathApi {
  readonly #workers: PlaneWorker[] = [];
  readonly #pending = new Map<number, (data: unknown) => void>();
  #nextId = 1;
  /** What restoring `DatapathInit.flows` did (null: there was none). */
  restored: RestoredFlows | null = null;
  #device: TunDevice | null = null;
  #doorbell: Doorbell | null = null;
  #ready = false;
  #fail: (why: string) => void = () => {};
  /**
   * Receives the knocks to claim (`DatapathInit.knockClaims`); whoever sets
   * it answers every one through `answerClaims`. Until then each is refused
   * as unreachable (fail closed).
   */
  onClaims: (claims: KnockClaim[]) => void = (claims) =>
    this.answerClaims(claims.map((c) => ({ ...c, result: "unreachable" })));
  /**
   * Resolves with the reason when a Worker fails after the start (an
   * uncaught error, a fatal message): its queue is no longer read, so the
   * composition root stops the appliance (fail closed) for the service
   * manager to restart it.
   */
  readonly failed: Promise<string>;

  private constructor(
    readonly onEvents: (events: ApplianceEvent[]) => void,
    readonly onKnockState: (records: KnockStateRecord[]) => void,
    readonly onFlows: (snapshot: Uint8Array, final: boolean) => void,
  ) {
    this.failed = new Promise((resolve) => this.#fail = resolve);
  }

  /** Live counters: the sum over the Workers (each counts in its own shared memory). */
  get counters(): Float64Array {
    return sumCounters(this.#workers.map((w) => w.counters));
  }

  /** Each Worker's counters, in queue order (live shared memory). */
  workerCounters(): Float64Array[] {
    return this.#workers.map((w) => w.counters);
  }

  /** The number of TUN queues, one data-plane Worker each. */
  get queues(): number {
    return this.#workers.length;
  }

  /** The worker admitting new flows and answering for the tables. */
  get #admitter(): PlaneWorker {
    return this.#workers[0];
  }

  /**
   * Starts the data plane and waits until its device is up. `onKnockState`
   * receives the verifier's state records to persist (`KnockStateRepo.save`);
   * `onFlows` the flow-table snapshots to save (`writeSnapshotFile`): a
   * checkpoint every few seconds, and a final one (`final`) as it stops.
   */
  static async start(
    init: DatapathInit,
    onEvents: (events: ApplianceEvent[]) => void,
    onKnockState: (records: KnockStateRecord[]) => void = () => {},
    onFlows: (snapshot: Uint8Array, final: boolean) => void = () => {},
  ): Promise<DatapathControl> {
    const c = new DatapathControl(onEvents, onKnockState, onFlows);
    const d = init.device, count = d.queues ?? 1;
    const dev = TunDevice.open({ name: d.name, mtu: d.mtu, offload: d.offload, queues: count });
    c.#device = dev;
    console.log(`data plane: ${dev.name} offloads ${dev.offloads.join(" ") || "none"}`);
    console.log(`data plane: ${dev.name} ${count} queue${count === 1 ? "" : "s"}, one Worker each`);
    try {
      const bell = count > 1 ? Doorbell.open() : null;
      c.#doorbell = bell;
      const rings = Array.from(
        { length: count - 1 },
        () => HandoffRing.allocate(HANDOFF_RING_BYTES, dev.headroom),
      );
      const table = ConnTable.createBuffer({
        capacity: init.settings.maxFlows,
        workers: count,
        tcpShare: init.tcpShare,
      });
      adviseHugePages(table); // before worker 0's setup first touches its pages
      const gate = Admission.gateBuffers(init.settings, count);
      for (let i = 0; i < count; i++) {
        const role: WorkerRole = {
          index: i,
          count,
          fds: dev.queueFds(),
          name: dev.name,
          mtu: dev.mtu,
          offload: d.offload,
          table,
          gate,
          rings,
          doorbell: bell?.fd ?? -1,
        };
        // Worker 0 sets the shared table up: the trackers map it only after it is ready.
        const restored = await c.#startWorker(new PlaneWorker(i), init, role, [...dev.offloads]);
        if (i === 0) c.restored = restored;
      }
      c.#ready = true;
      return c;
    } catch (e) {
      await c.stop();
      throw e;
    }
  }

  #startWorker(
    w: PlaneWorker,
    init: DatapathInit,
    role: WorkerRole,
    offloads: string[],
  ): Promise<RestoredFlows | null> {
    this.#workers.push(w);
    return new Promise((resolve, reject) => {
      w.worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`data plane failed: ${e.message}`));
        if (this.#ready) this.#fail(`worker ${w.index}: ${e.message}`);
      };
      w.worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === "ready") resolve(m.restored);
        else if (m.type === "fatal" && !this.#ready) {
          reject(new Error(`data plane failed: ${m.message}`));
        } else this.#dispatch(w, m);
      };
      const admits = role.index === 0;
      w.send({
        type: "init",
        ...init,
        users: admits ? init.users : [],
        unlocks: admits ? init.unlocks : [],
        knockState: admits ? init.knockState ?? [] : [],
        flows: admits ? init.flows ?? null : null,
        counters: w.counters.buffer as SharedArrayBuffer,
        control: w.control.buffer as SharedArrayBuffer,
        role,
        offloads,
      });
    });
  }

  #dispatch(w: PlaneWorker, m: FromWorker): void {
    if (m.type === "events") this.onEvents(m.events);
    else if (m.type === "knock-state") this.onKnockState(m.records);
    else if (m.type === "flows") this.onFlows(m.snapshot, m.final);
    else if (m.type === "knock-claims") this.onClaims(m.claims);
    else if (m.type === "reply") {
      this.#pending.get(m.id)?.(m.data);
      this.#pending.delete(m.id);
    } else if (m.type === "stopped") w.onStopped();
    else if (m.type === "fatal") {
      console.error(`data plane: worker ${w.index}: ${m.message}`);
      this.#fail(`worker ${w.index}: ${m.message}`);
    }
  }

  /** Posts `m` to every Worker. */
  #broadcast(m: ToWorker): void {
    for (const w of this.#workers) w.send(m);
  }

  #ask<T>(build: (id: number) => ToWorker, w = this.#admitter): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error("data plane did not answer within 5 s"));
      }, 5000);
      this.#pending.set(id, (d) => {
        clearTimeout(timer);
        resolve(d as T);
      });
      w.send(build(id));
    });
  }

  /** Replaces the rule set. */
  setRules(forwards: PortForwardRule[], openPorts: OpenPortsRule[]): void {
    this.#broadcast({ type: "rules", forwards, openPorts });
  }
  /** Replaces the knock users. */
  setUsers(users: KnockUser[]): void {
    this.#admitter.send({ type: "users", users });
  }
  /** Replaces the data-plane settings. */
  setSettings(settings: DatapathSettings): void {
    this.#broadcast({ type: "settings", settings });
  }
  /** Ends the unlock of `ip`; the removed record, or null when it was not unlocked. */
  revoke(ip: string, by?: string): Promise<UnlockRecord | null> {
    return this.#ask((id) => ({ type: "revoke", ip, id, by }));
  }
  /**
   * Loosens every TCP flow's window checks until each sender fits again (an
   * HA transition: the peer carried the flows, our windows are stale);
   * resolves with the flows loosened.
   */
  loosenTcp(): Promise<number> {
    return this.#ask((id) => ({ type: "loosen", id }));
  }
  /** Merges unlocks other nodes admitted into the running table (see `Pipeline.mergeUnlocks`). */
  mergeUnlocks(records: UnlockRecord[]): void {
    this.#admitter.send({ type: "unlocks", records });
  }
  /** Answers knock claims (see `onClaims`): granted ones unlock, taken ones are replays. */
  answerClaims(answers: KnockClaimAnswer[]): void {
    this.#admitter.send({ type: "claim-answers", answers });
  }
  /** Merges other nodes' knock state into the verifier (see `KnockVerifier.mergeState`). */
  mergeKnockState(records: KnockStateRecord[]): void {
    this.#admitter.send({ type: "knock-state", records });
  }
  /** The unlocked IPs. */
  unlocks(): Promise<UnlockRecord[]> {
    return this.#ask((id) => ({ type: "query", id, what: "unlocks" }));
  }
  /** Tracked flows, at most `limit`. */
  flows(limit = 1000): Promise<FlowRecord[]> {
    return this.#ask((id) => ({ type: "query", id, what: "flows", limit }));
  }
  /**
   * Connection-tracking table statistics: the shared table's (size,
   * capacity, limbo) once, every Worker's own counts (a tracker's invalid,
   * out-of-window and reopening segments, its lock spins) summed.
   */
  async conntrack(): Promise<Record<string, number>> {
    const parts = await Promise.all(
      this.#workers.map((w) =>
        this.#ask<Record<string, number>>((id) => ({ type: "query", id, what: "conntrack" }), w)
      ),
    );
    const sum = { ...parts[0] };
    for (const part of parts.slice(1)) {
      for (const [k, v] of Object.entries(part)) {
        if (!SHARED_TABLE_STATS.has(k)) sum[k] = (sum[k] ?? 0) + v;
      }
    }
    return sum;
  }

  /** The TUN's counters (reads, GSO super packets, ...) and its offloads. */
  async device(): Promise<DeviceStatus> {
    const parts = await Promise.all(
      this.#workers.map((w) =>
        this.#ask<DeviceStatus | null>((id) => ({ type: "query", id, what: "device" }), w)
      ),
    );
    const queues: TunStats[] = parts.filter((p) => p !== null).map(({ offloads: _, ...q }) => q);
    return { ...sumTunStats(queues), offloads: parts[0]?.offloads ?? [], queues };
  }

  /** The rules by stable id. */
  ruleIds(): Promise<RuleIdName[]> {
    return this.#ask((id) => ({ type: "query", id, what: "rules" }));
  }

  /** Every uplink's health and probe counts, in configuration order. */
  uplinks(): Promise<UplinkStatus[]> {
    return this.#ask((id) => ({ type: "query", id, what: "uplinks" }));
  }

  /** Stops the loop (its final flow snapshot goes to `onFlows`), closes the device and ends the Worker (bounded wait). */
  async stop(): Promise<void> {
    // Trackers first: worker 0's final snapshot then sees no more traffic.
    await Promise.all(this.#workers.slice(1).map((w) => w.stop()));
    await this.#workers[0]?.stop();
    this.#device?.close();
    this.#device = null;
    this.#doorbell?.close();
    this.#doorbell = null;
  }
}
