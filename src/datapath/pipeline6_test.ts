import assert from "node:assert/strict";
import fc from "fast-check";
import { ManualClock } from "../clock.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import type { KnockStateRecord } from "../knock/verifier.ts";
import type { ApplianceEvent } from "../log/events.ts";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import {
  authHeader,
  buildIcmpv6,
  buildIcmpv6Error,
  buildIpv6Tcp,
  buildIpv6Udp,
  buildTcp,
  destOptionsHeader,
  formatIpv6,
  fragment6,
  fragmentHeader,
  hopByHopHeader,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_NEIGHBOR_SOLICIT,
  ICMPV6_PACKET_TOO_BIG,
  Icmpv6Packet,
  Ipv6Packet,
  PROTO_TCP,
  PROTO_UDP,
  routingHeader,
  TCP_ACK,
  TCP_SYN,
  TcpPacket,
  toIpv6,
  UdpPacket,
} from "../packet/mod.ts";
import { newCounters, snapshotCounters } from "./counters.ts";
import type { DatapathSettings, KnockClaim } from "./messages.ts";
import { Admission } from "./admission.ts";
import { Pipeline } from "./pipeline.ts";
import { HandoffRing } from "./handoff.ts";
import { ConnTable } from "../conntrack/mod.ts";
import { CLIENT, CLIENT2, SECRET, SERVER, SETTINGS, T0, WAN } from "./_test_fixtures.ts";

const C6 = "2001:db8:203::10", C6B = "2001:db8:203::20", C6OTHER = "2001:db8:204::10";
const WAN6 = "2001:db8:198::1", LAN6 = "2001:db8:192::1", S6 = "2001:db8:192::12";
const REMOTE6 = "2001:db8:55::80";

const SETTINGS6: DatapathSettings = {
  ...SETTINGS,
  uplinks: [{ ...SETTINGS.uplinks[0], addresses6: [WAN6] }],
  ipv6: { lanAddress: LAN6, lanNetwork: "2001:db8:192::/64", unlockPrefix: 64 },
};

const PINHOLE: OpenPortsRule = {
  name: "pinhole",
  enabled: true,
  privateAddress: S6,
  ports: [{ protocol: "both", ports: { start: 8080, end: 8080 } }],
  enforceKnock: true,
  users: [],
};

const NAT66: PortForwardRule = {
  name: "nat66",
  enabled: true,
  protocol: "tcp",
  publicPorts: { start: 52201, end: 52201 },
  privateAddress: S6,
  privatePorts: { start: 8080, end: 8080 },
  enforceKnock: true,
  users: [],
};

const V4: PortForwardRule = {
  name: "web4",
  enabled: true,
  protocol: "tcp",
  publicPorts: { start: 52201, end: 52201 },
  privateAddress: SERVER,
  privatePorts: { start: 8080, end: 8080 },
  enforceKnock: true,
  users: [],
};

async function setup(
  settings: Partial<DatapathSettings> = {},
  forwards: PortForwardRule[] = [NAT66, V4],
) {
  const events: ApplianceEvent[] = [];
  const state: KnockStateRecord[] = [];
  const counters = newCounters(false);
  const p = new Pipeline({
    settings: { ...SETTINGS6, ...settings },
    forwards,
    openPorts: [PINHOLE],
    counters,
    emit: (e) => events.push(...e),
    emitKnockState: (r) => state.push(...r),
    clock: new ManualClock(T0),
  });
  await p.setUsers([{
    user: "alice",
    secret: SECRET,
    firstPort: 41001,
    length: 3,
    transport: "any",
  }]);
  return { p, counters, events, state };
}

function run(p: Pipeline, pkt: Uint8Array, now = T0): Uint8Array | null {
  const buf = pkt.slice();
  return p.process(buf, 0, buf.length, 0, now) ? buf : null;
}

function syn6(src: string, dst: string, sport: number, dport: number, flags = TCP_SYN) {
  return buildIpv6Tcp({ src, dst, srcPort: sport, dstPort: dport, flags, seq: 1000, ack: 0 });
}

async function knock6(p: Pipeline, src: string, now = T0) {
  const seq = await knockSequenceAt(SECRET, Math.floor(now / 1000), 41001, 3);
  for (const port of seq) assert.equal(run(p, syn6(src, WAN6, 40000, port), now), null);
}

async function knock4(p: Pipeline, src: string, now = T0) {
  const seq = await knockSequenceAt(SECRET, Math.floor(now / 1000), 41001, 3);
  for (const port of seq) {
    const pkt = buildTcp({ src, dst: WAN, srcPort: 40000, dstPort: port, flags: TCP_SYN });
    assert.equal(run(p, pkt, now), null);
  }
}

/** A TCP SYN from `src` to the IPv4 forward (`V4`) on the WAN address. */
function syn(src: string, sport: number, dport: number) {
  return buildTcp({ src, dst: WAN, srcPort: sport, dstPort: dport, flags: TCP_SYN });
}

function view(pkt: Uint8Array) {
  const ip = new Ipv6Packet().bind(pkt);
  assert.equal(ip.check(), 0);
  const l4 = ip.upperOffset();
  return {
    ip,
    src: formatIpv6(Array.from({ length: 4 }, (_, i) => ip.srcWord(i))),
    dst: formatIpv6(Array.from({ length: 4 }, (_, i) => ip.dstWord(i))),
    sport: (pkt[l4] << 8) | pkt[l4 + 1],
    dport: (pkt[l4 + 2] << 8) | pkt[l4 + 3],
    hopLimit: ip.hopLimit(),
  };
}

function assertValid6(pkt: Uint8Array) {
  const ip = new Ipv6Packet().bind(pkt);
  assert.equal(ip.check(), 0);
  const sum = ip.pseudoHeaderSum(), off = ip.upperOffset(), len = ip.upperLen();
  if (ip.upperProtocol() === PROTO_TCP) {
    assert.ok(new TcpPacket().bind(pkt, off, len).verifyChecksum6(sum), "TCP checksum");
  } else if (ip.upperProtocol() === PROTO_UDP) {
    assert.ok(new UdpPacket().bind(pkt, off, len).verifyChecksum6(sum), "UDP checksum");
  } else {
    assert.ok(new Icmpv6Packet().bind(pkt, off, len).verifyChecksum(sum), "ICMPv6 checksum");
  }
}

function drops(counters: Float64Array) {
  return snapshotCounters(counters).drops;
}

Deno.test("IPv6 from the LAN out is tracked; its replies pass, an unsolicited packet does not", async () => {
  const { p, counters } = await setup();
  const out = run(p, syn6(S6, REMOTE6, 50000, 443));
  assert.ok(out, "LAN to the WAN passes");
  assert.deepEqual(
    { src: view(out).src, dst: view(out).dst, hop: view(out).hopLimit },
    { src: S6, dst: REMOTE6, hop: 65 },
    "not translated; the hop the TUN took is given back",
  );
  assert.ok(run(p, syn6(REMOTE6, S6, 443, 50000, TCP_SYN | TCP_ACK)), "the reply");
  assert.equal(run(p, syn6(REMOTE6, S6, 443, 50001, TCP_SYN)), null, "unsolicited");
  assert.equal(drops(counters)["locked"] ?? 0, 0);
  assert.equal(drops(counters)["no-rule"], 1);
  const echo = buildIcmpv6({ src: S6, dst: REMOTE6, type: ICMPV6_ECHO_REQUEST, rest: 0x12340001 });
  assert.ok(run(p, echo), "echo out");
  const reply = buildIcmpv6({ src: REMOTE6, dst: S6, type: ICMPV6_ECHO_REPLY, rest: 0x12340001 });
  assert.ok(run(p, reply), "its reply");
  const stray = buildIcmpv6({ src: REMOTE6, dst: S6, type: ICMPV6_ECHO_REPLY, rest: 0x99990001 });
  assert.equal(run(p, stray), null, "a reply to no echo");
  const ping = buildIcmpv6({ src: REMOTE6, dst: S6, type: ICMPV6_ECHO_REQUEST, rest: 0x77770001 });
  assert.equal(run(p, ping), null, "the WAN pings nothing");
  const flows = p.flows(10);
  assert.ok(flows.some((f) => f.origSrc === S6 && f.origDst === REMOTE6 && f.proto === PROTO_TCP));
});

Deno.test("a pinhole opens to the knocking source's /64 only, and an IPv4 knock opens no IPv6", async () => {
  const { p, counters, events } = await setup();
  assert.equal(run(p, syn6(C6, S6, 50000, 8080)), null, "locked before the knock");
  assert.equal(drops(counters)["locked"], 1);
  await knock4(p, CLIENT);
  assert.equal(run(p, syn6(C6, S6, 50000, 8080)), null, "an IPv4 knock does not open IPv6");
  // The same step over IPv6 would be a replay (one knock per step, whatever the family).
  const T1 = T0 + 60_000;
  await knock6(p, C6, T1);
  const pass = run(p, syn6(C6, S6, 50000, 8080), T1);
  assert.ok(pass, "admitted after the IPv6 knock");
  assert.deepEqual([view(pass).src, view(pass).dst, view(pass).dport], [C6, S6, 8080]);
  assertValid6(pass);
  assert.ok(run(p, syn6(S6, C6, 8080, 50000, TCP_SYN | TCP_ACK), T1), "the server answers");
  assert.ok(run(p, syn6(C6B, S6, 50001, 8080), T1), "another address of the same /64");
  assert.equal(run(p, syn6(C6OTHER, S6, 50002, 8080), T1), null, "another /64 is not");
  assert.equal(run(p, syn6(C6, S6, 50003, 8081), T1), null, "a port outside the pinhole");
  const unlocks = p.query("unlocks", 10) as { ip: string; wanAddress: string }[];
  assert.deepEqual(
    unlocks.map((u) => [u.ip, u.wanAddress]).sort(),
    [["2001:db8:203::/64", WAN6], [CLIENT, WAN]],
  );
  p.admission.flush();
  const success = events.filter((e) => e.type === "knock-success") as {
    ip: string;
    wan?: string;
  }[];
  assert.deepEqual(success.map((e) => [e.ip, e.wan]), [[CLIENT, WAN], ["2001:db8:203::/64", WAN6]]);
  const admitted = events.filter((e) => e.type === "flow-admitted") as { src: string }[];
  assert.deepEqual(admitted.map((e) => e.src), [C6, C6B]);
  assert.equal(snapshotCounters(counters).stats.flows_admitted_by_knock, 2);
});

Deno.test("unlockPrefix 128 unlocks the address alone", async () => {
  const { p } = await setup({
    ipv6: { lanAddress: LAN6, lanNetwork: "2001:db8:192::/64", unlockPrefix: 128 },
  });
  await knock6(p, C6);
  assert.ok(run(p, syn6(C6, S6, 50000, 8080)));
  assert.equal(run(p, syn6(C6B, S6, 50001, 8080)), null);
  const unlocks = p.query("unlocks", 10) as { ip: string }[];
  assert.deepEqual(unlocks.map((u) => u.ip), [C6]);
});

Deno.test("a NAT66 forward rewrites to the LAN host and back, checksums kept", async () => {
  const { p } = await setup();
  assert.equal(run(p, syn6(C6, WAN6, 50000, 52201)), null, "locked");
  await knock6(p, C6);
  const fwd = run(p, syn6(C6, WAN6, 50000, 52201));
  assert.ok(fwd);
  assert.deepEqual([view(fwd).src, view(fwd).dst, view(fwd).dport], [C6, S6, 8080]);
  assertValid6(fwd);
  const back = run(p, syn6(S6, C6, 8080, 50000, TCP_SYN | TCP_ACK));
  assert.ok(back);
  assert.deepEqual([view(back).src, view(back).sport, view(back).dst], [WAN6, 52201, C6]);
  assertValid6(back);
  const udp = buildIpv6Udp({ src: C6, dst: WAN6, srcPort: 1, dstPort: 52201 });
  assert.equal(run(p, udp), null, "the rule is TCP only");
});

Deno.test("ICMPv6 errors about a tracked flow pass (translated for NAT66); others are dropped", async () => {
  const { p, counters } = await setup();
  await knock6(p, C6);
  // Pinhole: the client's side says the server's segment was too big.
  assert.ok(run(p, syn6(C6, S6, 50000, 8080)));
  const big = syn6(S6, C6, 8080, 50000, TCP_SYN | TCP_ACK);
  assert.ok(run(p, big));
  const ptb = buildIcmpv6Error({
    src: C6,
    dst: S6,
    type: ICMPV6_PACKET_TOO_BIG,
    code: 0,
    rest: 1280,
    original: big,
  });
  const passed = run(p, ptb);
  assert.ok(passed, "packet too big about a pinhole flow");
  assertValid6(passed);
  // NAT66: the server's port unreachable about the client's datagram... over TCP: its reset's error.
  const fwd = run(p, syn6(C6, WAN6, 50001, 52201))!;
  const unreach = buildIcmpv6Error({ src: S6, dst: C6, type: 1, code: 4, original: fwd });
  const out = run(p, unreach);
  assert.ok(out, "an error from the server about a NAT66 flow");
  assertValid6(out);
  assert.deepEqual([view(out).src, view(out).dst], [WAN6, C6], "the outer source is the WAN's");
  const inner = new Ipv6Packet().bind(out, 48, out.length - 48);
  assert.equal(inner.checkHeader(), 0);
  const quoted = formatIpv6(Array.from({ length: 4 }, (_, i) => inner.dstWord(i)));
  assert.equal(quoted, WAN6, "the quoted packet is the one the client sent");
  assert.equal((out[inner.upperOffset() + 2] << 8) | out[inner.upperOffset() + 3], 52201);
  // A router on the path about a LAN host's own outbound flow.
  const outbound = syn6(S6, REMOTE6, 50100, 443);
  assert.ok(run(p, outbound));
  const exceeded = buildIcmpv6Error({
    src: "2001:db8:99::1",
    dst: S6,
    type: 3,
    code: 0,
    original: outbound,
  });
  assert.ok(run(p, exceeded), "time exceeded from a router about an outbound flow");
  const stray = buildIcmpv6Error({
    src: C6,
    dst: S6,
    type: ICMPV6_PACKET_TOO_BIG,
    code: 0,
    rest: 1280,
    original: syn6(S6, C6, 8080, 59999, TCP_ACK),
  });
  assert.equal(run(p, stray), null, "about no flow");
  assert.equal(drops(counters)["icmp-unmatched"], 1);
  assert.equal(snapshotCounters(counters).stats.icmp_errors_translated, 3);
});

Deno.test("neighbour discovery in the TUN is dropped and counted; so are bad IPv6 packets", async () => {
  const { p, counters } = await setup();
  const ns = buildIcmpv6({
    src: S6,
    dst: "ff02::1:ff00:1",
    type: ICMPV6_NEIGHBOR_SOLICIT,
    hopLimit: 255,
    body: new Uint8Array(16),
  });
  assert.equal(run(p, ns), null);
  assert.equal(drops(counters)["neighbour-discovery"], 1);
  assert.equal(run(p, buildIpv6Udp({ src: S6, dst: "ff0e::1", srcPort: 1, dstPort: 2 })), null);
  assert.equal(run(p, syn6(S6, "fe80::1", 1, 2)), null);
  assert.equal(drops(counters)["not-for-us"], 2, "multicast and link-local do not cross");
  const bad = syn6(S6, REMOTE6, 1, 2);
  bad[bad.length - 1] ^= 0xff; // the TCP checksum no longer holds
  assert.equal(run(p, bad), null);
  assert.equal(drops(counters)["bad-l4-checksum"], 1);
  const short = syn6(S6, REMOTE6, 1, 2).subarray(0, 30);
  assert.equal(run(p, short), null);
  assert.equal(drops(counters)["truncated"], 1);
});

Deno.test("the IPv4 path drops 240.0.0.0/4, where the IPv6 ids live", async () => {
  const { p, counters } = await setup();
  const pkt = buildTcp({ src: "240.0.0.5", dst: WAN, srcPort: 1, dstPort: 52201, flags: TCP_SYN });
  assert.equal(run(p, pkt), null);
  const to = buildTcp({ src: SERVER, dst: "255.0.0.1", srcPort: 1, dstPort: 80, flags: TCP_SYN });
  assert.equal(run(p, to), null);
  assert.equal(drops(counters)["reserved-address"], 2);
});

Deno.test("without settings.ipv6 IPv6 is dropped as bad-version, as before", async () => {
  const { p, counters } = await setup({ ipv6: null });
  assert.equal(run(p, syn6(S6, REMOTE6, 1, 2)), null);
  assert.equal(drops(counters)["bad-version"], 1);
  assert.equal(p.admission.ids, null);
});

Deno.test("an expired flow lets go of its ids; revocation by any address of the /64", async () => {
  const { p } = await setup();
  await knock6(p, C6);
  assert.ok(run(p, syn6(C6, S6, 50000, 8080)));
  const ids = p.admission.ids!;
  const find = (a: string, plen = 128) => ids.internal(a, plen, 0, false);
  const client = Number(find(C6)!.split(".").reduce((n, b) => n * 256 + Number(b), 0));
  assert.equal(ids.refs(client), 2, "the flow's tuples hold the client");
  p.ct.expire(Math.floor(T0 / 1000) + 7200);
  assert.equal(ids.refs(client), 0);
  assert.equal(p.revoke("2001:db8:209::99", T0), null, "not that prefix's");
  assert.ok(find("2001:db8:203::/64", 64), "the prefix is interned");
  const r = p.revoke("2001:db8:203::abcd", T0 + 1);
  assert.equal(r?.ip, "2001:db8:203::/64");
  assert.equal(run(p, syn6(C6, S6, 50001, 8080), T0 + 2), null, "locked again");
});

Deno.test("IPv6 unlocks and knock state cross a restart as text", async () => {
  const a = await setup();
  await knock6(a.p, C6);
  a.p.admission.flush();
  const saved = a.p.query("unlocks", 10) as import("./messages.ts").UnlockRecord[];
  assert.deepEqual(a.state.map((r) => r.ip), ["2001:db8:203::/64"], "the replay record");
  const b = await setup();
  b.p.restoreUnlocks(saved, T0 + 1000);
  assert.equal(b.p.restoreKnockState(a.state, T0 + 1000), 1);
  assert.ok(run(b.p, syn6(C6B, S6, 50000, 8080), T0 + 2000), "the restored unlock admits");
  await knock6(b.p, C6, T0 + 3000); // the same step again: a replay, no new unlock
  b.p.admission.flush();
  const merged = b.p.mergeUnlocks(
    [{ ...saved[0], ip: "2001:db8:206::/64", lastSeen: T0 + 5000, expiresAt: T0 + 60_000 }],
    T0 + 5000,
  );
  assert.equal(merged, 1);
  assert.ok(run(b.p, syn6("2001:db8:206::7", S6, 50000, 8080), T0 + 6000), "a merged unlock");
  const listed = b.p.query("unlocks", 10) as import("./messages.ts").UnlockRecord[];
  assert.deepEqual(
    listed.map((u) => [u.ip, u.wanAddress]).sort(),
    [["2001:db8:203::/64", WAN6], ["2001:db8:206::/64", WAN6]],
  );
});

Deno.test("a fragmented datagram through a pinhole passes whole; an orphan fragment does not", async () => {
  const { p, counters } = await setup();
  await knock6(p, C6);
  const dgram = buildIpv6Udp({
    src: C6,
    dst: S6,
    srcPort: 5000,
    dstPort: 8080,
    payload: new Uint8Array(3000),
  });
  const frags = fragment6(dgram, 1280, 0x01020304);
  assert.equal(frags.length, 3);
  for (const f of frags) assert.ok(run(p, f), "each fragment");
  const orphan = fragment6(
    buildIpv6Udp({ src: C6, dst: S6, srcPort: 5001, dstPort: 8080, payload: new Uint8Array(3000) }),
    1280,
    0x0a0b0c0d,
  );
  assert.equal(run(p, orphan[1]), null);
  assert.equal(drops(counters)["fragment-orphan"], 1);
  assert.equal(snapshotCounters(counters).stats.fragments, 4);
});

Deno.test("a NAT66 forward's fragments are translated like their first", async () => {
  const { p } = await setup({});
  p.setRules([{ ...NAT66, protocol: "udp" }], []);
  await knock6(p, C6);
  const dgram = buildIpv6Udp({
    src: C6,
    dst: WAN6,
    srcPort: 5000,
    dstPort: 52201,
    payload: new Uint8Array(2000).fill(7),
  });
  const out = fragment6(dgram, 1280, 77).map((f) => run(p, f));
  assert.ok(out.every((f) => f !== null));
  assert.deepEqual(out.map((f) => view(f!).dst), [S6, S6]);
});

Deno.test("a flood of random IPv6 sources neither fills the ids nor evicts held ones", async () => {
  const { p, counters } = await setup({ maxFlows: 256, maxUnlocks: 16 });
  const ids = p.admission.ids!;
  await knock6(p, C6);
  assert.ok(run(p, syn6(C6, S6, 50000, 8080)));
  assert.ok(run(p, syn6(S6, C6, 8080, 50000, TCP_SYN | TCP_ACK)));
  let seed = 1;
  for (let i = 0; i < 20_000; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const src = `2001:db8:${(seed >>> 16).toString(16)}:${(seed & 0xffff).toString(16)}::1`;
    run(p, syn6(src, S6, 1000, 8080), T0 + 1000 * Math.floor(i / 200));
  }
  assert.ok(ids.size <= ids.capacity);
  assert.ok(ids.reclaimed > 0);
  const later = T0 + 1000 * 101;
  const ack = syn6(C6, S6, 50000, 8080, TCP_ACK);
  assert.ok(run(p, ack, later), "the admitted flow still passes");
  assert.ok(run(p, syn6(C6B, S6, 50009, 8080), later), "its unlock still admits");
  assert.equal(drops(counters)["locked"], 20_000);
});

Deno.test("a tracker hands every IPv6 packet to worker 0, whose ids are the only ones", () => {
  const table = ConnTable.createBuffer({ capacity: SETTINGS6.maxFlows, workers: 2 });
  const ring = new HandoffRing(HandoffRing.allocate(1 << 16));
  const gate = Admission.gateBuffers(SETTINGS6, 2);
  const make = (worker: number) => {
    const counters = newCounters(false);
    const p = new Pipeline({
      settings: SETTINGS6,
      forwards: [NAT66],
      openPorts: [PINHOLE],
      counters,
      emit: () => {},
      clock: new ManualClock(T0),
      table: { buffer: table, workers: 2, worker },
      handoff: worker === 0 ? undefined : ring,
      gate: { ...gate, worker },
    });
    return { p, counters };
  };
  const owner = make(0), tracker = make(1);
  assert.equal(tracker.p.admission.ids, null, "a tracker interns nothing");
  const buf = new Uint8Array(65536);
  const drain = () => {
    const out: Uint8Array[] = [];
    for (let len = ring.pop(buf, 0); len >= 0; len = ring.pop(buf, 0)) {
      if (owner.p.processHandoff(ring.kind, ring.arg, ring.value, buf, 0, len, ring.csum, T0)) {
        out.push(buf.slice(0, len));
      }
    }
    return out;
  };
  assert.equal(run(tracker.p, syn6(S6, REMOTE6, 50000, 443)), null, "handed over");
  const sent = drain();
  assert.equal(sent.length, 1);
  assert.equal(view(sent[0]).hopLimit, 65);
  // The reply arrives on the tracker's queue: still worker 0's to judge.
  assert.equal(run(tracker.p, syn6(REMOTE6, S6, 443, 50000, TCP_SYN | TCP_ACK)), null);
  assert.equal(drain().length, 1);
  assert.equal(snapshotCounters(tracker.counters).stats.handed_off_packets, 2);
  assert.equal(snapshotCounters(owner.counters).stats.handoff_received_packets, 2);
});

Deno.test("fuzzed IPv6 packets (odd extension chains, cut, flipped bytes) never throw; each is sent or counted", async () => {
  const { p, counters } = await setup();
  await knock6(p, C6);
  const exts = [
    hopByHopHeader(),
    hopByHopHeader(Uint8Array.of(5, 2, 0, 0)),
    destOptionsHeader(),
    destOptionsHeader(Uint8Array.of(0x1e, 1, 0)),
    routingHeader(2, 0, []),
    routingHeader(0, 1, [toIpv6(REMOTE6)]),
    fragmentHeader(0, false, 9),
    fragmentHeader(8, true, 10),
    authHeader(1, 1),
  ];
  const ends: [string, string][] = [[C6, S6], [S6, REMOTE6], [C6, WAN6], [REMOTE6, S6], [S6, C6]];
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: exts.length - 1 }), { maxLength: 5 }),
      fc.integer({ min: 0, max: ends.length - 1 }),
      fc.integer({ min: 0, max: 3 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.nat(),
      (chain, e, kind, flips, cut) => {
        const [src, dst] = ends[e];
        const ext = chain.map((i) => ({ proto: exts[i].proto, bytes: exts[i].bytes.slice() }));
        const base = { src, dst, ext, srcPort: 40000 + kind, dstPort: 8080 };
        const pkt = kind === 0
          ? buildIpv6Tcp({ ...base, flags: TCP_SYN })
          : kind === 1
          ? buildIpv6Udp(base)
          : kind === 2
          ? buildIcmpv6({ src, dst, ext, type: ICMPV6_ECHO_REQUEST, rest: 0x10001 })
          : buildIcmpv6Error({
            src,
            dst,
            ext,
            type: 1,
            code: 4,
            original: syn6(dst, src, 8080, 1),
          });
        for (const [at, v] of flips) pkt[at % pkt.length] = v;
        const len = flips.length > 0 && cut % 3 === 0 ? cut % (pkt.length + 1) : pkt.length;
        const before = snapshotCounters(counters).stats;
        const buf = pkt.slice(0, len);
        const sent = p.process(buf, 0, len, 0, T0);
        const after = snapshotCounters(counters).stats;
        assert.equal(after.rx_packets - before.rx_packets, 1);
        assert.equal(
          (after.tx_packets - before.tx_packets) + (after.drops - before.drops),
          1,
          "sent or dropped and counted",
        );
        assert.equal(after.tx_packets - before.tx_packets, sent ? 1 : 0);
      },
    ),
    { numRuns: 3000, seed: 20261201 },
  );
});

Deno.test("a penalised IPv6 prefix keeps its id, and its penalty, through a flood of sources", async () => {
  const { p, counters, events } = await setup({ maxFlows: 256, maxUnlocks: 16 });
  const ids = p.admission.ids!;
  // Sequences started and left past the 15 s window: each a failure, the sixth a penalty.
  for (let i = 0; i < 8; i++) run(p, syn6(C6, WAN6, 40000, 41001), T0 + i * 16_000);
  p.admission.flush();
  const penalty = events.find((e) => e.type === "knock-penalty") as { ip: string } | undefined;
  assert.equal(penalty?.ip, "2001:db8:203::/64");
  const key = Number(
    ids.internal(C6, 64, 0, false)!.split(".").reduce((n, b) => n * 256 + Number(b), 0),
  );
  let seed = 7;
  for (let i = 0; i < 5000; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const src = `2001:db8:${(seed >>> 16).toString(16)}:${(seed & 0xffff).toString(16)}::1`;
    run(p, syn6(src, WAN6, 1000, 41001), T0 + 130_000 + 1000 * Math.floor(i / 100));
  }
  assert.ok(ids.reclaimed > 1000);
  assert.ok(ids.slotOf(key) >= 0, "the penalised prefix kept its id");
  const later = T0 + 200_000;
  assert.ok(p.verifier.isPenalised(key, later), "the /64 is still penalised");
  const before = drops(counters)["penalised"] ?? 0;
  // A penalised source gets one attempt now and then (verifier.ts); the next is refused.
  run(p, syn6(C6B, WAN6, 40000, 41001), later);
  run(p, syn6(C6B, WAN6, 40000, 41001), later + 20_000);
  assert.ok(drops(counters)["penalised"] > before, "another address of the /64 is penalised");
  // Once the penalty is over its hold ends with the next housekeeping.
  await p.housekeeping(T0 + 900_000);
  assert.equal(ids.refs(key), 0);
});

const PAIRED = { ...SETTINGS6.ipv6!, pairFamilies: true };

Deno.test("one step knocked over IPv4 then IPv6: a replay unpaired; paired, both open and a third is a replay", async () => {
  const off = await setup();
  await knock4(off.p, CLIENT);
  await knock6(off.p, C6, T0 + 1000);
  assert.equal(
    run(off.p, syn6(C6, S6, 50000, 8080), T0 + 2000),
    null,
    "unpaired: IPv6 stays locked",
  );
  off.p.admission.flush();
  const replay = off.events.filter((e) => e.type === "knock-replay") as {
    ip: string;
    firstIp: string;
  }[];
  assert.deepEqual(replay.map((e) => [e.ip, e.firstIp]), [["2001:db8:203::/64", CLIENT]]);

  const on = await setup({ ipv6: PAIRED });
  await knock4(on.p, CLIENT);
  await knock6(on.p, C6, T0 + 1000);
  assert.ok(run(on.p, syn6(C6, S6, 50000, 8080), T0 + 2000), "paired: the IPv6 knock opens IPv6");
  assert.ok(run(on.p, syn(CLIENT, 5000, 52201), T0 + 2000), "and the IPv4 one IPv4");
  await knock6(on.p, C6OTHER, T0 + 3000);
  assert.equal(
    run(on.p, syn6(C6OTHER, S6, 50001, 8080), T0 + 4000),
    null,
    "a third source is refused",
  );
  on.p.admission.flush();
  const r = on.events.filter((e) => e.type === "knock-replay") as { ip: string; firstIp: string }[];
  assert.deepEqual(r.map((e) => [e.ip, e.firstIp]), [["2001:db8:204::/64", "2001:db8:203::/64"]]);
  // The store gets both halves, the IPv6 one marked and as text; a restart refuses both again.
  const replays = on.state.filter((s) => s.type === "replay");
  assert.deepEqual(replays.map((s) => [s.ip, s.family]), [
    [CLIENT, undefined],
    ["2001:db8:203::/64", 6],
  ]);
  const back = await setup({ ipv6: PAIRED });
  assert.equal(back.p.restoreKnockState(replays, T0 + 5000), 2);
  await knock4(back.p, CLIENT2, T0 + 5000);
  await knock6(back.p, C6OTHER, T0 + 6000);
  assert.equal(run(back.p, syn(CLIENT2, 5001, 52201), T0 + 7000), null);
  assert.equal(run(back.p, syn6(C6OTHER, S6, 50002, 8080), T0 + 7000), null);
});

Deno.test("paired families with fleet claims: the IPv6 half is claimed marked, as its prefix's text", async () => {
  const claims: KnockClaim[] = [];
  const p = new Pipeline({
    settings: { ...SETTINGS6, ipv6: PAIRED },
    forwards: [NAT66, V4],
    openPorts: [PINHOLE],
    counters: newCounters(false),
    emit: () => {},
    clock: new ManualClock(T0),
    knockClaims: true,
    emitClaims: (c) => claims.push(...c),
  });
  await p.setUsers([{
    user: "alice",
    secret: SECRET,
    firstPort: 41001,
    length: 3,
    transport: "any",
  }]);
  await knock4(p, CLIENT);
  await knock6(p, C6, T0 + 100);
  p.afterBatch();
  assert.deepEqual(claims.map((c) => [c.ip, c.family]), [
    [CLIENT, undefined],
    ["2001:db8:203::/64", 6],
  ]);
  p.resolveClaims(claims.map((c) => ({ ...c, result: "granted" as const })), T0 + 200);
  assert.ok(run(p, syn6(C6, S6, 50000, 8080), T0 + 300));
  assert.ok(run(p, syn(CLIENT, 5000, 52201), T0 + 300));
});

Deno.test("after a restart a TCP flow in mid stream is picked up: from the LAN, and from an unlocked prefix through a pinhole or NAT66", async () => {
  const ack = (src: string, dst: string, sport: number, dport: number) =>
    buildIpv6Tcp({
      src,
      dst,
      srcPort: sport,
      dstPort: dport,
      flags: TCP_ACK,
      seq: 5000,
      ack: 7000,
    });
  // A fresh pipeline: no flow, no unlock (the process restarted).
  const cold = await setup();
  assert.equal(run(cold.p, ack(C6, S6, 50000, 8080)), null, "a locked prefix picks up nothing");
  assert.equal(drops(cold.counters)["locked"], 1);
  const out = run(cold.p, ack(S6, REMOTE6, 50001, 443));
  assert.ok(out, "the LAN host's outbound connection goes on");
  assert.ok(run(cold.p, ack(REMOTE6, S6, 443, 50001)), "and its peer's segments match it");
  assert.equal(run(cold.p, ack(S6, C6, 8080, 50000)), null, "a NAT66 server waits for its client");
  assert.equal(drops(cold.counters)["no-flow"], 1);
  assert.equal(snapshotCounters(cold.counters).stats["tcp_picked_up"], 1);

  // The same after the unlock was restored: the client's segment to the pinhole is picked up.
  const warm = await setup();
  await knock6(warm.p, C6);
  assert.ok(run(warm.p, ack(C6, S6, 50002, 8080)), "pinhole: picked up from an unlocked prefix");
  assert.ok(run(warm.p, ack(S6, C6, 8080, 50002)), "the server's answer follows");
  const nat = run(warm.p, ack(C6B, WAN6, 50003, 52201));
  assert.ok(nat, "NAT66: picked up from an unlocked prefix (same /64)");
  assert.equal(view(nat).dst, S6);
  assert.equal(view(nat).dport, 8080);
  assertValid6(nat);
  // A NAT66 server speaking first after the restart is not taken for an outbound flow of its own.
  assert.equal(run(warm.p, ack(S6, C6B, 8080, 50004)), null);
  assert.equal(drops(warm.counters)["no-flow"], 1);
  const back = run(warm.p, ack(S6, C6B, 8080, 50003));
  assert.ok(back, "the picked-up NAT66 flow's reply is translated");
  assert.equal(view(back).src, WAN6);
  assert.equal(view(back).sport, 52201);
  assert.equal(snapshotCounters(warm.counters).stats["tcp_picked_up"], 2);
});

/** A NAT66 forward of both protocols to a server port no pinhole has. */
const NAT66_BOTH: PortForwardRule = {
  ...NAT66,
  name: "nat66-both",
  protocol: "both",
  publicPorts: { start: 52202, end: 52202 },
  privatePorts: { start: 7000, end: 7000 },
};

function udp6(src: string, dst: string, sport: number, dport: number) {
  return buildIpv6Udp({ src, dst, srcPort: sport, dstPort: dport, payload: new Uint8Array(16) });
}

function ack6(src: string, dst: string, sport: number, dport: number) {
  return buildIpv6Tcp({ src, dst, srcPort: sport, dstPort: dport, flags: TCP_ACK, seq: 9, ack: 7 });
}

Deno.test("after a restart a NAT66 server speaking first to an unlocked client starts the forward's flow, translated", async () => {
  const { p, counters } = await setup({}, [NAT66, NAT66_BOTH, V4]);
  await knock6(p, C6);
  // UDP: the server's datagram leaves from the WAN address and public port, as before the restart.
  const out = run(p, udp6(S6, C6B, 7000, 50010));
  assert.ok(out);
  assert.deepEqual([view(out).src, view(out).sport, view(out).dst, view(out).dport], [
    WAN6,
    52202,
    C6B,
    50010,
  ]);
  assertValid6(out);
  const flow = p.flows(10).find((f) => f.origSrcPort === 50010)!;
  assert.deepEqual(
    [flow.origSrc, flow.origDst, flow.origDstPort, flow.replySrc, flow.replySrcPort, flow.rule],
    [C6B, WAN6, 52202, S6, 7000, "nat66-both"],
    "the forward's flow, as the client's first datagram would have made it",
  );
  const back = run(p, udp6(C6B, WAN6, 50010, 52202));
  assert.ok(back, "the client's datagrams match it");
  assert.deepEqual([view(back).dst, view(back).dport], [S6, 7000]);
  assertValid6(back);
  // TCP in mid stream: the same, picked up in its reply direction.
  const seg = run(p, ack6(S6, C6, 7000, 50011));
  assert.ok(seg);
  assert.deepEqual([view(seg).src, view(seg).sport], [WAN6, 52202]);
  assertValid6(seg);
  const ack = run(p, ack6(C6, WAN6, 50011, 52202));
  assert.ok(ack);
  assert.deepEqual([view(ack).dst, view(ack).dport], [S6, 7000]);
  assert.equal(snapshotCounters(counters).stats["tcp_picked_up"], 1);

  // A source the forward would not admit (another /64): nothing opens for it from the WAN.
  const plain = run(p, udp6(S6, C6OTHER, 7000, 50012));
  assert.ok(plain, "a plain LAN-out flow, as before");
  assert.deepEqual([view(plain).src, view(plain).sport], [S6, 7000], "untranslated");
  assert.equal(run(p, udp6(C6OTHER, WAN6, 50012, 52202)), null, "the forward stays locked");
  assert.equal(drops(counters)["locked"], 1);
  assert.equal(run(p, ack6(S6, C6OTHER, 7000, 50013)), null, "TCP waits for its client");
  assert.equal(drops(counters)["no-flow"], 1);
  // Another port of the same host is no forward's: LAN out.
  const other = run(p, udp6(S6, C6B, 7001, 50014));
  assert.ok(other);
  assert.equal(view(other).src, S6);
});

Deno.test("a NAT66 server's datagram: allow-listed clients and rules without knocks count as admitted; ambiguous ones wait", async () => {
  const open = {
    ...NAT66_BOTH,
    name: "open",
    enforceKnock: false,
    privatePorts: { start: 7100, end: 7100 },
    publicPorts: { start: 52300, end: 52300 },
  };
  const manyToOne = {
    ...NAT66_BOTH,
    name: "many",
    privatePorts: { start: 7200, end: 7200 },
    publicPorts: { start: 52400, end: 52409 },
  };
  const nowhere = {
    ...NAT66_BOTH,
    name: "nowhere",
    uplink: "no-such-uplink",
    privatePorts: { start: 7300, end: 7300 },
    publicPorts: { start: 52500, end: 52500 },
  };
  const { p, counters } = await setup({ allow: ["2001:db8:55::/48"] }, [
    NAT66_BOTH,
    open,
    manyToOne,
    nowhere,
  ]);
  const listed = run(p, udp6(S6, REMOTE6, 7000, 50020));
  assert.ok(listed);
  assert.deepEqual([view(listed).src, view(listed).sport], [WAN6, 52202], "allow-listed");
  const free = run(p, udp6(S6, C6, 7100, 50021));
  assert.ok(free);
  assert.deepEqual([view(free).src, view(free).sport], [WAN6, 52300], "a rule without knocks");
  // Ten public ports to one server port: the reply does not tell which the client used.
  assert.equal(run(p, udp6(S6, REMOTE6, 7200, 50022)), null);
  assert.equal(drops(counters)["no-flow"], 1);
  assert.ok(run(p, udp6(REMOTE6, WAN6, 50022, 52405)), "the client's next datagram opens it");
  const back = run(p, udp6(S6, REMOTE6, 7200, 50022));
  assert.ok(back);
  assert.deepEqual([view(back).src, view(back).sport], [WAN6, 52405]);
  const unheard = run(p, udp6(S6, REMOTE6, 7300, 50025));
  assert.ok(unheard, "a forward listening on no address has no flow to answer: LAN out");
  assert.equal(view(unheard).src, S6);

  // A forward on every WAN address of two: which one the client used is unknown.
  const two = await setup({
    uplinks: [{ ...SETTINGS.uplinks[0], addresses6: [WAN6, "2001:db8:198::2"] }],
  }, [NAT66_BOTH]);
  await knock6(two.p, C6);
  assert.equal(run(two.p, udp6(S6, C6, 7000, 50023)), null);
  assert.equal(drops(two.counters)["no-flow"], 1);
  const locked = run(two.p, udp6(S6, C6OTHER, 7000, 50024));
  assert.ok(locked, "to a source no rule admits it is LAN out, as before");
  assert.equal(view(locked).src, S6);
});
