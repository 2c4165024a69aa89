/**
 * The first SYN a knock admits against an allow-listed source's SYN, in
 * memory, as the lab bench's knock-latency phase meets the appliance: the
 * data-plane `Pipeline` (config/appliance.jsonc, client 1 allow-listed, 1 s
 * unlocks) under the engine's own `pump` over a `MemoryDevice`, first warmed
 * by allow-listed traffic only (TCP connects and data, UDP: the lab bench's
 * transfers), then in knock_lab.ts's order, one packet per batch as the
 * lab's are: client 1's connects (allow-listed SYNs); per sample client 2's
 * SYN (locked: the pre-check), the knock sequence, client 2's SYN (admitted),
 * the server's SYN/ACK to it, a housekeeping tick (the events' flush); then
 * client 1's SYNs again. Each pump is timed with `performance.now`; knock
 * samples are 30 s apart in the pipeline's time (one knock step each: a step
 * is accepted once).
 *
 *   deno run -A --v8-flags=<DATAPLANE_V8_FLAGS>[,--trace-deopt] \
 *     scripts/bench/admit_bench.ts [samples [warm-up rounds]]
 *
 * (a warm-up round: one allow-listed connect, 256 TCP segments, 64 UDP datagrams)
 * prints the JSON of `runAdmitBench()`.
 */
import { loadConfig } from "../../src/config/load.ts";
import { datapathUplinks } from "../../src/config/uplinks.ts";
import { MemoryDevice } from "../../src/device/memory.ts";
import { newCounters } from "../../src/datapath/counters.ts";
import { Engine } from "../../src/datapath/engine.ts";
import { Pipeline } from "../../src/datapath/pipeline.ts";
import type { ApplianceEvent } from "../../src/log/events.ts";
import { knockSequenceAt } from "../../src/knock/sequence.ts";
import { buildTcp, buildUdp } from "../../src/packet/build.ts";
import { TCP_ACK, TCP_PSH, TCP_SYN } from "../../src/packet/mod.ts";
import { median, round } from "./stats.ts";

const root = new URL("../../", import.meta.url).pathname;
const WAN = "198.51.100.1", SERVER = "192.0.2.12";
const CLIENT = "203.0.113.10", CLIENT2 = "203.0.113.20";
const SAMPLE_GAP_MS = 30_000;
const PAYLOAD = new Uint8Array(1200).fill(0x6b);
const KNOCK = new Uint8Array([0x6b]);

/** Microseconds of one pump per sample, and their medians. */
export interface AdmitBenchResult {
  samples: number;
  /** Packets of allow-listed traffic before the first sample. */
  warmupPackets: number;
  /** Client 1's SYN (allow-listed): pump, us. */
  allowListedSynUs: number[];
  /** Client 2's SYN before its knock (dropped as locked). */
  lockedSynUs: number[];
  /** The knock that completes the sequence (the unlock). */
  unlockingKnockUs: number[];
  /** Client 2's SYN right after its knock (admitted by it). */
  admittedSynUs: number[];
  /** The server's SYN/ACK to client 2. */
  admittedSynAckUs: number[];
  /** Client 1's SYN again, after the knock samples. */
  allowListedAfterUs: number[];
  /** The housekeeping tick after the sample (flushes the events). */
  housekeepingUs: number[];
  median: {
    allowListedSynUs: number;
    admittedSynUs: number;
    /** admitted / allow-listed. */
    ratio: number;
    /** Without the first sample (the process's first gated admission). */
    admittedSynUsLater: number;
    allowListedAfterUs: number;
    unlockingKnockUs: number;
  };
  /** flow-admitted events emitted (one per sample expected). */
  flowAdmittedEvents: number;
}

function syn(src: string, sport: number, dport = 52201): Uint8Array {
  return buildTcp({ src, dst: WAN, srcPort: sport, dstPort: dport, flags: TCP_SYN, seq: 1000 });
}

function synAck(client: string, cport: number, sport = 8080): Uint8Array {
  return buildTcp({
    src: SERVER,
    dst: client,
    srcPort: sport,
    dstPort: cport,
    flags: TCP_SYN | TCP_ACK,
    seq: 5000,
    ack: 1001,
  });
}

function ack(src: string, sport: number, dport = 52201, payload?: Uint8Array): Uint8Array {
  return buildTcp({
    src,
    dst: WAN,
    srcPort: sport,
    dstPort: dport,
    flags: payload ? TCP_ACK | TCP_PSH : TCP_ACK,
    seq: 1001,
    ack: 5001,
    payload,
  });
}

/** Runs `n` batches of `packets` (injected in order, `batch` at a time) through the engine. */
function drive(engine: Engine, dev: MemoryDevice, packets: Uint8Array[], nowMs: number): void {
  for (const p of packets) dev.inject(p);
  while (dev.pending > 0) engine.pump(nowMs);
  dev.takeWritten();
}

/** One packet, one batch: the pump's time in us. */
function timed(engine: Engine, dev: MemoryDevice, packet: Uint8Array, nowMs: number): number {
  dev.inject(packet);
  const t0 = performance.now();
  engine.pump(nowMs);
  const us = (performance.now() - t0) * 1000;
  dev.takeWritten();
  return round(us, 1);
}

/** Allow-listed traffic like the lab bench's transfers: connects, TCP data both ways, UDP. */
function warmUp(engine: Engine, dev: MemoryDevice, nowMs: number, rounds: number): number {
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    const port = 20000 + r, [pub, priv] = r % 2 === 0 ? [52201, 8080] : [52202, 5201];
    const open = [syn(CLIENT, port, pub), synAck(CLIENT, port, priv), ack(CLIENT, port, pub)];
    drive(engine, dev, open, nowMs);
    const data: Uint8Array[] = [];
    for (let i = 0; i < 128; i++) {
      data.push(ack(CLIENT, port, pub, PAYLOAD));
      data.push(buildTcp({
        src: SERVER,
        dst: CLIENT,
        srcPort: priv,
        dstPort: port,
        flags: TCP_ACK,
        seq: 5001,
        ack: 1001 + PAYLOAD.length,
      }));
    }
    for (let i = 0; i < 64; i++) {
      data.push(
        buildUdp({ src: CLIENT, dst: WAN, srcPort: 30000, dstPort: 52202, payload: PAYLOAD }),
      );
    }
    drive(engine, dev, data, nowMs);
    n += open.length + data.length;
  }
  return n;
}

/** Measures `samples` knock-then-SYN rounds after `warmRounds` rounds of allow-listed traffic. */
export async function runAdmitBench(samples = 10, warmRounds = 100): Promise<AdmitBenchResult> {
  const config = loadConfig(`${root}config/appliance.jsonc`);
  const events: ApplianceEvent[] = [];
  const p = new Pipeline({
    settings: {
      wanAddress: config.wan[0].addresses[0].address,
      uplinks: datapathUplinks(config),
      masquerade: config.masquerade.uplinks,
      lanAddress: config.lan.address,
      lanNetwork: config.lan.network,
      managementPort: config.management.port,
      managementWanAccess: config.management.wanAccess,
      allow: [`${CLIENT}/32`],
      maxFlows: config.conntrack.maxFlows,
      knock: { ...config.knock, lifetimeSec: 1 },
    },
    forwards: config.forwards,
    openPorts: config.openPorts,
    counters: newCounters(false),
    emit: (e) => events.push(...e),
  });
  const alice = config.users[0];
  await p.setUsers([{
    user: alice.name,
    secret: alice.secret,
    firstPort: alice.firstPort,
    length: alice.length,
    transport: alice.transport,
  }]);
  const dev = new MemoryDevice();
  const engine = new Engine(dev, p, { batch: 64 });
  let now = Date.now();
  const warmupPackets = warmUp(engine, dev, now, warmRounds);
  const r = {
    allowListedSynUs: [] as number[],
    lockedSynUs: [] as number[],
    unlockingKnockUs: [] as number[],
    admittedSynUs: [] as number[],
    admittedSynAckUs: [] as number[],
    allowListedAfterUs: [] as number[],
    housekeepingUs: [] as number[],
  };
  // As knock_lab.ts does: client 1's connects first, then client 2's knocks and connects.
  const allowListed = (out: number[], port: number, at: number) => {
    out.push(timed(engine, dev, syn(CLIENT, port), at));
    drive(engine, dev, [synAck(CLIENT, port), ack(CLIENT, port)], at);
  };
  for (let i = 0; i < samples; i++) allowListed(r.allowListedSynUs, 40000 + i, now + 20 * i);
  for (let i = 0; i < samples; i++) {
    now += SAMPLE_GAP_MS;
    await p.housekeeping(now); // the sequences of this step
    const port = 41000 + 2 * i;
    r.lockedSynUs.push(timed(engine, dev, syn(CLIENT2, port), now));
    const seq = await knockSequenceAt(alice.secret, Math.floor(now / 1000), alice.firstPort, 3);
    const knock = (port: number) =>
      buildUdp({ src: CLIENT2, dst: WAN, srcPort: 50000, dstPort: port, payload: KNOCK });
    for (let k = 0; k < seq.length - 1; k++) {
      drive(engine, dev, [knock(seq[k])], now + 300 + 20 * k);
    }
    const last = now + 300 + 20 * (seq.length - 1);
    r.unlockingKnockUs.push(timed(engine, dev, knock(seq[seq.length - 1]), last));
    r.admittedSynUs.push(timed(engine, dev, syn(CLIENT2, port + 1), last + 1));
    r.admittedSynAckUs.push(timed(engine, dev, synAck(CLIENT2, port + 1), last + 1));
    drive(engine, dev, [ack(CLIENT2, port + 1)], last + 1);
    const t0 = performance.now();
    await p.housekeeping(last + 100);
    r.housekeepingUs.push(round((performance.now() - t0) * 1000, 1));
  }
  // The allow-listed SYN again, after the gated admissions (a deopt they caused shows here).
  for (let i = 0; i < samples; i++) {
    allowListed(r.allowListedAfterUs, 43000 + i, now + 200 + 20 * i);
  }
  const later = (xs: number[]) => median(xs.slice(1));
  const m = {
    allowListedSynUs: median(r.allowListedSynUs),
    admittedSynUs: median(r.admittedSynUs),
    ratio: round(median(r.admittedSynUs) / median(r.allowListedSynUs), 2),
    admittedSynUsLater: later(r.admittedSynUs),
    allowListedAfterUs: median(r.allowListedAfterUs),
    unlockingKnockUs: median(r.unlockingKnockUs),
  };
  return {
    samples,
    warmupPackets,
    ...r,
    median: m,
    flowAdmittedEvents: events.filter((e) => e.type === "flow-admitted").length,
  };
}

if (import.meta.main) {
  const [samples, rounds] = Deno.args.filter((a) => /^\d+$/.test(a)).map(Number);
  console.log(JSON.stringify(await runAdmitBench(samples ?? 10, rounds ?? 100)));
}
