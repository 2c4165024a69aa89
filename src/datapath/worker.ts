/**
 * The data-plane Worker: opens the TUN device, builds the pipeline and runs
 * the blocking loop; the main thread (control plane) talks to it by messages
 * and reads its counters from shared memory.
 */
/// <reference lib="deno.worker" />
import { setThreadNice, TunDevice } from "../device/mod.ts";
import { Engine } from "./engine.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import { Pipeline } from "./pipeline.ts";

let engine: Engine | null = null;
let pipeline: Pipeline | null = null;
const post = (m: FromWorker) => self.postMessage(m);

self.onmessage = (e: MessageEvent<ToWorker>) => {
  try {
    handle(e.data);
  } catch (err) {
    post({ type: "fatal", message: err instanceof Error ? err.message : String(err) });
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
    case "revoke":
      return post({ type: "reply", id: m.id, data: pipeline.revoke(m.ip, Date.now(), m.by) });
    case "query":
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
  const dev = TunDevice.open({ name: m.device.name, mtu: m.device.mtu, offload: m.device.offload });
  pipeline = new Pipeline({
    settings: m.settings,
    forwards: m.forwards,
    openPorts: m.openPorts,
    counters: new Float64Array(m.counters),
    emit: (events) => post({ type: "events", events }),
    emitKnockState: (records) => post({ type: "knock-state", records }),
  });
  pipeline.restoreUnlocks(m.unlocks, Date.now());
  pipeline.restoreKnockState(m.knockState, Date.now());
  const proc = pipeline;
  engine = new Engine(dev, proc, { control: new Int32Array(m.control) });
  pipeline.setUsers(m.users).then(() => {
    post({ type: "ready", device: dev.name });
    return engine!.run();
  }).then(() => {
    dev.close();
    post({ type: "stopped" });
  }).catch((err) => post({ type: "fatal", message: String(err?.stack ?? err) }));
}
