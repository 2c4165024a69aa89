import assert from "node:assert/strict";
import type { ApplianceEvent } from "../log/events.ts";
import { read16 } from "../packet/mod.ts";
import type { DatapathUplink } from "./messages.ts";
import { PROBE6_LEN, type Probe6Socket, Uplink6Monitor } from "./uplink_probe6.ts";

const probe6 = (target: string) => ({ target, intervalMs: 1000, downAfter: 3, upAfter: 2 });
const UPLINKS: DatapathUplink[] = [
  {
    name: "isp-a",
    addresses: ["198.51.100.1"],
    addresses6: ["2001:db8:a::1"],
    management: false,
    probe: null,
    interface: "wan0",
    probe6: probe6("fe80::1"),
  },
  {
    name: "isp-b",
    addresses: ["198.51.100.65"],
    addresses6: ["2001:db8:b::1"],
    management: false,
    probe: null,
    interface: "wan1",
    probe6: probe6("2001:db8:b::fe"),
  },
  { name: "v4only", addresses: ["203.0.113.77"], management: false, probe: null },
];

/** A socket whose gateway answers (or not) each echo request; replies queue until read. */
class Gateway implements Probe6Socket {
  sent: Uint8Array[] = [];
  queue: Uint8Array[] = [];
  answering = true;
  send(msg: Uint8Array, len: number): number {
    const m = msg.slice(0, len);
    this.sent.push(m);
    if (this.answering) this.queue.push(this.reply(m));
    return len;
  }
  receive(buf: Uint8Array): number {
    const m = this.queue.shift();
    if (m === undefined) return -11; // EAGAIN
    buf.set(m);
    return m.length;
  }
  /** The echo reply to `request` (the kernel checks and fills ICMPv6 checksums). */
  reply(request: Uint8Array): Uint8Array {
    const m = request.slice();
    m[0] = 129;
    return m;
  }
}

function setup() {
  const gw = [new Gateway(), new Gateway()];
  const events: ApplianceEvent[] = [];
  const told: (boolean | null)[][] = [];
  let hr = 0;
  const mon = new Uplink6Monitor({
    uplinks: UPLINKS,
    sockets: [gw[0], gw[1], null],
    emit: (e) => events.push(...e),
    onHealth: (up6) => told.push([...up6]),
    hrNow: () => hr += 0.5,
  });
  return { gw, events, told, mon };
}

Deno.test("probe6: echo requests with the identifier, a new sequence and cookie each", () => {
  const { gw, mon } = setup();
  mon.tick(0);
  mon.tick(1000);
  const [a1, a2] = gw[0].sent;
  assert.equal(a1.length, PROBE6_LEN);
  assert.deepEqual([a1[0], a1[1]], [128, 0]);
  assert.equal(read16(a1, 4), read16(a2, 4), "one identifier per start");
  assert.equal(read16(a2, 6), (read16(a1, 6) + 1) & 0xffff);
  assert.notDeepEqual(a1.slice(8), a2.slice(8), "a new cookie per probe");
  assert.equal(gw[1].sent.length, 2);
  assert.deepEqual(mon.status(0), {
    up: true,
    target: "fe80::1",
    sent: 2,
    received: 1, // the second reply is read at the next tick
    lastRttMs: 1,
    changedAt: 0,
  });
  assert.equal(mon.status(2), null, "an uplink without probe6");
  assert.deepEqual(mon.health(), [true, true, true]);
});

Deno.test("probe6: down after downAfter lost, up after upAfter answered, with family ipv6", () => {
  const { gw, events, told, mon } = setup();
  let t = 0;
  mon.tick(t);
  gw[1].answering = false;
  for (let k = 0; k < 3; k++) mon.tick(t += 1000); // the third loss is counted at the 4th tick
  assert.equal(events.length, 0);
  mon.tick(t += 1000);
  assert.deepEqual(mon.health(), [true, false, true]);
  assert.deepEqual(events.map((e) => [e.type, (e as { family?: string }).family]), [[
    "uplink-down",
    "ipv6",
  ]]);
  assert.deepEqual(events[0], {
    type: "uplink-down",
    time: t,
    severity: events[0].severity,
    uplink: "isp-b",
    family: "ipv6",
    target: "2001:db8:b::fe",
    lost: 3,
  });
  gw[1].answering = true;
  mon.tick(t += 1000); // sends; answered at the next tick
  mon.tick(t += 1000);
  assert.equal(mon.health()[1], false, "one answer is not upAfter");
  mon.tick(t += 1000);
  assert.equal(mon.health()[1], true);
  assert.equal(events[1].type, "uplink-up");
  assert.equal(mon.status(1)!.changedAt, t);
  assert.deepEqual(
    told,
    [[true, false, null], [true, true, null]],
    "each change told, unprobed null",
  );
});

Deno.test("probe6: a reply with the wrong sequence, cookie or type answers nothing", () => {
  const { gw, mon } = setup();
  gw[0].answering = false;
  mon.tick(0);
  const req = gw[0].sent[0];
  const forged = [
    (m: Uint8Array) => m[7] ^= 1, // sequence
    (m: Uint8Array) => m[12] ^= 1, // cookie
    (m: Uint8Array) => m[0] = 128, // a request, not a reply
  ];
  for (const alter of forged) {
    const m = gw[0].reply(req);
    alter(m);
    gw[0].queue.push(m);
  }
  gw[0].queue.push(gw[0].reply(req).slice(0, 12)); // short
  mon.tick(10);
  assert.equal(mon.status(0)!.received, 0);
  gw[0].queue.push(gw[0].reply(req));
  mon.tick(20);
  assert.equal(mon.status(0)!.received, 1);
});

Deno.test("probe6: a socket that did not open loses every probe; no sockets, nothing probed", () => {
  const events: ApplianceEvent[] = [];
  const mon = new Uplink6Monitor({
    uplinks: UPLINKS,
    sockets: [null, null, null],
    emit: (e) => events.push(...e),
  });
  for (let t = 0; t <= 4000; t += 1000) mon.tick(t);
  assert.deepEqual(mon.health(), [false, false, true]);
  assert.equal(mon.status(0)!.received, 0);
  const idle = new Uplink6Monitor({ uplinks: UPLINKS, sockets: null, emit: () => {} });
  idle.tick(0);
  assert.deepEqual([idle.status(0), idle.status(1)], [null, null]);
});
