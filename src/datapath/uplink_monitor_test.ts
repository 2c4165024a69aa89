import assert from "node:assert/strict";
import type { ApplianceEvent } from "../log/events.ts";
import { internetChecksum, parseIpv4, read16, write16 } from "../packet/mod.ts";
import type { DatapathUplink } from "./messages.ts";
import { PROBE_LEN, type ProbeSender, UplinkMonitor } from "./uplink_monitor.ts";

const A = "198.51.100.1", GW_A = "198.51.100.62", B = "198.51.100.65", GW_B = "198.51.100.126";
const probe = (target: string) => ({ target, intervalMs: 1000, downAfter: 3, upAfter: 2 });
const UPLINKS: DatapathUplink[] = [
  { name: "isp-a", addresses: [A, "198.51.100.2"], management: true, probe: probe(GW_A) },
  { name: "isp-b", addresses: [B], management: false, probe: probe(GW_B) },
  { name: "static", addresses: ["203.0.113.77"], management: false, probe: null },
];

/** Records every probe sent, as a copy, with the uplink and target. */
class RecordingSender implements ProbeSender {
  sent: { uplink: number; msg: Uint8Array; target: number }[] = [];
  send(uplink: number, msg: Uint8Array, len: number, target: number): number {
    this.sent.push({ uplink, msg: msg.slice(0, len), target });
    return len;
  }
  /** The last probe sent on `uplink`. */
  last(uplink: number): Uint8Array {
    const s = this.sent.filter((p) => p.uplink === uplink);
    return s[s.length - 1].msg;
  }
}

/** The echo reply a gateway sends to `request`, optionally altered before the checksum. */
function replyTo(request: Uint8Array, alter: (m: Uint8Array) => void = () => {}): Uint8Array {
  const m = request.slice();
  m[0] = 0;
  alter(m);
  write16(m, 2, 0);
  write16(m, 2, internetChecksum(m, 0, m.length));
  return m;
}

function setup() {
  const sender = new RecordingSender();
  const events: ApplianceEvent[] = [];
  const health: boolean[][] = [];
  let hr = 0;
  const mon = new UplinkMonitor({
    uplinks: UPLINKS,
    sender,
    emit: (e) => events.push(...e),
    onHealth: (up) => health.push([...up]),
    hrNow: () => hr,
  });
  const advance = (ms: number) => hr += ms;
  /** The gateway of `uplink` answers its last probe after `rtt` ms; whether it was consumed. */
  const answer = (
    uplink: number,
    now: number,
    alter?: (m: Uint8Array) => void,
    src?: string,
    rtt = 0.4,
  ) => {
    advance(rtt);
    const r = replyTo(sender.last(uplink), alter);
    const from = parseIpv4(src ?? (uplink === 0 ? GW_A : GW_B))!;
    return mon.onReply(r, 0, r.length, from, parseIpv4(uplink === 0 ? A : B)!, now);
  };
  return { mon, sender, events, health, answer };
}

Deno.test("one well-formed echo per probed uplink per interval, a new cookie each", () => {
  const { mon, sender } = setup();
  mon.tick(0);
  mon.tick(500);
  mon.tick(999);
  assert.deepEqual(sender.sent.map((p) => p.uplink), [0, 1]);
  mon.tick(1000);
  mon.tick(2000);
  const a = sender.sent.filter((p) => p.uplink === 0);
  assert.equal(a.length, 3);
  for (const [k, p] of a.entries()) {
    assert.equal(p.msg.length, PROBE_LEN);
    assert.equal(p.target, parseIpv4(GW_A));
    assert.equal(p.msg[0], 8, "echo request");
    assert.equal(internetChecksum(p.msg, 0, PROBE_LEN), 0);
    assert.equal(read16(p.msg, 4), read16(a[0].msg, 4), "one identifier per start");
    assert.equal(read16(p.msg, 6), k + 1, "sequence");
  }
  assert.notDeepEqual(a[0].msg.slice(8), a[1].msg.slice(8), "cookie per probe");
  assert.ok(sender.sent.every((p) => p.uplink !== 2), "no probe without a probe configured");
});

Deno.test("downAfter lost probes take an uplink down, upAfter answers bring it back", () => {
  const { mon, events, health, answer } = setup();
  let t = 0;
  const step = () => {
    mon.tick(t);
    answer(1, t, undefined, undefined, 0); // isp-b stays up throughout
    const now = t;
    t += 1000;
    return now;
  };
  // Answered, then two losses and an answer: the losses were not consecutive enough.
  assert.ok(answer(0, step()));
  step();
  step();
  assert.ok(answer(0, step()));
  assert.equal(events.length, 0);
  // Three in a row: down at the tick that finds the third unanswered.
  step();
  step();
  step();
  assert.equal(events.length, 0);
  const downAt = step();
  assert.deepEqual(events.map((e) => e.type), ["uplink-down"]);
  assert.deepEqual(events[0], {
    type: "uplink-down",
    time: downAt,
    severity: 4,
    uplink: "isp-a",
    target: GW_A,
    lost: 3,
  });
  assert.deepEqual(health, [[false, true, true]]);
  assert.equal(mon.status(0)[0].up, false);
  // One answer then a loss: still down (upAfter 2 in a row).
  assert.ok(answer(0, downAt + 1));
  step();
  assert.equal(mon.status(0)[0].up, false);
  const now = step();
  assert.ok(answer(0, now + 1));
  assert.equal(mon.status(0)[0].up, false);
  const upAt = step();
  assert.ok(answer(0, upAt + 1));
  assert.equal(mon.status(0)[0].up, true);
  const up = events[events.length - 1];
  assert.equal(up.type, "uplink-up");
  assert.deepEqual(up, {
    type: "uplink-up",
    time: upAt + 1,
    severity: 5,
    uplink: "isp-a",
    target: GW_A,
    rttMs: 0.4,
  });
  assert.equal(mon.status(0)[0].changedAt, upAt + 1);
});

Deno.test("each uplink's health is its own; status names the uplink masquerade uses", () => {
  const { mon, answer } = setup();
  for (let t = 0; t <= 3000; t += 1000) {
    mon.tick(t);
    answer(1, t);
  }
  assert.deepEqual(mon.health(), [false, true, true]);
  // Which uplink masquerade takes is admission's choice (admission_test); status shows it.
  assert.deepEqual(mon.status(1).map((s) => s.masquerade), [false, true, false]);
  for (let t = 4000; t <= 7000; t += 1000) mon.tick(t);
  assert.deepEqual(mon.health(), [false, false, true]);
});

Deno.test("replies with a wrong cookie, identifier, sequence, source or destination are not ours", () => {
  const { mon, sender, answer } = setup();
  mon.tick(0);
  assert.equal(answer(0, 1, (m) => m[15] ^= 1), false, "cookie");
  assert.equal(answer(0, 1, (m) => m[4] ^= 1), false, "identifier");
  assert.equal(answer(0, 1, (m) => write16(m, 6, 7)), false, "sequence");
  assert.equal(answer(0, 1, undefined, "203.0.113.10"), false, "source");
  assert.equal(answer(1, 1, undefined, GW_A), false, "another uplink's target");
  const r = replyTo(sender.last(0));
  assert.equal(mon.onReply(r, 0, r.length, parseIpv4(GW_A)!, parseIpv4(B)!, 1), false, "dst");
  assert.equal(mon.onReply(r, 0, 8, parseIpv4(GW_A)!, parseIpv4(A)!, 1), false, "truncated");
  assert.equal(answer(0, 1), true, "the real one");
  assert.equal(answer(0, 1), false, "a duplicate");
  // The previous probe's answer, late, is not this one's.
  mon.tick(1000);
  const stale = replyTo(sender.sent[0].msg);
  assert.equal(mon.onReply(stale, 0, stale.length, parseIpv4(GW_A)!, parseIpv4(A)!, 1001), false);
  const st = mon.status(0)[0];
  assert.equal(st.sent, 2);
  assert.equal(st.received, 1);
});

Deno.test("status: probe counts, round trip, and an unprobed uplink always up", () => {
  const { mon, answer } = setup();
  assert.deepEqual(mon.status(0)[2], {
    name: "static",
    up: true,
    probing: false,
    target: null,
    sent: 0,
    received: 0,
    lastRttMs: null,
    changedAt: 0,
    masquerade: false,
  });
  mon.tick(0);
  answer(0, 0);
  assert.deepEqual(mon.status(0)[0], {
    name: "isp-a",
    up: true,
    probing: true,
    target: GW_A,
    sent: 1,
    received: 1,
    lastRttMs: 0.4,
    changedAt: 0,
    masquerade: true,
  });
});

Deno.test("without a sender nothing is probed and every uplink stays up", () => {
  const events: ApplianceEvent[] = [];
  const mon = new UplinkMonitor({
    uplinks: UPLINKS,
    sender: null,
    emit: (e) => events.push(...e),
    onHealth: () => assert.fail("no change"),
  });
  for (let t = 0; t < 10_000; t += 1000) mon.tick(t);
  assert.deepEqual(mon.health(), [true, true, true]);
  assert.ok(mon.status(0).every((s) => !s.probing && s.sent === 0));
  assert.equal(events.length, 0);
});
