import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import {
  type ApplianceEvent,
  DEFAULT_SEVERITY,
  EVENT_TYPES,
  type EventType,
  makeEvent,
  Severity,
} from "./events.ts";
import { hasControl } from "./escape.ts";
import { formatEvent } from "./format.ts";

const clock = new ManualClock(Date.UTC(2023, 9, 17, 5, 36, 54));

/** One sample of every event type, with the line it must format to. */
const SAMPLES: [ApplianceEvent, string][] = [
  [
    makeEvent(clock, "knock-success", {
      ip: "203.0.113.10",
      user: "alice",
      drift: 0,
      step: 56,
      wan: "198.51.100.65",
    }),
    "[Port Knock] success user=alice ip=203.0.113.10 wan=198.51.100.65 drift=0 step=56",
  ],
  [
    makeEvent(clock, "knock-failure", { ip: "203.0.113.10", reason: "wrong-port" }),
    "[Port Knock] failure ip=203.0.113.10 reason=wrong-port",
  ],
  [
    makeEvent(clock, "knock-replay", {
      ip: "203.0.113.11",
      user: "alice",
      step: 56,
      firstIp: "203.0.113.10",
    }),
    "[Port Knock] replay user=alice ip=203.0.113.11 step=56 first-ip=203.0.113.10",
  ],
  [
    makeEvent(clock, "knock-penalty", {
      ip: "203.0.113.10",
      until: Date.UTC(2023, 9, 17, 5, 46, 54),
    }),
    "[Port Knock] penalty ip=203.0.113.10 until=2023-10-17T05:46:54Z",
  ],
  [
    makeEvent(clock, "unlock-expired", { ip: "203.0.113.10", user: "alice", reason: "idle" }),
    "[Port Lock] ip=203.0.113.10 user=alice reason=idle",
  ],
  [
    makeEvent(clock, "unlock-revoked", { ip: "203.0.113.10", user: "alice", by: "admin" }),
    "[Port Lock] ip=203.0.113.10 user=alice reason=revoked by=admin",
  ],
  [
    makeEvent(clock, "flow-admitted", {
      proto: 6,
      src: "203.0.113.10",
      srcPort: 42829,
      dst: "198.51.100.1",
      dstPort: 52201,
      privateAddr: "192.0.2.12",
      privatePort: 8080,
      rule: "web",
      user: "alice",
    }),
    "[Port Unlock] P:6 203.0.113.10:42829->198.51.100.1:52201 #192.0.2.12:8080",
  ],
  [
    makeEvent(clock, "config-changed", { source: "api", detail: "rule web updated" }),
    '[Config] changed source=api detail="rule web updated"',
  ],
  [
    makeEvent(clock, "clock-unsynchronised", { detail: "no NTP" }),
    '[Clock] unsynchronised detail="no NTP"',
  ],
  [
    makeEvent(clock, "appliance-start", {
      version: "0.1.0",
      wan: "198.51.100.1",
      lan: "192.0.2.1",
    }),
    "[Appliance] start version=0.1.0 wan=198.51.100.1 lan=192.0.2.1",
  ],
  [
    makeEvent(clock, "appliance-stop", { reason: "SIGTERM" }),
    "[Appliance] stop reason=SIGTERM",
  ],
  [
    makeEvent(clock, "packet-drop-summary", {
      intervalMs: 60_000,
      drops: { "bad-checksum": 3, "no-rule": 10, "truncated": 0 },
    }),
    "[Drops] interval=60s bad-checksum=3 no-rule=10",
  ],
  [
    makeEvent(clock, "management-login", {
      ip: "192.0.2.50",
      user: "admin",
      success: false,
      reason: "bad code",
    }),
    '[Management] login failure user=admin ip=192.0.2.50 reason="bad code"',
  ],
  [
    makeEvent(clock, "uplink-down", { uplink: "isp-a", target: "198.51.100.62", lost: 3 }),
    "[Uplink] down uplink=isp-a target=198.51.100.62 lost=3",
  ],
  [
    makeEvent(clock, "uplink-up", { uplink: "isp-a", target: "198.51.100.62", rttMs: 0.4213 }),
    "[Uplink] up uplink=isp-a target=198.51.100.62 rtt-ms=0.4",
  ],
  [
    makeEvent(clock, "uplink-down", {
      uplink: "isp-a",
      family: "ipv6",
      target: "fe80::1",
      lost: 3,
    }),
    "[Uplink] down uplink=isp-a family=ipv6 target=fe80::1 lost=3",
  ],
  [
    makeEvent(clock, "uplink-up", {
      uplink: "isp-a",
      family: "ipv6",
      target: "fe80::1",
      rttMs: 1.26,
    }),
    "[Uplink] up uplink=isp-a family=ipv6 target=fe80::1 rtt-ms=1.3",
  ],
  [
    makeEvent(clock, "log-summary", {
      kind: "knock-failure",
      intervalMs: 10_000,
      count: 18234,
      shown: 5,
      sources: 18012,
      reasons: { "wrong-port": 18000, "window-expired": 234 },
      top: [{ ip: "198.18.0.7", count: 12 }, { ip: "198.18.3.9", count: 4 }],
    }),
    "[Port Knock] 18234 failures from 18012 sources in 10 s (wrong-port 18000, " +
    "window-expired 234; top: 198.18.0.7 x12, 198.18.3.9 x4; 5 shown)",
  ],
];

Deno.test("formatEvent formats every event type", () => {
  const seen = new Set<EventType>();
  for (const [event, line] of SAMPLES) {
    assert.equal(formatEvent(event), line);
    seen.add(event.type);
  }
  assert.deepEqual([...seen].sort(), [...EVENT_TYPES].sort());
});

Deno.test("formatEvent: the flow-admitted line is the router's text exactly", () => {
  const e = makeEvent(clock, "flow-admitted", {
    proto: 17,
    src: "203.0.113.10",
    srcPort: 5000,
    dst: "198.51.100.1",
    dstPort: 52203,
    privateAddr: "192.0.2.12",
    privatePort: 7,
    rule: "udp-echo",
  });
  assert.equal(
    formatEvent(e),
    "[Port Unlock] P:17 203.0.113.10:5000->198.51.100.1:52203 #192.0.2.12:7",
  );
});

Deno.test("formatEvent: optional user, negative drift, quoting, empty drop summary", () => {
  const fail = makeEvent(clock, "knock-failure", {
    ip: "203.0.113.10",
    user: "alice",
    reason: "window expired",
  });
  assert.equal(
    formatEvent(fail),
    '[Port Knock] failure ip=203.0.113.10 user=alice reason="window expired"',
  );
  const drift = makeEvent(clock, "knock-success", {
    ip: "203.0.113.10",
    user: "bob",
    drift: -1,
    step: 7,
    wan: "198.51.100.1",
  });
  assert.match(formatEvent(drift), / drift=-1 step=7$/);
  const empty = makeEvent(clock, "appliance-stop", { reason: "" });
  assert.equal(formatEvent(empty), '[Appliance] stop reason=""');
  const none = makeEvent(clock, "packet-drop-summary", { intervalMs: 10_000, drops: {} });
  assert.equal(formatEvent(none), "[Drops] interval=10s none");
});

Deno.test("makeEvent stamps time and default severity, or the given one", () => {
  const e = makeEvent(clock, "knock-penalty", { ip: "203.0.113.9", until: 1 });
  assert.equal(e.time, clock.now());
  assert.equal(e.severity, DEFAULT_SEVERITY["knock-penalty"]);
  const f = makeEvent(clock, "appliance-stop", { reason: "crash" }, Severity.Critical);
  assert.equal(f.severity, 2);
  assert.deepEqual(f, { type: "appliance-stop", time: clock.now(), severity: 2, reason: "crash" });
});

Deno.test("formatEvent escapes control characters in every value: no value ends or forges a line", () => {
  const user = "admin\n2023-10-17 05:36:54 [Management] login success\u001b[2J\u0000";
  const line = formatEvent(
    makeEvent(clock, "management-login", { ip: "192.0.2.50", user, success: false }),
  );
  assert.equal(
    line,
    '[Management] login failure user="admin\\x0a2023-10-17 05:36:54 [Management] login ' +
      'success\\x1b[2J\\x00" ip=192.0.2.50',
  );
  assert.ok(!hasControl(line));
  assert.equal(
    formatEvent(makeEvent(clock, "knock-failure", { ip: "203.0.113.9", reason: "a\tb\u009bc" })),
    "[Port Knock] failure ip=203.0.113.9 reason=a\\x09b\\x9bc",
  );
});

Deno.test("formatEvent: IPv6 unlocks are their prefix, IPv6 flows bracket each address", () => {
  const knock = makeEvent(clock, "knock-success", {
    ip: "2001:db8:1:2::/64",
    user: "alice",
    wan: "2001:db8:a::1",
    drift: 0,
    step: 56666666,
  });
  assert.equal(
    formatEvent(knock),
    "[Port Knock] success user=alice ip=2001:db8:1:2::/64 wan=2001:db8:a::1 drift=0 step=56666666",
  );
  const flow = makeEvent(clock, "flow-admitted", {
    proto: 58,
    src: "2001:db8:1:2::99",
    srcPort: 0,
    dst: "2001:db8:a::1",
    dstPort: 0,
    privateAddr: "2001:db8:192::12",
    privatePort: 0,
    rule: "ping6",
  });
  assert.equal(
    formatEvent(flow),
    "[Port Unlock] P:58 [2001:db8:1:2::99]:0->[2001:db8:a::1]:0 #[2001:db8:192::12]:0",
  );
  const revoked = makeEvent(clock, "unlock-revoked", {
    ip: "2001:db8:1:2::/64",
    user: "alice",
    by: "admin",
  });
  assert.equal(
    formatEvent(revoked),
    "[Port Lock] ip=2001:db8:1:2::/64 user=alice reason=revoked by=admin",
  );
});
