/**
 * The control plane's handle on the data-plane Worker: start it, push rule,
 * user and setting changes (applied within one loop tick), ask for the
 * unlock and flow tables, and receive events.
 */
import type { ApplianceEvent } from "../log/events.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import { newCounters } from "./counters.ts";
import type {
  DatapathSettings,
  DeviceSettings,
  DeviceStatus,
  FlowRecord,
  FromWorker,
  KnockStateRecord,
  KnockUser,
  RestoredFlows,
  RuleIdName,
  ToWorker,
  UnlockRecord,
  UplinkStatus,
} from "./messages.ts";

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
  flows(limit?: number): Promise<FlowRecord[]>;
  conntrack(): Promise<Record<string, number>>;
  /** The rules by stable id, naming the per-rule counters (`RULE_BASE` in counters.ts). */
  ruleIds(): Promise<RuleIdName[]>;
}

/** Runs the data plane in a Worker and speaks to it. */
export class DatapathControl implements DatapathApi {
  readonly counters = newCounters(true);
  readonly #control = new Int32Array(new SharedArrayBuffer(4));
  readonly #worker: Worker;
  readonly #pending = new Map<number, (data: unknown) => void>();
  #nextId = 1;
  /** What restoring `DatapathInit.flows` did (null: there was none). */
  restored: RestoredFlows | null = null;
  #stopped: Promise<void>;
  #onStopped = () => {};

  /** Starts the Worker; resolves `ready` once the device is open. */
  private constructor(
    readonly onEvents: (events: ApplianceEvent[]) => void,
    readonly onKnockState: (records: KnockStateRecord[]) => void,
    readonly onFlows: (snapshot: Uint8Array, final: boolean) => void,
  ) {
    this.#worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    this.#stopped = new Promise((r) => this.#onStopped = r);
  }

  /**
   * Starts the data plane and waits until its device is up. `onKnockState`
   * receives the verifier's state records to persist (`KnockStateRepo.save`);
   * `onFlows` the flow-table snapshots to save (`writeSnapshotFile`): a
   * checkpoint every few seconds, and a final one (`final`) as it stops.
   */
  static start(
    init: DatapathInit,
    onEvents: (events: ApplianceEvent[]) => void,
    onKnockState: (records: KnockStateRecord[]) => void = () => {},
    onFlows: (snapshot: Uint8Array, final: boolean) => void = () => {},
  ): Promise<DatapathControl> {
    const c = new DatapathControl(onEvents, onKnockState, onFlows);
    return new Promise((resolve, reject) => {
      c.#worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`data plane failed: ${e.message}`));
      };
      c.#worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === "ready") {
          c.restored = m.restored;
          resolve(c);
        } else if (m.type === "fatal") reject(new Error(`data plane failed: ${m.message}`));
        else c.#dispatch(m);
      };
      c.#send({
        type: "init",
        ...init,
        knockState: init.knockState ?? [],
        flows: init.flows ?? null,
        counters: c.counters.buffer as SharedArrayBuffer,
        control: c.#control.buffer as SharedArrayBuffer,
      });
    });
  }

  #dispatch(m: FromWorker): void {
    if (m.type === "events") this.onEvents(m.events);
    else if (m.type === "knock-state") this.onKnockState(m.records);
    else if (m.type === "flows") this.onFlows(m.snapshot, m.final);
    else if (m.type === "reply") {
      this.#pending.get(m.id)?.(m.data);
      this.#pending.delete(m.id);
    } else if (m.type === "stopped") this.#onStopped();
    else if (m.type === "fatal") console.error(`data plane: ${m.message}`);
  }

  /** Posts `m` and tells the Worker's loop to yield so it is handled promptly. */
  #send(m: ToWorker): void {
    this.#worker.postMessage(m);
    Atomics.add(this.#control, 0, 1);
  }

  #ask<T>(build: (id: number) => ToWorker): Promise<T> {
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
      this.#send(build(id));
    });
  }

  /** Replaces the rule set. */
  setRules(forwards: PortForwardRule[], openPorts: OpenPortsRule[]): void {
    this.#send({ type: "rules", forwards, openPorts });
  }
  /** Replaces the knock users. */
  setUsers(users: KnockUser[]): void {
    this.#send({ type: "users", users });
  }
  /** Replaces the data-plane settings. */
  setSettings(settings: DatapathSettings): void {
    this.#send({ type: "settings", settings });
  }
  /** Ends the unlock of `ip`; the removed record, or null when it was not unlocked. */
  revoke(ip: string, by?: string): Promise<UnlockRecord | null> {
    return this.#ask((id) => ({ type: "revoke", ip, id, by }));
  }
  /** The unlocked IPs. */
  unlocks(): Promise<UnlockRecord[]> {
    return this.#ask((id) => ({ type: "query", id, what: "unlocks" }));
  }
  /** Tracked flows, at most `limit`. */
  flows(limit = 1000): Promise<FlowRecord[]> {
    return this.#ask((id) => ({ type: "query", id, what: "flows", limit }));
  }
  /** Connection-tracking table statistics. */
  conntrack(): Promise<Record<string, number>> {
    return this.#ask((id) => ({ type: "query", id, what: "conntrack" }));
  }

  /** The TUN's counters (reads, GSO super packets, ...) and its offloads. */
  device(): Promise<DeviceStatus> {
    return this.#ask((id) => ({ type: "query", id, what: "device" }));
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
    this.#send({ type: "stop" });
    await Promise.race([this.#stopped, new Promise((r) => setTimeout(r, 2000))]);
    this.#worker.terminate();
  }
}
