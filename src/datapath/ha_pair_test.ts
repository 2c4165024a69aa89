/**
 * The two nodes of an HA pair as two pipelines: what one node created, the
 * other takes over in mid stream with the same translation (a port key both
 * hold), and a node whose peer carried its flows meanwhile takes them back
 * once its stale windows are loosened.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { buildTcp, formatIpv4, Ipv4Packet, TCP_ACK, TCP_RST, TCP_SYN } from "../packet/mod.ts";
import type { PortForwardRule } from "../nat/rule.ts";
import { Drop, newCounters, Stat } from "./counters.ts";
import { Pipeline } from "./pipeline.ts";
import { CLIENT, forward, SETTINGS, T0, WAN } from "./_test_fixtures.ts";

const REMOTE = "203.0.113.80";
const OPEN = forward("open", 52300, 80, false);
/** Two nodes' shared key, and another pair's. */
const KEY: [number, number] = [0x1234_5678, 0x9abc_def0];
const OTHER_KEY: [number, number] = [0x0bad_cafe, 0x600d_f00d];

function node(portKey?: [number, number], forwards: PortForwardRule[] = [OPEN]) {
  const counters = newCounters(false);
  const p = new Pipeline({
    settings: SETTINGS,
    forwards,
    openPorts: [],
    counters,
    emit: () => {},
    clock: new ManualClock(T0),
    portKey,
  });
  return { p, counters };
}

interface Leg {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

function seg(leg: Leg, flags: number, seq: number, ack: number, data = 0): Uint8Array {
  return buildTcp({
    src: leg.src,
    dst: leg.dst,
    srcPort: leg.sport,
    dstPort: leg.dport,
    flags,
    seq,
    ack,
    payload: new Uint8Array(data),
  });
}

/** `pkt` through `p`: the translated packet, or null when dropped. */
function run(p: Pipeline, pkt: Uint8Array, now = T0): Leg | null {
  const buf = pkt.slice();
  if (!p.process(buf, 0, buf.length, 0, now)) return null;
  const ip = new Ipv4Packet().bind(buf);
  const l4 = ip.payloadOffset();
  return {
    src: formatIpv4(ip.src()),
    dst: formatIpv4(ip.dst()),
    sport: (buf[l4] << 8) | buf[l4 + 1],
    dport: (buf[l4 + 2] << 8) | buf[l4 + 3],
  };
}

/** A handshake and 100 bytes each way through `p` from `out`; returns the answer leg. */
function connect(p: Pipeline, out: Leg): Leg {
  const first = run(p, seg(out, TCP_SYN, 1000, 0));
  assert.ok(first, "SYN");
  const back: Leg = { src: first.dst, dst: first.src, sport: first.dport, dport: first.sport };
  assert.ok(run(p, seg(back, TCP_SYN | TCP_ACK, 50_000, 1001)), "SYN/ACK");
  assert.ok(run(p, seg(out, TCP_ACK, 1001, 50_001, 100)), "data out");
  assert.ok(run(p, seg(back, TCP_ACK, 50_001, 1101, 100)), "data back");
  assert.ok(run(p, seg(out, TCP_ACK, 1101, 50_101)), "ack");
  return back;
}

/** Two LAN hosts on one source port to one peer: the second is remapped. */
const X: Leg = { src: "192.0.2.50", dst: REMOTE, sport: 43000, dport: 7 };
const Y: Leg = { ...X, src: "192.0.2.51" };
/** A LAN host's port outside the masquerade range (Windows' and macOS's ephemeral ports reach 65535). */
const Z: Leg = { ...X, src: "192.0.2.52", sport: 62000 };

Deno.test("masquerade: a remapped flow keeps its public port on the other node of a pair", () => {
  const a = node(KEY), b = node(KEY);
  const ports = [X, Y, Z].map((leg) => run(a.p, seg(leg, TCP_SYN, 1000, 0))!.sport);
  assert.equal(ports[0], 43000, "the own port while it is free");
  assert.notEqual(ports[1], 43000, "a clash: remapped");
  assert.notEqual(ports[2], 62000, "outside the range: remapped");
  // B never saw the SYNs; the own port's holder comes first (as it would if it spoke first).
  for (const [i, leg] of [X, Y, Z].entries()) {
    const out = run(b.p, seg(leg, TCP_ACK, 5_000, 6_000, 10));
    assert.ok(out, `picked up ${leg.src}`);
    assert.deepEqual(out, { src: WAN, dst: REMOTE, sport: ports[i], dport: 7 });
    // The peer's answer to that port reaches the LAN host.
    const back = run(b.p, seg({ src: REMOTE, dst: WAN, sport: 7, dport: ports[i] }, TCP_ACK, 1, 1));
    assert.deepEqual(back, { src: REMOTE, dst: leg.src, sport: 7, dport: leg.sport });
  }
  assert.equal(b.counters[Stat.PickedUp], 3);
  // Another key probes elsewhere: the port follows from the key, not from the flow alone.
  const c = node(OTHER_KEY);
  run(c.p, seg(X, TCP_SYN, 1000, 0));
  assert.notEqual(run(c.p, seg(Y, TCP_SYN, 1000, 0))!.sport, ports[1]);
});

Deno.test("masquerade: without a key a remapped flow is not picked up (dropped, not reset)", () => {
  const a = node(), b = node();
  run(a.p, seg(X, TCP_SYN, 1000, 0));
  assert.notEqual(run(a.p, seg(Y, TCP_SYN, 1000, 0))!.sport, 43000);
  assert.ok(run(b.p, seg(X, TCP_ACK, 5_000, 6_000, 10)), "the own port is derivable");
  assert.equal(run(b.p, seg(Y, TCP_ACK, 5_000, 6_000, 10)), null);
  assert.equal(run(b.p, seg(Z, TCP_ACK, 5_000, 6_000, 10)), null);
  assert.equal(b.counters[Drop.NoFlow], 2);
  assert.equal(b.counters[Stat.PickedUp], 1);
});

Deno.test("hairpin: a LAN client's flow to a forward is picked up with the port the other node chose", () => {
  const a = node(KEY), b = node(KEY);
  const hairpin: Leg = { src: "192.0.2.50", dst: WAN, sport: 1000, dport: 52300 };
  const first = run(a.p, seg(hairpin, TCP_SYN, 1000, 0))!;
  assert.equal(first.src, WAN, "hidden behind the WAN address");
  const out = run(b.p, seg(hairpin, TCP_ACK, 5_000, 6_000, 10));
  assert.deepEqual(out, first);
  assert.equal(b.counters[Stat.PickedUp], 1);
  // The server's answer reaching a node first is not picked up (nothing names the client).
  const c = node(KEY);
  const reply: Leg = { src: first.dst, dst: WAN, sport: first.dport, dport: first.sport };
  assert.equal(run(c.p, seg(reply, TCP_ACK, 6_000, 5_010)), null);
  assert.equal(c.counters[Drop.NoFlow], 1);
  assert.equal(c.p.ct.size, 0);
});

Deno.test("failback: stale windows drop a flow the peer carried on, until the transition loosens them", () => {
  const a = node(KEY);
  const out: Leg = { src: CLIENT, dst: WAN, sport: 42000, dport: 52300 };
  const back = connect(a.p, out);
  // Meanwhile the peer carried 20 MB each way: both senders are far past A's windows.
  const far = 20_000_000;
  assert.equal(run(a.p, seg(out, TCP_ACK, 1101 + far, 50_101 + far, 1000)), null);
  assert.equal(a.counters[Drop.TcpOutOfWindow], 1);
  assert.equal(a.p.loosenTcp(), 1);
  assert.ok(run(a.p, seg(out, TCP_ACK, 1101 + far, 50_101 + far, 1000)), "client, loosened");
  assert.ok(run(a.p, seg(back, TCP_ACK, 50_101 + far, 2101 + far, 1000)), "server, loosened");
  assert.ok(run(a.p, seg(out, TCP_ACK, 2101 + far, 51_101 + far, 1000)), "fits: strict again");
  // Strict again: an ancient segment and a RST off the exact sequence number do not pass.
  assert.equal(run(a.p, seg(out, TCP_ACK, 1101, 50_101, 1000)), null);
  assert.equal(run(a.p, seg(back, TCP_RST, 50_101 + far + 70_000, 0)), null);
  assert.equal(a.counters[Drop.TcpOutOfWindow], 3);
  assert.equal(a.p.ct.size, 1);
  assert.equal(a.p.flows(1)[0].state, "ESTABLISHED", "never reset");
});
