import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { FLAG_LOCAL, STATUS_ASSURED } from "../conntrack/mod.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import {
  buildTcp,
  formatIpv4,
  Ipv4Packet,
  parseIpv4,
  PROTO_TCP,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
} from "../packet/mod.ts";
import type { PortForwardRule } from "../nat/rule.ts";
import { Drop, newCounters, Stat } from "./counters.ts";
import {
  FlowSnapshots,
  KIND_CHECKPOINT,
  KIND_FINAL,
  markCheckpoint,
  readSnapshotFile,
  snapshotPath,
  writeSnapshotFile,
} from "./flow_snapshot.ts";
import { Pipeline } from "./pipeline.ts";
import { CLIENT, forward, SECRET, SERVER, SETTINGS, T0, WAN } from "./_test_fixtures.ts";

const LAN_HOST = "192.0.2.50", REMOTE = "203.0.113.80";

const WEB = forward("web", 52201, 8080, true), OPEN = forward("open", 52300, 80, false);

async function setup(forwards: PortForwardRule[] = [WEB, OPEN], settings = SETTINGS) {
  const counters = newCounters(false);
  const p = new Pipeline({
    settings,
    forwards,
    openPorts: [],
    counters,
    emit: () => {},
    clock: new ManualClock(T0),
  });
  await p.setUsers([{
    user: "alice",
    secret: SECRET,
    firstPort: 41001,
    length: 3,
    transport: "any",
  }]);
  return { p, counters };
}

function run(p: Pipeline, pkt: Uint8Array, now = T0): Uint8Array | null {
  const buf = pkt.slice();
  return p.process(buf, 0, buf.length, 0, now) ? buf : null;
}

async function knock(p: Pipeline, src: string, now = T0) {
  const seq = await knockSequenceAt(SECRET, Math.floor(now / 1000), 41001, 3);
  for (const port of seq) {
    assert.equal(
      run(p, buildTcp({ src, dst: WAN, srcPort: 40000, dstPort: port, flags: TCP_SYN }), now),
      null,
    );
  }
}

function addrs(pkt: Uint8Array) {
  const ip = new Ipv4Packet().bind(pkt);
  const l4 = ip.payloadOffset();
  return {
    src: formatIpv4(ip.src()),
    dst: formatIpv4(ip.dst()),
    sport: (pkt[l4] << 8) | pkt[l4 + 1],
    dport: (pkt[l4 + 2] << 8) | pkt[l4 + 3],
  };
}

interface Leg {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

/** A TCP segment on `leg` (as it enters the appliance). */
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

/**
 * A handshake and 100 bytes each way through `p`: `out` is the opener's leg,
 * the answers travel the reverse of what `out` became. Returns the answer leg.
 */
function connect(p: Pipeline, out: Leg): Leg {
  const first = run(p, seg(out, TCP_SYN, 1000, 0));
  assert.ok(first, "SYN");
  const a = addrs(first);
  const back: Leg = { src: a.dst, dst: a.src, sport: a.dport, dport: a.sport };
  assert.ok(run(p, seg(back, TCP_SYN | TCP_ACK, 50_000, 1001)), "SYN/ACK");
  assert.ok(run(p, seg(out, TCP_ACK, 1001, 50_001, 100)), "data out");
  assert.ok(run(p, seg(back, TCP_ACK, 50_001, 1101, 100)), "data back");
  assert.ok(run(p, seg(out, TCP_ACK, 1101, 50_101)), "ack");
  return back;
}

const DNAT: Leg = { src: CLIENT, dst: WAN, sport: 42000, dport: 52201 };
const MASQ: Leg = { src: LAN_HOST, dst: REMOTE, sport: 43000, dport: 7 };
const HAIRPIN: Leg = { src: LAN_HOST, dst: WAN, sport: 44000, dport: 52300 };

function handleOf(p: Pipeline, leg: Leg): number {
  return p.ct.lookup(PROTO_TCP, parseIpv4(leg.src)!, leg.sport, parseIpv4(leg.dst)!, leg.dport);
}

Deno.test("a final snapshot restores DNAT, masquerade and hairpin flows with windows, NAT and rules", async () => {
  const { p } = await setup();
  await knock(p, CLIENT);
  const legs = [DNAT, MASQ, HAIRPIN];
  const backs = legs.map((l) => connect(p, l));
  const snap = p.finalSnapshot(T0 + 1000);
  // The rules come back in another order: stable ids differ, names do not.
  const { p: q, counters } = await setup([OPEN, WEB]);
  const r = q.restoreFlows(snap, T0 + 2000);
  assert.deepEqual(r, { restored: 3, skipped: 0, kind: KIND_FINAL, savedAt: (T0 + 1000) / 1000 });
  for (const [i, leg] of legs.entries()) {
    const h1 = handleOf(p, leg), h2 = handleOf(q, leg);
    assert.ok(h2 >= 0 && (h2 & 1) === 0, `flow ${i} is found by its original tuple`);
    const { id: _a, ...want } = p.ct.info(h1 >> 1);
    const { id: _b, ...got } = q.ct.info(h2 >> 1);
    assert.deepEqual({ ...got, ruleId: 0 }, { ...want, ruleId: 0 });
    assert.deepEqual(q.ct.tcpWindow(h2), p.ct.tcpWindow(h1));
    assert.deepEqual(q.ct.tcpWindow(h2 + 1), p.ct.tcpWindow(h1 + 1));
    assert.equal(
      q.admission.ruleName(q.ct.ruleId[h2 >> 1]),
      p.admission.ruleName(p.ct.ruleId[h1 >> 1]),
    );
  }
  assert.deepEqual(q.flows(10).map((f) => f.rule), ["web", null, "open"]);
  // The connections go on without an unlock (established flows never needed one after admission).
  for (const [i, leg] of legs.entries()) {
    const out = run(q, seg(leg, TCP_ACK, 1101, 50_101, 10), T0 + 2000);
    assert.ok(out, `flow ${i} passes after the restore`);
    assert.deepEqual(addrs(out), addrs(run(p, seg(leg, TCP_ACK, 1101, 50_101, 10))!));
    assert.ok(run(q, seg(backs[i], TCP_ACK, 50_101, 1111, 10), T0 + 2000), `flow ${i} answers`);
  }
  // Exact windows: data a gigabyte ahead is still out of window.
  assert.equal(run(q, seg(DNAT, TCP_ACK, 1_000_000_000, 50_111, 10), T0 + 2000), null);
  assert.equal(counters[Drop.TcpOutOfWindow], 1);
});

Deno.test("a checkpoint is taken in slices, holds only assured forwarded flows, and restores loosely", async () => {
  const { p } = await setup();
  connect(p, MASQ);
  // Unassured (a SYN alone) and local (the management interface) flows are left out.
  assert.ok(run(p, seg({ src: LAN_HOST, dst: REMOTE, sport: 43001, dport: 7 }, TCP_SYN, 1, 0)));
  assert.ok(run(p, seg({ src: LAN_HOST, dst: WAN, sport: 43002, dport: 8443 }, TCP_SYN, 1, 0)));
  assert.equal(p.ct.size, 3);
  const snaps = new FlowSnapshots(
    p.ct,
    (id) => p.admission.ruleName(id),
    (n) => p.admission.ruleIdOf(n),
    {
      sliceSlots: 100,
      periodMs: 5000,
    },
  );
  let ticks = 0, snap: Uint8Array | null = null;
  while (snap === null && ticks < 100) snap = snaps.tick(T0 + ticks++ * 100);
  assert.equal(ticks, 11, "1024 slots, 100 a tick");
  assert.equal(snaps.tick(T0 + 1200), null, "the next one waits for its period");
  const { p: q0 } = await setup();
  const empty = new FlowSnapshots(q0.ct, () => null, () => 0, { periodMs: 0 });
  assert.ok(empty.tick(T0), "the first empty checkpoint goes out (it replaces an older file)");
  assert.equal(empty.tick(T0), null, "an idle table is not rewritten");
  const { p: q } = await setup();
  const r = q.restoreFlows(snap!, T0 + 3000);
  assert.equal(r.restored, 1);
  assert.equal(r.kind, KIND_CHECKPOINT);
  q.ct.forEach((id) => {
    assert.equal(q.ct.flags[id] & FLAG_LOCAL, 0);
    assert.notEqual(q.ct.status(id) & STATUS_ASSURED, 0);
  });
  // The connection moved on after the checkpoint: its windows are stale, and a sender passes
  // until one of its segments fits again.
  const back = { src: REMOTE, dst: WAN, sport: 7, dport: 43000 };
  assert.ok(run(q, seg(MASQ, TCP_ACK, 9_000_000, 50_101, 10), T0 + 3000), "far ahead, liberal");
  assert.ok(run(q, seg(back, TCP_ACK, 50_101, 9_000_010), T0 + 3000), "its ack");
  assert.ok(run(q, seg(MASQ, TCP_ACK, 9_000_010, 50_101, 10), T0 + 3000), "in window");
  assert.equal(
    run(q, seg(MASQ, TCP_ACK, 2_000_000_000, 50_101, 10), T0 + 3000),
    null,
    "once in window the checks are strict again",
  );
});

Deno.test("restore skips expired flows and refuses a malformed snapshot", async () => {
  const { p } = await setup();
  connect(p, MASQ);
  const snap = p.finalSnapshot(T0);
  const { p: q } = await setup();
  // Established TCP lives 5 days.
  const r = q.restoreFlows(snap, T0 + 6 * 86400_000);
  assert.deepEqual([r.restored, r.skipped], [0, 1]);
  assert.throws(() => q.restoreFlows(snap.subarray(0, snap.length - 1), T0), /truncated/);
  assert.throws(() => q.restoreFlows(new Uint8Array(40), T0), /not a snapshot/);
  assert.equal(markCheckpoint(snap.slice())[6], KIND_CHECKPOINT);
});

Deno.test("the snapshot file is written atomically, mode 0600, beside the store", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = snapshotPath(`${dir}/knockgate.kv`)!;
    assert.equal(path, `${dir}/knockgate.kv.flows`);
    assert.equal(snapshotPath(":memory:"), null);
    assert.equal(await readSnapshotFile(path), null);
    await writeSnapshotFile(path, new Uint8Array([1, 2, 3]));
    await writeSnapshotFile(path, new Uint8Array([4, 5]));
    assert.deepEqual(await readSnapshotFile(path), new Uint8Array([4, 5]));
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["knockgate.kv.flows"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- loose pickup ------------------------------------------------------------

Deno.test("pickup: a mid-stream segment from the WAN to an open forward is taken as ESTABLISHED", async () => {
  const { p, counters } = await setup();
  const out = run(p, seg({ ...DNAT, dport: 52300 }, TCP_ACK, 7_000_000, 900_000, 50));
  assert.ok(out);
  assert.deepEqual(addrs(out), { src: CLIENT, dst: SERVER, sport: 42000, dport: 80 });
  assert.equal(counters[Stat.PickedUp], 1);
  assert.equal(p.flows(1)[0].state, "ESTABLISHED");
  assert.equal(p.flows(1)[0].rule, "open");
  const back = { src: SERVER, dst: CLIENT, sport: 80, dport: 42000 };
  // Window scaling was never seen: the windows stay liberal, data far apart passes.
  const reply = run(p, seg(back, TCP_ACK, 900_000, 7_000_050, 1000));
  assert.ok(reply);
  assert.deepEqual(addrs(reply), { src: WAN, dst: CLIENT, sport: 52300, dport: 42000 });
  assert.ok(run(p, seg({ ...DNAT, dport: 52300 }, TCP_ACK, 7_500_000, 901_000, 50)));
  assert.equal(p.flows(1)[0].assured, true, "answered: assured");
  assert.equal(counters[Stat.PickedUp], 1);
});

Deno.test("pickup: a knock-enforcing forward picks up only an unlocked source", async () => {
  const { p, counters } = await setup();
  assert.equal(run(p, seg(DNAT, TCP_ACK, 5_000, 6_000, 10)), null);
  assert.equal(counters[Drop.NoFlow], 1);
  assert.equal(p.ct.size, 0);
  await knock(p, CLIENT);
  const out = run(p, seg(DNAT, TCP_ACK, 5_000, 6_000, 10));
  assert.ok(out);
  assert.deepEqual(addrs(out), { src: CLIENT, dst: SERVER, sport: 42000, dport: 8080 });
  assert.equal(counters[Stat.PickedUp], 1);
});

Deno.test("pickup: never a RST or FIN, nor the management port, nor a remapped hairpin", async () => {
  const { p, counters } = await setup();
  const open = { ...DNAT, dport: 52300 };
  assert.equal(run(p, seg(open, TCP_RST | TCP_ACK, 5_000, 6_000)), null);
  assert.equal(run(p, seg(open, TCP_RST, 5_000, 0)), null);
  assert.equal(run(p, seg(open, TCP_FIN | TCP_ACK, 5_000, 6_000)), null);
  assert.equal(run(p, seg({ ...MASQ, dst: WAN, dport: 8443 }, TCP_ACK, 5_000, 6_000)), null);
  // Without a port key a hairpin port outside the range was random: not derivable.
  assert.equal(run(p, seg({ ...HAIRPIN, sport: 1000 }, TCP_ACK, 5_000, 6_000)), null);
  assert.equal(run(p, seg({ ...open, src: CLIENT, dport: 8443 }, TCP_ACK, 1, 1)), null);
  assert.equal(p.ct.size, 0);
  assert.equal(counters[Stat.PickedUp], 0);
  assert.equal(counters[Drop.NoFlow], 6);
});

Deno.test("pickup: masquerade from the LAN keeps its own source port, replies come back", async () => {
  const { p, counters } = await setup();
  const out = run(p, seg(MASQ, TCP_ACK, 5_000, 6_000, 10));
  assert.ok(out);
  assert.deepEqual(addrs(out), { src: WAN, dst: REMOTE, sport: 43000, dport: 7 });
  const back = run(
    p,
    seg({ src: REMOTE, dst: WAN, sport: 7, dport: 43000 }, TCP_ACK, 6_000, 5_010),
  );
  assert.ok(back);
  assert.deepEqual(addrs(back), { src: REMOTE, dst: LAN_HOST, sport: 7, dport: 43000 });
  // A port outside the masquerade range was remapped when the flow began: not derivable.
  assert.equal(run(p, seg({ ...MASQ, sport: 1000 }, TCP_ACK, 5_000, 6_000)), null);
  assert.equal(counters[Stat.PickedUp], 1);
});

Deno.test("pickup: a forward's server answering a WAN client first", async () => {
  const { p, counters } = await setup();
  const back = { src: SERVER, dst: CLIENT, sport: 8080, dport: 42000 };
  assert.equal(run(p, seg(back, TCP_ACK, 6_000, 5_000, 10)), null, "the client is locked");
  await knock(p, CLIENT);
  const reply = run(p, seg(back, TCP_ACK, 6_000, 5_000, 10));
  assert.ok(reply);
  assert.deepEqual(addrs(reply), { src: WAN, dst: CLIENT, sport: 52201, dport: 42000 });
  const h = handleOf(p, DNAT);
  assert.equal(h & 1, 0, "the flow's original tuple is the client's");
  const out = run(p, seg(DNAT, TCP_ACK, 5_000, 6_010, 10));
  assert.ok(out);
  assert.deepEqual(addrs(out), { src: CLIENT, dst: SERVER, sport: 42000, dport: 8080 });
  assert.equal(counters[Stat.PickedUp], 1);
  assert.equal(counters[Stat.FastPath], 1);
});

Deno.test("flows on a second uplink's address restore as they were: the tuples hold the addresses", async () => {
  const B = "198.51.100.65";
  const two = {
    ...SETTINGS,
    uplinks: [
      { name: "isp-a", addresses: [WAN], management: true, probe: null },
      { name: "isp-b", addresses: [B], management: false, probe: null },
    ],
    masquerade: ["isp-b", "isp-a"],
  };
  const { p } = await setup([WEB, OPEN], two);
  const legs: Leg[] = [
    { ...DNAT, dst: B, dport: 52300 },
    MASQ,
    { ...HAIRPIN, dst: B },
  ];
  const backs = legs.map((l) => connect(p, l));
  assert.equal(backs[1].dst, B, "masquerade from isp-b's address");
  assert.equal(backs[2].dst, B, "hairpin hidden behind the address it targeted");
  const { p: q } = await setup([WEB, OPEN], two);
  assert.equal(q.restoreFlows(p.finalSnapshot(T0 + 1000), T0 + 2000).restored, 3);
  for (const [i, back] of backs.entries()) {
    const out = run(q, seg(back, TCP_ACK, 50_101, 1101, 10), T0 + 3000);
    assert.ok(out, `flow ${i} answers after the restore`);
    assert.deepEqual(addrs(out), {
      src: legs[i].dst,
      dst: legs[i].src,
      sport: legs[i].dport,
      dport: legs[i].sport,
    });
  }
});
