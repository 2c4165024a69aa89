/**
 * Run by tun_test.ts inside a fresh network namespace (`ip netns exec`):
 * opens a two-queue TUN (`IFF_MULTI_QUEUE`, offload on) and hands each
 * queue's fd to its own Worker (`_mq_queue_worker.ts`, `TunQueue.fromFd`),
 * then drives UDP flows from the namespace's sockets into the TUN and prints
 * one JSON object: which queue each flow's packets were read from; the same
 * after the Worker reading each flow wrote one reply of it through the other
 * queue's fd (the kernel's automatic flow steering records the queue a flow
 * was last written on); that two Workers writing through one queue's fd at
 * once lose nothing;
 * and whether a doorbell rung by Worker 1 woke Worker 0's `wait(5000)` with
 * no packet to read. Usage: `mq_probe.ts <ifname>`.
 */

import { createSocket, type Socket } from "node:dgram";
import { CSUM_NONE } from "../device.ts";
import { Doorbell } from "../doorbell.ts";
import { TunDevice, type TunStats } from "../tun.ts";
import { buildUdp } from "../../packet/mod.ts";
import {
  BELL,
  BELL_READ,
  BELL_WOKE,
  CONTROL_WORDS,
  COUNTS,
  FIRST_PORT,
  FLOWS,
  LOCAL,
  MTU,
  PEER,
  PEER_PORT,
  PHASE,
  type QueueJob,
  READY,
  SHARED,
  SHARED_DONE,
  SHARED_OK,
  SHARED_PORT,
  SHARED_WRITES,
  STOP,
  WRITE_BY,
  WRITE_MASK,
  WRITE_VIA,
  WRITES_DONE,
} from "./_mq_job.ts";

const PACKETS = 20; // per flow and phase

/** What a Worker posts at the end: its queue's counters, and the packets it wrote per queue. */
interface WorkerStats {
  read: TunStats;
  written: number[];
}

function sh(...args: string[]): void {
  const out = new Deno.Command(args[0], { args: args.slice(1) }).outputSync();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (bounded) until `done` holds. */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

function bound(port: number): Promise<Socket> {
  const sock = createSocket("udp4");
  sock.on("message", () => {}); // the written replies land here
  return new Promise((resolve) => sock.bind(port, LOCAL, () => resolve(sock)));
}

function send(sock: Socket, i: number): Promise<void> {
  return new Promise((resolve, reject) =>
    sock.send(`flow packet ${i}`, PEER_PORT, PEER, (err) => err ? reject(err) : resolve())
  );
}

// No IPv6 on the TUN: nothing but our flows may wake a queue.
sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
const dev = TunDevice.open({ name: Deno.args[0], mtu: MTU, offload: true, queues: 2 });
const bell = Doorbell.open();
const control = new SharedArrayBuffer(4 * CONTROL_WORDS);
const ctl = new Int32Array(control);
const url = new URL("./_mq_queue_worker.ts", import.meta.url).href;
const workers = [0, 1].map(() => new Worker(url, { type: "module" }));
const sockets: Socket[] = [];
try {
  sh("ip", "link", "set", "lo", "up");
  sh("ip", "addr", "add", `${LOCAL}/24`, "dev", dev.name);
  const results = workers.map((w) =>
    new Promise<WorkerStats>((resolve, reject) => {
      w.onmessage = (e: MessageEvent<WorkerStats>) => resolve(e.data);
      w.onerror = (e) => reject(new Error(e.message));
    })
  );
  const fds = dev.queueFds();
  workers.forEach((w, index) =>
    w.postMessage(
      {
        index,
        fds,
        name: dev.name,
        mtu: dev.mtu,
        offload: true,
        bellFd: bell.fd,
        control,
        maxMs: 30_000,
      } satisfies QueueJob,
    )
  );
  await until(() => Atomics.load(ctl, READY) === 2, 10_000);
  for (let f = 0; f < FLOWS; f++) sockets.push(await bound(FIRST_PORT + f));
  const count = (phase: number, q: number, f: number) =>
    Atomics.load(ctl, COUNTS + (phase * 2 + q) * FLOWS + f);
  const total = (phase: number) => {
    let n = 0;
    for (let f = 0; f < FLOWS; f++) n += count(phase, 0, f) + count(phase, 1, f);
    return n;
  };
  const perQueue = (phase: number) =>
    [0, 1].map((q) => Array.from({ length: FLOWS }, (_, f) => count(phase, q, f)));

  // Phase 0: every flow as the kernel's hash spreads it.
  for (let i = 0; i < PACKETS; i++) for (const s of sockets) await send(s, i);
  await until(() => total(0) === FLOWS * PACKETS, 3000);
  const before = perQueue(0);
  // The Worker that read each flow writes a reply through the queue it did not arrive on.
  const writer = before[0].map((n) => (n > 0 ? 1 : 0));
  for (let f = 0; f < FLOWS; f++) {
    ctl[WRITE_BY + f] = 1 - writer[f];
    ctl[WRITE_VIA + f] = writer[f];
  }
  Atomics.store(ctl, WRITE_MASK, (1 << FLOWS) - 1);
  await until(() => Atomics.load(ctl, WRITES_DONE) === FLOWS, 3000);
  Atomics.store(ctl, PHASE, 1);
  for (let i = 0; i < PACKETS; i++) for (const s of sockets) await send(s, i);
  await until(() => total(1) === FLOWS * PACKETS, 3000);
  const after = perQueue(1);

  // Both Workers write through queue 0 at once: every datagram must arrive.
  const sink = await bound(SHARED_PORT);
  sockets.push(sink);
  const received = new Set<number>();
  sink.on("message", (msg: Uint8Array) => received.add(msg[0] * 256 + msg[1]));
  Atomics.store(ctl, SHARED, 1);
  await until(() => Atomics.load(ctl, SHARED_DONE) === 2, 5000);
  await until(() => received.size === 2 * SHARED_WRITES, 2000);
  const sharedReport = {
    accepted: [ctl[SHARED_OK], ctl[SHARED_OK + 1]],
    received: received.size,
  };

  // The doorbell: Worker 0 waits up to 5 s on an idle queue; Worker 1 rings.
  Atomics.store(ctl, BELL, 1);
  await until(() => Atomics.load(ctl, BELL) === 3, 8000);
  const bellReport = { woke: ctl[BELL_WOKE] === 1, read: ctl[BELL_READ] };

  Atomics.store(ctl, STOP, 1);
  const workerStats = await Promise.all(results);
  // The Workers closed their mapped queues: the device's fds must still work.
  const reply = buildUdp({ src: PEER, dst: LOCAL, srcPort: PEER_PORT, dstPort: FIRST_PORT });
  const buf = new Uint8Array(16 + reply.length);
  buf.set(reply, 16);
  const writtenAfter = [0, 1].map((q) =>
    dev.queue(q).write(
      [buf],
      new Int32Array([reply.length]),
      { csum: new Uint8Array([CSUM_NONE]) },
      16,
      1,
    )
  );
  console.log(JSON.stringify({
    queues: dev.queueCount,
    fds,
    packets: PACKETS,
    before,
    writer,
    writesDone: ctl[WRITES_DONE],
    after,
    shared: sharedReport,
    bell: bellReport,
    workerStats,
    writtenAfter,
  }));
} finally {
  Atomics.store(ctl, STOP, 1);
  for (const s of sockets) s.close();
  await sleep(50);
  for (const w of workers) w.terminate();
  bell.close();
  dev.close();
}
