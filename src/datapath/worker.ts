/**
 * A data-plane Worker: reads one TUN queue (the control plane opened the
 * device and hands each Worker its queue's fd), builds the pipeline and runs
 * the blocking loop; the main thread talks to it by messages and reads its
 * counters from shared memory. Worker 0 admits and owns the flow table; the
 * others are trackers (see `WorkerRole` and the handoff ring in handoff.ts).
 */
/// <reference lib="deno.worker" />
import {
  Doorbell,
  Icmp6Socket,
  IcmpSocket,
  setThreadNice,
  sumTunStats,
  TunQueue,
} from "../device/mod.ts";
import { parseIpv4, parseIpv6, writeIpv6 } from "../packet/mod.ts";
import { Engine } from "./engine.ts";
import { KIND_FINAL } from "./flow_snapshot.ts";
import { HandoffRing } from "./handoff.ts";
import type { DatapathUplink, FromWorker, RestoredFlows, ToWorker } from "./messages.ts";
import { Pipeline } from "./pipeline.ts";
import type { ProbeSender } from "./uplink_monitor.ts";

let engine: Engine | null = null;
let pipeline: Pipeline | null = null;
let device: TunQueue | null = null;
let offloads: string[] = [];
/** Worker 0: the trackers' queues it writes handed-off packets through. */
let writers: TunQueue[] = [];
const post = (m: FromWorker, transfer: Transferable[] = []) => self.postMessage(m, { transfer });

/** The control plane's message counters (`EngineOptions.control`), from the init message on. */
let control: Int32Array | null = null;

self.onmessage = (e: MessageEvent<ToWorker>) => {
  try {
    if (e.data.type === "init") control = new Int32Array(e.data.control);
    handle(e.data);
  } catch (err) {
    post({ type: "fatal", message: err instanceof Error ? err.message : String(err) });
  } finally {
    if (control !== null) Atomics.add(control, 1, 1);
  }
};

function handle(m: ToWorker): void {
  if (m.type === "init") return start(m);
  if (!pipeline) return;
  switch (m.type) {
    case "rules":
      return pipeline.setRules(m.forwards, m.openPorts);
    case "users":
      return void pipeline.setUsers(m.users).catch((err) =>
        post({ type: "fatal", message: `cannot apply users: ${err?.message ?? err}` })
      );
    case "settings":
      return pipeline.setSettings(m.settings);
    case "unlocks":
      return void pipeline.mergeUnlocks(m.records, Date.now());
    case "claim-answers":
      return pipeline.resolveClaims(m.answers, Date.now());
    case "knock-state":
      return void pipeline.mergeKnockState(m.records, Date.now());
    case "revoke":
      return post({ type: "reply", id: m.id, data: pipeline.revoke(m.ip, Date.now(), m.by) });
    case "loosen":
      return post({ type: "reply", id: m.id, data: pipeline.loosenTcp() });
    case "query":
      if (m.what === "device") {
        // Worker 0 also counts what it wrote through the trackers' queues (handed-off packets).
        const data = device &&
          { ...sumTunStats([device, ...writers].map((q) => q.stats())), offloads };
        return post({ type: "reply", id: m.id, data });
      }
      return post({ type: "reply", id: m.id, data: pipeline.query(m.what, m.limit ?? 1000) });
    case "stop":
      engine?.stop();
  }
}

/** Nice value of the data-plane thread: ahead of ordinary work, behind the kernel's own threads. */
const DATAPLANE_NICE = -10;

function start(m: Extract<ToWorker, { type: "init" }>): void {
  // Forwarding must not starve behind the traffic it forwards (senders, servers on the host).
  if (!setThreadNice(DATAPLANE_NICE)) console.error("data plane: cannot raise thread priority");
  const role = m.role, admits = role.index === 0;
  const queue = (i: number) => TunQueue.fromFd(role.fds[i], role.name, role.mtu, role.offload);
  const dev = queue(role.index);
  device = dev;
  offloads = m.offloads;
  const bell = role.count > 1 ? Doorbell.fromFd(role.doorbell) : null;
  const rings = role.rings.map((b) => new HandoffRing(b));
  if (admits) writers = rings.map((_, k) => queue(k + 1));
  if (admits && bell !== null) dev.setDoorbell(bell);
  const out = admits ? undefined : rings[role.index - 1];
  const probes = admits ? openProbeSockets(m.settings.uplinks) : null;
  const probes6 = admits ? openProbe6Sockets(m.settings.uplinks) : null;
  pipeline = new Pipeline({
    probeSender: probes?.sender,
    probe6Sockets: probes6 ?? undefined,
    ipv4HeaderChecked: dev.ipv4HeaderChecked,
    table: { buffer: role.table, workers: role.count, worker: role.index },
    gate: { ...role.gate, worker: role.index },
    handoff: out,
    settings: m.settings,
    forwards: m.forwards,
    openPorts: m.openPorts,
    portKey: m.portKey,
    counters: new Float64Array(m.counters),
    emit: (events) => post({ type: "events", events }),
    emitKnockState: (records) => post({ type: "knock-state", records }),
    knockClaims: admits && m.knockClaims === true,
    emitClaims: (claims) => post({ type: "knock-claims", claims }),
    emitFlows: admits
      ? (snapshot) =>
        post({ type: "flows", snapshot, final: false }, [snapshot.buffer as ArrayBuffer])
      : undefined,
  });
  let restored: RestoredFlows | null = null;
  if (admits) {
    pipeline.restoreUnlocks(m.unlocks, Date.now());
    pipeline.restoreKnockState(m.knockState, Date.now());
    // Before the loop reads the device: no packet of a restored flow meets an empty table.
    restored = m.flows ? restoreFlows(pipeline, m.flows) : null;
  }
  const proc = pipeline;
  engine = new Engine(dev, proc, {
    control: control!,
    handoffIn: admits && rings.length > 0
      ? rings.map((ring, k) => ({ ring, writer: writers[k] }))
      : undefined,
    handoffOut: out && bell ? { ring: out, doorbell: bell } : undefined,
  });
  pipeline.setUsers(admits ? m.users : []).then(() => {
    post({ type: "ready", device: dev.name, restored });
    return engine!.run();
  }).then(() => {
    if (admits) {
      const snapshot = proc.finalSnapshot(Date.now());
      post({ type: "flows", snapshot, final: true }, [snapshot.buffer as ArrayBuffer]);
    }
    probes?.close();
    probes6?.forEach((s) => s?.close());
    post({ type: "stopped" });
  }).catch((err) => post({ type: "fatal", message: String(err?.stack ?? err) }));
}

/** EBADF: an uplink whose socket did not open sends nothing, and its probes count as lost. */
const EBADF = 9;

/**
 * One raw ICMP socket per probed uplink, bound to its primary address. A
 * socket that does not open is reported; that uplink's probes then fail and
 * it goes down (its address is not the host's, or CAP_NET_RAW is missing).
 */
function openProbeSockets(uplinks: DatapathUplink[]): { sender: ProbeSender; close(): void } {
  const sockets = uplinks.map((u) => {
    const source = u.probe ? parseIpv4(u.addresses[0] ?? "") : null;
    if (source === null) return null;
    const s = IcmpSocket.open(source);
    if (s instanceof IcmpSocket) return s;
    console.error(`data plane: uplink ${u.name}: no health probe: ${s.message}`);
    return null;
  });
  return {
    sender: {
      send: (i, msg, len, target) => sockets[i]?.send(msg, len, target) ?? -EBADF,
    },
    close: () => sockets.forEach((s) => s?.close()),
  };
}

/**
 * One raw ICMPv6 socket per uplink with an IPv6 probe, from its first IPv6
 * address to the target; one that does not open is reported, and that
 * uplink's IPv6 probes are lost.
 */
function openProbe6Sockets(uplinks: DatapathUplink[]): (Icmp6Socket | null)[] {
  return uplinks.map((u) => {
    const from = u.probe6 ? parseIpv6(u.addresses6?.[0] ?? "") : null;
    const to = u.probe6 ? parseIpv6(u.probe6.target) : null;
    if (from === null || to === null) return null;
    const bytes = (w: Uint32Array) => {
      const b = new Uint8Array(16);
      writeIpv6(b, 0, w);
      return b;
    };
    const s = Icmp6Socket.open(bytes(from), bytes(to), u.interface ?? "");
    if (s instanceof Icmp6Socket) return s;
    console.error(`data plane: uplink ${u.name}: no IPv6 health probe: ${s.message}`);
    return null;
  });
}

function restoreFlows(p: Pipeline, data: Uint8Array): RestoredFlows {
  try {
    const r = p.restoreFlows(data, Date.now());
    return {
      restored: r.restored,
      skipped: r.skipped,
      final: r.kind === KIND_FINAL,
      savedAt: r.savedAt,
    };
  } catch (err) {
    return { restored: 0, skipped: 0, final: false, savedAt: 0, error: (err as Error).message };
  }
}
