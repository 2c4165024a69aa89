/**
 * A Worker of `mq_probe.ts`: maps one queue of the probe's multi-queue TUN
 * by fd and reads it until told to stop, counting the probe's UDP flows per
 * queue. On request it writes a reply of a flow through a queue it names,
 * its own or another Worker's (to see the kernel's flow steering follow the
 * queue written on); both write datagrams through queue 0 at once (two
 * threads writing one queue fd); and Worker 0, with the doorbell
 * set on its queue, waits up to 5 s for Worker 1 to ring it.
 */
/// <reference lib="deno.worker" />
import { buildUdp } from "../../packet/mod.ts";
import { CSUM_NONE } from "../device.ts";
import { Doorbell } from "../doorbell.ts";
import { TunQueue } from "../tun.ts";
import {
  BELL,
  BELL_READ,
  BELL_WOKE,
  COUNTS,
  FIRST_PORT,
  FLOWS,
  LOCAL,
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

const OFF = 16;
const BATCH = 16;
const PEER_ADDR = 0xc6336402; // 198.51.100.2

function run(job: QueueJob) {
  const queues = job.fds.map((fd) => TunQueue.fromFd(fd, job.name, job.mtu, job.offload));
  const q = queues[job.index];
  const bell = Doorbell.fromFd(job.bellFd);
  if (job.index === 0) q.setDoorbell(bell);
  const ctl = new Int32Array(job.control);
  const bufs = Array.from({ length: BATCH }, () => new Uint8Array(OFF + 65536));
  const sizes = new Int32Array(BATCH);
  const meta = { csum: new Uint8Array(BATCH) };
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + job.maxMs;
  let rang = false, shared = false;
  Atomics.add(ctl, READY, 1);
  while (Atomics.load(ctl, STOP) === 0 && performance.now() < deadline) {
    const bellState = Atomics.load(ctl, BELL);
    if (job.index === 0 && bellState === 1) {
      Atomics.store(ctl, BELL, 2);
      const woke = q.wait(5000);
      Atomics.store(ctl, BELL_WOKE, woke ? 1 : 2);
      Atomics.store(ctl, BELL_READ, q.read(bufs, sizes, meta, OFF));
      Atomics.store(ctl, BELL, 3);
      continue;
    }
    if (job.index === 1 && bellState === 2 && !rang) {
      Atomics.wait(nap, 0, 0, 50); // let Worker 0 enter poll (a ring before it would count too)
      bell.ring();
      rang = true;
    }
    if (Atomics.load(ctl, SHARED) === 1 && !shared) {
      shared = true;
      sharedWrites(job.index, queues[0], ctl, bufs, sizes, meta, nap);
    }
    const mask = Atomics.load(ctl, WRITE_MASK);
    for (let f = 0; f < FLOWS; f++) {
      if ((mask & (1 << f)) === 0 || ctl[WRITE_BY + f] !== job.index) continue;
      const reply = buildUdp({
        src: PEER,
        dst: LOCAL,
        srcPort: PEER_PORT,
        dstPort: FIRST_PORT + f,
      });
      bufs[0].set(reply, OFF);
      sizes[0] = reply.length;
      meta.csum[0] = CSUM_NONE;
      const via = queues[ctl[WRITE_VIA + f]];
      if (via.write(bufs, sizes, meta, OFF, 1) === 1) Atomics.add(ctl, WRITES_DONE, 1);
      Atomics.and(ctl, WRITE_MASK, ~(1 << f));
    }
    if (!q.wait(20)) continue;
    const n = q.read(bufs, sizes, meta, OFF);
    const phase = Atomics.load(ctl, PHASE);
    for (let i = 0; i < n; i++) {
      const b = bufs[i];
      const ihl = (b[OFF] & 0x0f) * 4;
      const dst = ((b[OFF + 16] << 24) | (b[OFF + 17] << 16) | (b[OFF + 18] << 8) | b[OFF + 19]) >>>
        0;
      if (b[OFF + 9] !== 17 || dst !== PEER_ADDR) continue;
      const sport = (b[OFF + ihl] << 8) | b[OFF + ihl + 1];
      const dport = (b[OFF + ihl + 2] << 8) | b[OFF + ihl + 3];
      const f = sport - FIRST_PORT;
      if (dport !== PEER_PORT || f < 0 || f >= FLOWS) continue;
      Atomics.add(ctl, COUNTS + (phase * 2 + job.index) * FLOWS + f, 1);
    }
  }
  for (const m of queues) m.close(); // mapped queues: the fds stay open for the device
  bell.close();
  return { read: q.stats(), written: queues.map((m) => m.stats().writePackets) };
}

/** Writes `SHARED_WRITES` datagrams to `SHARED_PORT` through `q` in bursts, counting the accepted. */
function sharedWrites(
  index: number,
  q: TunQueue,
  ctl: Int32Array,
  bufs: Uint8Array[],
  sizes: Int32Array,
  meta: { csum: Uint8Array },
  nap: Int32Array,
): void {
  const payload = new Uint8Array(4);
  for (let i = 0; i < SHARED_WRITES; i += 10) {
    for (let k = 0; k < 10; k++) {
      payload[0] = index;
      payload[1] = i + k;
      const d = buildUdp({
        src: PEER,
        dst: LOCAL,
        srcPort: PEER_PORT,
        dstPort: SHARED_PORT,
        payload,
      });
      bufs[k].set(d, OFF);
      sizes[k] = d.length;
      meta.csum[k] = CSUM_NONE;
    }
    Atomics.add(ctl, SHARED_OK + index, q.write(bufs, sizes, meta, OFF, 10));
    Atomics.wait(nap, 0, 0, 1); // let the receiving socket keep up
  }
  Atomics.add(ctl, SHARED_DONE, 1);
}

self.onmessage = (e: MessageEvent<QueueJob>) => {
  self.postMessage(run(e.data));
};
