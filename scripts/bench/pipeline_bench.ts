/**
 * The fast-path gain, in memory: the datapath `Pipeline` (built as the
 * data-plane Worker builds it, with the settings of config/appliance.jsonc)
 * processes pre-built packets
 *  - of established flows (fast path: conntrack hit, rewrite from the flow entry), and
 *  - each opening a new flow (slow path: knock watch, admission, rule lookup,
 *    flow creation, DNAT), every packet a fresh source address and port.
 * Each packet is first copied from its template into the work buffer (the
 * pipeline rewrites in place), as a device read would; `copyNsPerPacket`
 * says what that copy alone costs. Checksums are verified in software
 * (checksum state `CSUM_NONE`, IPv4 header checked: a device that cannot say).
 *
 * IPv6 (`tcp6Fast`): the same TCP fast path through a pinhole (an open-ports
 * rule to a LAN host's IPv6 address), addresses interned (`ipv6_ids.ts`).
 *
 * `deno run -A scripts/bench/pipeline_bench.ts [--quick]` prints the JSON of
 * `runPipelineBench()`; with `--tcp6`, the IPv6 row's alone (`runTcp6Bench()`).
 */
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { datapathUplinks } from "../../src/config/uplinks.ts";
import type { DatapathSettings, KnockUser } from "../../src/datapath/messages.ts";
import { newCounters, snapshotCounters, Stat } from "../../src/datapath/counters.ts";
import { Pipeline } from "../../src/datapath/pipeline.ts";
import { buildTcp, buildUdp } from "../../src/packet/build.ts";
import { buildIpv6Tcp } from "../../src/packet/ipv6_build.ts";
import { TCP_ACK, TCP_PSH, TCP_SYN } from "../../src/packet/mod.ts";
import { median, round } from "./stats.ts";

const root = new URL("../../", import.meta.url).pathname;
const WAN = "198.51.100.1", SERVER = "192.0.2.12", CLIENT_NET = 0xcb007100; // 203.0.113.0
const T0 = 1_764_028_805_000;
// Longer than any flow timeout (established TCP: 5 days).
const JUMP_MS = 30 * 86_400_000;

/** Packets per second of one path, and its cost per packet. */
export interface PathRate {
  pps: number;
  nsPerPacket: number;
  /** Per-round rates the median was taken from. */
  rounds: number[];
}

/** One protocol's fast path against its slow path. */
export interface PathComparison {
  /** IP packet bytes of the fast-path packets. */
  packetBytes: number;
  fast: PathRate;
  slow: PathRate;
  /** fast.pps / slow.pps. */
  ratio: number;
}

/** What `runPipelineBench` measured. */
export interface PipelineBenchResult {
  /** Established flows the fast path cycles through. */
  flows: number;
  /** New flows per slow-path round (the table is emptied between rounds, untimed). */
  newFlowsPerRound: number;
  copyNsPerPacket: number;
  /** UDP, 64-byte payload, to the forwarded port 52202; slow-path sources allow-listed. */
  udp: PathComparison;
  /** TCP: fast = 64-byte data segments and pure ACKs alternating; slow = SYNs. */
  tcp: PathComparison;
  /** UDP slow path from knock-unlocked sources (no allow-list): adds the unlock lookup and a flow-admitted event. */
  udpGatedSlow: PathRate;
  /** IPv6 TCP through a pinhole, 64-byte data segments and pure ACKs alternating (no NAT). */
  tcp6Fast: PathRate;
}

/** Sizes of a run. */
export interface PipelineBenchOptions {
  /** Established flows for the fast path (default 1024). */
  flows?: number;
  /** Timed rounds per path; the median is reported (default 5). */
  rounds?: number;
  /** Fast-path packets per round (default 1,000,000). */
  fastPackets?: number;
  /** New flows per slow-path round (default 100,000). */
  slowPackets?: number;
}

/** Templates laid end to end at a fixed stride. */
class PacketSet {
  readonly data: Uint8Array;
  readonly lens: Uint16Array;
  constructor(readonly count: number, readonly stride: number) {
    this.data = new Uint8Array(count * stride);
    this.lens = new Uint16Array(count);
  }
  put(i: number, pkt: Uint8Array): void {
    this.data.set(pkt, i * this.stride);
    this.lens[i] = pkt.length;
  }
}

function clientAddr(i: number): number {
  return (CLIENT_NET | (1 + (i % 254))) >>> 0;
}

function clientPort(i: number): number {
  return 1024 + Math.floor(i / 254);
}

const PAYLOAD = new Uint8Array(64).fill(0x6b);

/** The data-plane settings the configuration file implies (as the appliance starts with). */
function settingsOf(c: Config, allow: string[]): DatapathSettings {
  return {
    wanAddress: c.wan[0].addresses[0].address,
    uplinks: datapathUplinks(c),
    masquerade: c.masquerade.uplinks,
    lanAddress: c.lan.address,
    lanNetwork: c.lan.network,
    managementPort: c.management.port,
    managementWanAccess: c.management.wanAccess,
    allow,
    maxFlows: c.conntrack.maxFlows,
    knock: c.knock,
  };
}

function usersOf(c: Config): KnockUser[] {
  return c.users.map((u) => ({
    user: u.name,
    secret: u.secret,
    firstPort: u.firstPort,
    length: u.length,
    transport: u.transport,
  }));
}

const WAN6 = "2001:db8:198::1", SERVER6 = "2001:db8:192::12";

/** The client `i` of the IPv6 client /64. */
function client6(i: number): string {
  return `2001:db8:203::${(1 + (i % 254)).toString(16)}`;
}

async function newPipeline(
  allow: string[],
  ipv6 = false,
): Promise<{ p: Pipeline; c: Float64Array }> {
  const config = loadConfig(`${root}config/appliance.jsonc`);
  const counters = newCounters(false);
  const settings = settingsOf(config, allow);
  const p = new Pipeline({
    settings: ipv6
      ? {
        ...settings,
        uplinks: settings.uplinks.map((u) => ({ ...u, addresses6: [WAN6] })),
        ipv6: { lanAddress: "2001:db8:192::1", lanNetwork: "2001:db8:192::/64", unlockPrefix: 64 },
      }
      : settings,
    forwards: config.forwards,
    openPorts: ipv6
      ? [{
        name: "pinhole6",
        enabled: true,
        privateAddress: SERVER6,
        ports: [{ protocol: "tcp", ports: { start: 5201, end: 5201 } }],
        enforceKnock: true,
        users: [],
      }]
      : config.openPorts,
    counters,
    emit: () => {},
  });
  await p.setUsers(usersOf(config));
  return { p, c: counters };
}

/** Runs every packet of `set` once through `p`; returns how many passed. */
function pass(p: Pipeline, set: PacketSet, work: Uint8Array, nowMs: number, n: number): number {
  const { data, lens, stride, count } = set;
  let ok = 0;
  for (let k = 0, i = 0; k < n; k++) {
    const len = lens[i];
    work.set(data.subarray(i * stride, i * stride + len));
    if (p.process(work, 0, len, 0, nowMs)) ok++;
    if (++i === count) i = 0;
  }
  return ok;
}

function copyOnly(set: PacketSet, work: Uint8Array, n: number): number {
  const { data, lens, stride, count } = set;
  let sink = 0;
  const t0 = performance.now();
  for (let k = 0, i = 0; k < n; k++) {
    work.set(data.subarray(i * stride, i * stride + lens[i]));
    sink += work[9];
    if (++i === count) i = 0;
  }
  const ns = ((performance.now() - t0) * 1e6) / n;
  return sink === -1 ? 0 : ns;
}

function check(what: string, ok: number, n: number, c: Float64Array): void {
  if (ok !== n) {
    const s = snapshotCounters(c);
    throw new Error(
      `Cannot bench ${what}: ${n - ok} of ${n} packets dropped (${JSON.stringify(s.drops)})`,
    );
  }
}

function rate(rounds: number[]): PathRate {
  const pps = median(rounds);
  return { pps: Math.round(pps), nsPerPacket: round(1e9 / pps, 1), rounds: rounds.map(Math.round) };
}

/** Empties the flow table by jumping the clock 30 days ahead; returns the new time. */
function clearFlows(p: Pipeline, nowMs: number): number {
  const next = nowMs + JUMP_MS;
  for (let i = 0; i < 1000 && p.ct.size > 0; i++) p.ct.expire(Math.floor(next / 1000), 1 << 20);
  if (p.ct.size > 0) throw new Error(`Cannot bench: ${p.ct.size} flows left after expiry`);
  return next;
}

/** UDP datagrams from client `i` to the forwarded port. */
function udpSet(n: number, offset: number): PacketSet {
  const set = new PacketSet(n, 128);
  for (let i = 0; i < n; i++) {
    const j = i + offset;
    set.put(
      i,
      buildUdp({
        src: clientAddr(j),
        dst: WAN,
        srcPort: clientPort(j),
        dstPort: 52202,
        payload: PAYLOAD,
      }),
    );
  }
  return set;
}

function tcpSet(n: number, offset: number, flags: number, payload?: Uint8Array): PacketSet {
  const set = new PacketSet(n, 128);
  for (let i = 0; i < n; i++) {
    const j = i + offset;
    set.put(
      i,
      buildTcp({
        src: clientAddr(j),
        dst: WAN,
        srcPort: clientPort(j),
        dstPort: 52202,
        flags,
        seq: 1000,
        ack: 1,
        payload,
      }),
    );
  }
  return set;
}

/** Data (client to server) and pure ACKs (server to client, pre-NAT addresses) interleaved. */
function tcpTraffic(n: number): PacketSet {
  const set = new PacketSet(2 * n, 128);
  for (let i = 0; i < n; i++) {
    const common = { seq: 1001, ack: 1 };
    set.put(
      2 * i,
      buildTcp({
        src: clientAddr(i),
        dst: WAN,
        srcPort: clientPort(i),
        dstPort: 52202,
        flags: TCP_ACK | TCP_PSH,
        payload: PAYLOAD,
        ...common,
      }),
    );
    set.put(
      2 * i + 1,
      buildTcp({
        src: SERVER,
        dst: clientAddr(i),
        srcPort: 5201,
        dstPort: clientPort(i),
        flags: TCP_ACK,
        ...common,
      }),
    );
  }
  return set;
}

function timeFast(
  p: Pipeline,
  c: Float64Array,
  set: PacketSet,
  work: Uint8Array,
  o: Required<PipelineBenchOptions>,
  nowMs: number,
): number[] {
  check("fast path warm-up", pass(p, set, work, nowMs, o.fastPackets / 4), o.fastPackets / 4, c);
  const rounds: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const before = c[Stat.FastPath];
    const t0 = performance.now();
    const ok = pass(p, set, work, nowMs, o.fastPackets);
    const ms = performance.now() - t0;
    check("fast path", ok, o.fastPackets, c);
    if (c[Stat.FastPath] - before !== o.fastPackets) throw new Error("Cannot bench: slow path hit");
    rounds.push(o.fastPackets / (ms / 1000));
  }
  return rounds;
}

/** Times slow-path rounds; `prepare` runs untimed before each (clear table, unlock sources). */
function timeSlow(
  p: Pipeline,
  c: Float64Array,
  set: PacketSet,
  work: Uint8Array,
  rounds: number,
  nowMs: number,
  prepare: (nowMs: number) => number,
): number[] {
  const out: number[] = [];
  for (let r = -1; r < rounds; r++) {
    nowMs = prepare(nowMs);
    const before = c[Stat.FlowsCreated];
    const t0 = performance.now();
    const ok = pass(p, set, work, nowMs, set.count);
    const ms = performance.now() - t0;
    check("slow path", ok, set.count, c);
    if (c[Stat.FlowsCreated] - before !== set.count) throw new Error("Cannot bench: flow reused");
    if (r >= 0) out.push(set.count / (ms / 1000)); // round -1 warms up the JIT
  }
  return out;
}

async function benchUdp(o: Required<PipelineBenchOptions>, work: Uint8Array) {
  const { p, c } = await newPipeline(["203.0.113.0/24"]);
  const est = udpSet(o.flows, 0);
  const now = T0;
  check("udp flow setup", pass(p, est, work, now, o.flows), o.flows, c);
  const fast = timeFast(p, c, est, work, o, now);
  const fresh = udpSet(o.slowPackets, 0);
  const slow = timeSlow(p, c, fresh, work, o.rounds, now, (t) => clearFlows(p, t));
  return { fast: rate(fast), slow: rate(slow), copy: copyOnly(est, work, o.fastPackets) };
}

async function benchUdpGated(o: Required<PipelineBenchOptions>, work: Uint8Array) {
  const { p, c } = await newPipeline([]);
  const fresh = udpSet(o.slowPackets, 0);
  const slow = timeSlow(p, c, fresh, work, o.rounds, T0, (t) => {
    const next = clearFlows(p, t);
    // Events of the last round are flushed with the sweep; then unlock all 254 sources.
    p.unlocks.expire(next);
    for (let i = 0; i < 254; i++) p.unlocks.unlock(clientAddr(i), "alice", 0, next);
    return next;
  });
  await p.housekeeping(T0 + (o.rounds + 2) * JUMP_MS);
  return rate(slow);
}

async function benchTcp(o: Required<PipelineBenchOptions>, work: Uint8Array) {
  const { p, c } = await newPipeline(["203.0.113.0/24"]);
  const now = T0;
  // Handshake through the pipeline: SYN, SYN/ACK from the server, ACK.
  const syn = tcpSet(o.flows, 0, TCP_SYN);
  check("tcp SYN", pass(p, syn, work, now, o.flows), o.flows, c);
  const synAck = new PacketSet(o.flows, 128);
  for (let i = 0; i < o.flows; i++) {
    synAck.put(
      i,
      buildTcp({
        src: SERVER,
        dst: clientAddr(i),
        srcPort: 5201,
        dstPort: clientPort(i),
        flags: TCP_SYN | TCP_ACK,
        seq: 0,
        ack: 1001,
      }),
    );
  }
  check("tcp SYN/ACK", pass(p, synAck, work, now, o.flows), o.flows, c);
  check("tcp ACK", pass(p, tcpSet(o.flows, 0, TCP_ACK), work, now, o.flows), o.flows, c);
  const traffic = tcpTraffic(o.flows);
  const fast = timeFast(p, c, traffic, work, o, now);
  const fresh = tcpSet(o.slowPackets, o.flows, TCP_SYN);
  const slow = timeSlow(p, c, fresh, work, o.rounds, now, (t) => clearFlows(p, t));
  return { fast: rate(fast), slow: rate(slow), bytes: traffic.lens[0] };
}

/** The TCP fast path over IPv6 through a pinhole (sources allow-listed by their /64). */
async function benchTcp6(o: Required<PipelineBenchOptions>, work: Uint8Array) {
  const { p, c } = await newPipeline(["2001:db8:203::/64"], true);
  const now = T0;
  const seg = (
    i: number,
    toServer: boolean,
    flags: number,
    seq: number,
    ack: number,
    data = false,
  ) =>
    buildIpv6Tcp({
      src: toServer ? client6(i) : SERVER6,
      dst: toServer ? SERVER6 : client6(i),
      srcPort: toServer ? clientPort(i) : 5201,
      dstPort: toServer ? 5201 : clientPort(i),
      flags,
      seq,
      ack,
      payload: data ? PAYLOAD : undefined,
    });
  const phase = (make: (i: number) => Uint8Array) => {
    const set = new PacketSet(o.flows, 160);
    for (let i = 0; i < o.flows; i++) set.put(i, make(i));
    return set;
  };
  check(
    "tcp6 SYN",
    pass(p, phase((i) => seg(i, true, TCP_SYN, 1000, 0)), work, now, o.flows),
    o.flows,
    c,
  );
  const synAck = phase((i) => seg(i, false, TCP_SYN | TCP_ACK, 0, 1001));
  check("tcp6 SYN/ACK", pass(p, synAck, work, now, o.flows), o.flows, c);
  check(
    "tcp6 ACK",
    pass(p, phase((i) => seg(i, true, TCP_ACK, 1001, 1)), work, now, o.flows),
    o.flows,
    c,
  );
  const traffic = new PacketSet(2 * o.flows, 160);
  for (let i = 0; i < o.flows; i++) {
    traffic.put(2 * i, seg(i, true, TCP_ACK | TCP_PSH, 1001, 1, true));
    traffic.put(2 * i + 1, seg(i, false, TCP_ACK, 1, 1001));
  }
  return rate(timeFast(p, c, traffic, work, o, now));
}

function compare(packetBytes: number, fast: PathRate, slow: PathRate): PathComparison {
  return { packetBytes, fast, slow, ratio: round(fast.pps / slow.pps, 2) };
}

function sizes(opts: PipelineBenchOptions): Required<PipelineBenchOptions> {
  return {
    flows: opts.flows ?? 1024,
    rounds: opts.rounds ?? 5,
    fastPackets: opts.fastPackets ?? 1_000_000,
    slowPackets: opts.slowPackets ?? 100_000,
  };
}

/** The IPv6 row alone (`tcp6Fast`), for work on the IPv6 path. */
export async function runTcp6Bench(opts: PipelineBenchOptions = {}): Promise<PathRate> {
  return await benchTcp6(sizes(opts), new Uint8Array(2048));
}

/** Measures fast-path and slow-path packet rates of the pipeline. */
export async function runPipelineBench(
  opts: PipelineBenchOptions = {},
): Promise<PipelineBenchResult> {
  const o = sizes(opts);
  if (o.slowPackets + o.flows > 254 * 64000) throw new Error("Cannot bench: too many new flows");
  const work = new Uint8Array(2048);
  const udp = await benchUdp(o, work);
  const tcp = await benchTcp(o, work);
  const gated = await benchUdpGated(o, work);
  const tcp6 = await benchTcp6(o, work);
  return {
    flows: o.flows,
    newFlowsPerRound: o.slowPackets,
    copyNsPerPacket: round(udp.copy, 1),
    udp: compare(92, udp.fast, udp.slow),
    tcp: compare(tcp.bytes, tcp.fast, tcp.slow),
    udpGatedSlow: gated,
    tcp6Fast: tcp6,
  };
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const opts = quick ? { rounds: 3, fastPackets: 300_000, slowPackets: 50_000 } : {};
  const result = Deno.args.includes("--tcp6")
    ? await runTcp6Bench(opts)
    : await runPipelineBench(opts);
  console.log(JSON.stringify(result, null, 2));
}
