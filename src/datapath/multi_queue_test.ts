/**
 * Two pipelines over one shared flow table, as two queues' Workers run them:
 * worker 0 admits, worker 1 tracks and hands everything else over its ring.
 * One thread drives both, so every interleaving here is a chosen one (the
 * concurrent cases are conntrack's Worker tests).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ManualClock } from "../clock.ts";
import { ConnTable, TCP_TIME_WAIT } from "../conntrack/mod.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import {
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  formatIpv4,
  ICMP_ECHO_REPLY,
  Ipv4Packet,
  parseIpv4,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
} from "../packet/mod.ts";
import { Drop, DROP_COUNT, dropName, newCounters, Stat } from "./counters.ts";
import { Admission } from "./admission.ts";
import { HandoffRing } from "./handoff.ts";
import { Pipeline } from "./pipeline.ts";
import { CLIENT, CLIENT2, forward, SECRET, SERVER, SETTINGS, T0, WAN } from "./_test_fixtures.ts";

const RULES = [forward("web", 52201, 8080, true)];

async function pair(ringBytes = 1 << 16, settings = SETTINGS, forwards = RULES) {
  const table = ConnTable.createBuffer({ capacity: SETTINGS.maxFlows, workers: 2 });
  const gate = Admission.gateBuffers(settings, 2);
  const ring = new HandoffRing(HandoffRing.allocate(ringBytes));
  const make = (worker: number) => {
    const counters = newCounters(false);
    const p = new Pipeline({
      settings,
      forwards,
      openPorts: [],
      counters,
      emit: () => {},
      clock: new ManualClock(T0),
      table: { buffer: table, workers: 2, worker },
      gate: { ...gate, worker },
      handoff: worker === 0 ? undefined : ring,
    });
    return { p, counters };
  };
  const owner = make(0);
  await owner.p.setUsers([{
    user: "alice",
    secret: SECRET,
    firstPort: 41001,
    length: 3,
    transport: "any",
  }]);
  return { owner, tracker: make(1), ring };
}

/** Runs `pkt` through `p`; the rewritten copy, or null when not sent from there. */
function run(p: Pipeline, pkt: Uint8Array, now = T0): Uint8Array | null {
  const buf = pkt.slice();
  return p.process(buf, 0, buf.length, 0, now) ? buf : null;
}

/** Worker 0 takes every record of `ring`; the packets it sends on. */
function drain(ring: HandoffRing, owner: Pipeline, now = T0): Uint8Array[] {
  const out: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (let len = ring.pop(buf, 0); len >= 0; len = ring.pop(buf, 0)) {
    if (owner.processHandoff(ring.kind, ring.arg, ring.value, buf, 0, len, ring.csum, now)) {
      out.push(buf.slice(0, len));
    }
  }
  return out;
}

function tcp(src: string, dst: string, sport: number, dport: number, flags: number, seq = 1000) {
  return buildTcp({ src, dst, srcPort: sport, dstPort: dport, flags, seq, ack: 1, window: 64240 });
}

function dst(pkt: Uint8Array): string {
  return formatIpv4(new Ipv4Packet().bind(pkt).dst());
}

Deno.test("a knock split over two queues unlocks; the tracker hands the SYN over", async () => {
  const { owner, tracker, ring } = await pair();
  const seq = await knockSequenceAt(SECRET, Math.floor(T0 / 1000), 41001, 3);
  // The knocks alternate between the tracker and worker 0: each ring drain keeps their order.
  seq.forEach((port, i) => {
    assert.equal(run(i % 2 ? owner.p : tracker.p, tcp(CLIENT, WAN, 40000, port, TCP_SYN)), null);
    assert.deepEqual(drain(ring, owner.p), []);
  });
  await owner.p.housekeeping(T0);
  assert.deepEqual(owner.p.unlocks.list().map((u) => u.ip), [CLIENT]);

  assert.equal(run(tracker.p, tcp(CLIENT, WAN, 42829, 52201, TCP_SYN)), null, "handed over");
  const sent = drain(ring, owner.p);
  assert.equal(sent.length, 1);
  assert.equal(dst(sent[0]), SERVER);
  const viaTracker = Math.ceil(seq.length / 2) + 1;
  assert.equal(tracker.counters[Stat.HandedOff], viaTracker);
  assert.equal(owner.counters[Stat.HandoffReceived], viaTracker);
  assert.equal(owner.counters[Stat.FlowsAdmittedByKnock], 1);

  // The reply reaches worker 0, the client's ACK the tracker: both forward from the shared table.
  const synAck = run(owner.p, tcp(SERVER, CLIENT, 8080, 42829, TCP_SYN | TCP_ACK, 5000));
  assert.ok(synAck);
  assert.equal(formatIpv4(new Ipv4Packet().bind(synAck).src()), WAN);
  const ack = run(tracker.p, tcp(CLIENT, WAN, 42829, 52201, TCP_ACK, 1001));
  assert.ok(ack, "the tracker forwards the flow worker 0 created");
  assert.equal(dst(ack), SERVER);
  assert.equal(tracker.counters[Stat.FastPath], 1);
  assert.equal(owner.p.ct.size, 1);
});

Deno.test("a locked source's SYNs through a tracker are dropped there, counted as worker 0 counts them", async () => {
  const { owner, tracker, ring } = await pair();
  for (let i = 0; i < 10; i++) {
    assert.equal(run(tracker.p, tcp(CLIENT2, WAN, 30000 + i, 52201, TCP_SYN)), null);
    assert.equal(run(tracker.p, tcp(CLIENT2, WAN, 30000 + i, 2222, TCP_SYN)), null);
  }
  assert.deepEqual(drain(ring, owner.p), []);
  assert.equal(tracker.counters[Drop.Locked], 10);
  assert.equal(tracker.counters[Drop.NoRule], 10);
  assert.equal(tracker.counters[Stat.Drops], 20);
  assert.equal(tracker.counters[Stat.HandedOff], 0);
  assert.equal(owner.counters[Stat.HandoffReceived], 0);
  assert.equal(owner.p.ct.size, 0);
  // A knock port (the first port, the derived range) and a mid-stream ACK go to worker 0.
  assert.equal(run(tracker.p, tcp(CLIENT2, WAN, 30000, 41001, TCP_SYN)), null);
  assert.equal(run(tracker.p, tcp(CLIENT2, WAN, 30000, 20000, TCP_SYN)), null);
  assert.equal(run(tracker.p, tcp(CLIENT2, WAN, 30000, 52201, TCP_ACK)), null);
  assert.equal(tracker.counters[Stat.HandedOff], 3);
  drain(ring, owner.p);
  assert.equal(owner.counters[Drop.Knock], 1);
  assert.equal(owner.counters[Drop.NoRule], 1);
  assert.equal(owner.counters[Drop.NoFlow], 1);
});

Deno.test("a SYN reopening a finished flow on a tracker is judged again by worker 0", async () => {
  const { owner, tracker, ring } = await pair();
  owner.p.setSettings({ ...SETTINGS, allow: [`${CLIENT}/32`] });
  tracker.p.setSettings({ ...SETTINGS, allow: [`${CLIENT}/32`] });
  const steps: [Pipeline, Uint8Array][] = [
    [owner.p, tcp(CLIENT, WAN, 42000, 52201, TCP_SYN, 1000)],
    [owner.p, tcp(SERVER, CLIENT, 8080, 42000, TCP_SYN | TCP_ACK, 5000)],
    [tracker.p, tcp(CLIENT, WAN, 42000, 52201, TCP_ACK, 1001)],
    [tracker.p, tcp(CLIENT, WAN, 42000, 52201, TCP_FIN | TCP_ACK, 1001)],
    [owner.p, tcp(SERVER, CLIENT, 8080, 42000, TCP_FIN | TCP_ACK, 5001)],
    [tracker.p, tcp(CLIENT, WAN, 42000, 52201, TCP_ACK, 1002)],
  ];
  for (const [p, pkt] of steps) assert.ok(run(p, pkt), "handshake and close");
  const flow = owner.p.ct.snapshot(10)[0];
  assert.equal(owner.p.ct.tcpState(flow.id), TCP_TIME_WAIT);
  // The now locked-down source (allow-list emptied) reuses the tuple through the tracker.
  owner.p.setSettings(SETTINGS);
  tracker.p.setSettings(SETTINGS);
  assert.equal(run(tracker.p, tcp(CLIENT, WAN, 42000, 52201, TCP_SYN, 90000)), null);
  // A second SYN before worker 0 judged the first still meets TIME_WAIT: handed over too.
  assert.equal(owner.p.ct.tcpState(flow.id), TCP_TIME_WAIT, "the tracker left the state alone");
  assert.equal(run(tracker.p, tcp(CLIENT, WAN, 42000, 52201, TCP_SYN, 90000)), null);
  assert.deepEqual(drain(ring, owner.p), [], "worker 0 refuses both");
  assert.equal(owner.counters[Drop.Locked], 2);
  // A retransmission finds no flow (worker 0 killed it): the tracker refuses it itself.
  assert.equal(run(tracker.p, tcp(CLIENT, WAN, 42000, 52201, TCP_SYN, 90000)), null);
  assert.deepEqual(drain(ring, owner.p), []);
  assert.equal(owner.counters[Drop.Locked], 2);
  assert.equal(tracker.counters[Drop.Locked], 1);
});

Deno.test("a gated flow's packets on a tracker keep its unlock alive at worker 0", async () => {
  const { owner, tracker, ring } = await pair();
  const seq = await knockSequenceAt(SECRET, Math.floor(T0 / 1000), 41001, 3);
  for (const port of seq) run(owner.p, tcp(CLIENT, WAN, 40000, port, TCP_SYN));
  await owner.p.housekeeping(T0);
  assert.ok(run(owner.p, buildUdp({ src: CLIENT, dst: WAN, srcPort: 5000, dstPort: 52201 })));
  const later = T0 + 30_000;
  const out = run(
    tracker.p,
    buildUdp({ src: CLIENT, dst: WAN, srcPort: 5000, dstPort: 52201 }),
    later,
  );
  assert.ok(out, "the tracker forwards the gated flow");
  assert.deepEqual(drain(ring, owner.p, later), []);
  const u = owner.p.unlocks.list().find((x) => x.ip === CLIENT);
  assert.equal(u?.lastSeen, later, "the refresh reached worker 0's unlock table");
  assert.equal(tracker.counters[Stat.HandedOff], 0, "without a handoff");
});

Deno.test("a full handoff ring drops and counts; nothing half-written reaches worker 0", async () => {
  const { owner, tracker, ring } = await pair(4096);
  let dropped = 0;
  // SYNs to the derived knock range: only worker 0's verifier may judge them.
  for (let i = 0; i < 200; i++) {
    run(tracker.p, tcp(CLIENT2, WAN, 20000 + i, 20000 + i, TCP_SYN));
    dropped = tracker.counters[Drop.HandoffFull];
  }
  assert.ok(dropped > 0, "the ring filled");
  assert.equal(tracker.counters[Stat.HandedOff] + dropped, 200);
  drain(ring, owner.p);
  assert.equal(owner.counters[Stat.HandoffReceived], tracker.counters[Stat.HandedOff]);
  assert.equal(owner.counters[Drop.NoRule], tracker.counters[Stat.HandedOff]);
});

/** The drop reason whose counter `after` raised over `before`, or 0 (none, or a handoff). */
function dropped(before: Float64Array, after: Float64Array): number {
  for (let r = 1; r < DROP_COUNT; r++) if (after[r] > before[r]) return r;
  return 0;
}

const ALLOWED = "203.0.113.50", KNOCKER = "203.0.113.60";
const SOURCES = [CLIENT, CLIENT2, ALLOWED, KNOCKER, SERVER, "192.0.2.77", "198.18.0.0"];
const DESTINATIONS = [WAN, WAN, WAN, "198.51.100.77", "192.0.2.1", SERVER];
const FLAGS = [TCP_SYN, TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK, TCP_RST, TCP_FIN | TCP_ACK];

const packetArb = fc.record({
  src: fc.nat(SOURCES.length - 1),
  spoof: fc.nat(0x1ffff),
  dst: fc.nat(DESTINATIONS.length - 1),
  proto: fc.constantFrom("tcp", "udp", "icmp", "icmp-reply"),
  flags: fc.nat(FLAGS.length - 1),
  sport: fc.integer({ min: 1, max: 65535 }),
  port: fc.oneof(fc.nat(13), fc.integer({ min: 1, max: 65535 }).map((p) => -p)),
  dtMs: fc.nat(4000),
});

Deno.test("property: whatever a tracker drops itself, worker 0 drops for the same reason, its verifier unmoved", async () => {
  const step = Math.floor(T0 / 1000);
  const derived = await knockSequenceAt(SECRET, step, 41001, 3);
  // Forwards: gated, open, gated for bob only; the management port, knock and derived ports.
  const ports = [52201, 52202, 52203, 8443, 41001, 41002, ...derived.slice(1), 22, 16384, 32767];
  const forwards = [
    forward("web", 52201, 8080, true),
    forward("open", 52202, 8081, false),
    { ...forward("bob", 52203, 8082, true), users: ["bob"] },
  ];
  const settings = { ...SETTINGS, allow: [`${ALLOWED}/32`] };
  let decided = 0;
  const reasons = new Set<string>();
  await fc.assert(
    fc.asyncProperty(fc.array(packetArb, { minLength: 40, maxLength: 80 }), fc.boolean(), async (
      pkts,
      mgmtNever,
    ) => {
      const s = mgmtNever ? { ...settings, managementWanAccess: "never" as const } : settings;
      const { owner, tracker, ring } = await pair(1 << 16, s, forwards);
      let now = T0;
      owner.p.unlocks.unlock(parseIpv4(CLIENT)!, "alice", 0, now);
      // A sequence in progress: strays from it meet the tracker too.
      run(owner.p, tcp(KNOCKER, WAN, 40000, 41001, TCP_SYN), now);
      const discard = new Uint8Array(65536);
      for (const k of pkts) {
        now += k.dtMs;
        const src = k.src === 6 ? formatIpv4((0xc6120000 + k.spoof) >>> 0) : SOURCES[k.src];
        const dst = DESTINATIONS[k.dst];
        const port = k.port >= 0 ? ports[k.port % ports.length] : -k.port;
        const pkt = k.proto === "tcp"
          ? tcp(src, dst, k.sport, port, FLAGS[k.flags])
          : k.proto === "udp"
          ? buildUdp({ src, dst, srcPort: k.sport, dstPort: port })
          : buildIcmpEcho({
            src,
            dst,
            ident: k.sport,
            seq: 1,
            type: k.proto === "icmp" ? undefined : ICMP_ECHO_REPLY,
          });
        const t0 = tracker.counters.slice(), o0 = owner.counters.slice();
        run(tracker.p, pkt, now);
        while (ring.pop(discard, 0) >= 0); // worker 0 judges every packet below anyway
        const t = dropped(t0, tracker.counters);
        const handed = tracker.counters[Stat.HandedOff] > t0[Stat.HandedOff];
        // A sequence past its window ends at the next sweep (a failure), if no packet ends it first.
        owner.p.verifier.sweep(now);
        const knockStats = JSON.stringify(owner.p.verifier.stats);
        const seqs = owner.p.verifier.inProgress;
        const ownerSent = run(owner.p, pkt, now);
        if (t === 0 || handed) continue;
        decided++;
        reasons.add(dropName(t));
        // Nor would the verifier have seen anything in it (no stray of a sequence in progress).
        assert.equal(JSON.stringify(owner.p.verifier.stats), knockStats);
        assert.equal(owner.p.verifier.inProgress, seqs);
        const o = dropped(o0, owner.counters);
        assert.equal(ownerSent, null, `worker 0 sent what the tracker dropped (${dropName(t)})`);
        assert.equal(
          dropName(o),
          dropName(t),
          `${k.proto} ${src} -> ${dst}:${port} flags ${FLAGS[k.flags]} at +${now - T0} ms`,
        );
      }
    }),
    { numRuns: 60 },
  );
  assert.ok(decided > 100, `the trackers decided ${decided} packets`);
  assert.deepEqual([...reasons].sort(), ["locked", "no-rule"]);
});
