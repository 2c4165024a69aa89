import assert from "node:assert/strict";
import {
  eventMatches,
  eventSummary,
  flowCells,
  flowTranslation,
  formatAgo,
  formatBytes,
  formatCount,
  formatDrift,
  formatDuration,
  formatIn,
  formatPortList,
  formatTime,
  formatWan,
  parsePortList,
  parsePortRange,
  unlockCells,
} from "./_format.js";

Deno.test("format: bytes, counts, durations, times", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(300 * 1024 * 1024), "300 MiB");
  assert.equal(formatCount(1234567), "1,234,567");
  assert.equal(formatDuration(59), "59 s");
  assert.equal(formatDuration(3599), "59 min");
  assert.equal(formatDuration(3900), "1 h 05 min");
  assert.equal(formatDuration(2 * 86400 + 7200), "2 d 2 h");
  assert.equal(formatTime(Date.UTC(2026, 0, 2, 3, 4, 5)), "2026-01-02 03:04:05 UTC");
  assert.equal(formatAgo(1000, 13_000), "12 s ago");
  assert.equal(formatIn(3_600_000, 0), "in 1 h 00 min");
  assert.equal(formatIn(0, 1), "expired");
  assert.deepEqual([-1, 0, 1].map(formatDrift), ["-1", "0", "+1"]);
});

Deno.test("format: port ranges and lists parse what they print", () => {
  assert.deepEqual(parsePortRange("52201"), { start: 52201, end: 52201 });
  assert.deepEqual(parsePortRange(" 52210 - 52219 "), { start: 52210, end: 52219 });
  assert.equal(parsePortRange("70000"), "Port 70000 is out of range 1-65535");
  assert.equal(parsePortRange("20-10"), "The range 20-10 is reversed");
  assert.match(String(parsePortRange("web")), /^Enter a port/);
  const list = parsePortList("tcp 80, udp:5000-5010; both 53, 443");
  assert.deepEqual(list, [
    { protocol: "tcp", ports: { start: 80, end: 80 } },
    { protocol: "udp", ports: { start: 5000, end: 5010 } },
    { protocol: "both", ports: { start: 53, end: 53 } },
    { protocol: "tcp", ports: { start: 443, end: 443 } },
  ]);
  assert.equal(
    formatPortList(list as Exclude<typeof list, string>),
    "tcp 80, udp 5000-5010, both 53, tcp 443",
  );
  assert.equal(parsePortList("tcp 0"), '"tcp 0": Port 0 is out of range 1-65535');
  assert.match(String(parsePortList(" , ")), /^Enter at least one port/);
});

Deno.test("format: events read like the router's log", () => {
  const admitted = {
    type: "flow-admitted",
    time: 0,
    severity: 6,
    proto: 6,
    src: "203.0.113.10",
    srcPort: 42829,
    dst: "198.51.100.1",
    dstPort: 52201,
    privateAddr: "192.0.2.12",
    privatePort: 8080,
    rule: "web",
    user: "alice",
  };
  assert.equal(
    eventSummary(admitted),
    "[Port Unlock] P:6 203.0.113.10:42829->198.51.100.1:52201 #192.0.2.12:8080 rule web user alice",
  );
  const knock = {
    type: "knock-success",
    time: 0,
    severity: 5,
    ip: "203.0.113.10",
    user: "bob",
    drift: -1,
    step: 9,
  };
  assert.equal(eventSummary(knock), "203.0.113.10 unlocked by bob (drift -1)");
  assert.equal(eventSummary({ type: "future-thing", time: 0, severity: 6, a: 1 }), "a=1");
  assert.ok(eventMatches(knock, "BOB"));
  assert.ok(eventMatches(knock, "knock-success"));
  assert.ok(!eventMatches(knock, "alice"));
  assert.ok(eventMatches(knock, "  "));
});

Deno.test("format: table cells of unlocks and flows", () => {
  const now = Date.UTC(2026, 0, 1, 1);
  const cells = unlockCells({
    ip: "203.0.113.10",
    user: "alice",
    wanAddress: "198.51.100.65",
    unlockedAt: now - 60_000,
    lastSeen: now - 5_000,
    expiresAt: now + 3_595_000,
    drift: 1,
    flows: 3,
    bytes: 2048,
  }, now);
  assert.deepEqual(cells.map((c) => c.text), [
    "203.0.113.10",
    "198.51.100.65",
    "alice",
    "2026-01-01 00:59:00 UTC",
    "5 s ago",
    "in 59 min",
    "+1",
    "3",
    "2.0 KiB",
  ]);
  const flow = flowCells({
    proto: 17,
    state: "udp",
    origSrc: "203.0.113.10",
    origSrcPort: 5000,
    origDst: "198.51.100.1",
    origDstPort: 52203,
    replySrc: "192.0.2.12",
    replySrcPort: 7,
    replyDst: "203.0.113.10",
    replyDstPort: 5000,
    packets: 2,
    bytes: 100,
    expiresInSec: 30,
    rule: "udp-echo",
    assured: false,
  });
  assert.deepEqual(flow.slice(0, 4).map((c) => c.text), [
    "UDP",
    "203.0.113.10:5000",
    "198.51.100.1:52203",
    "192.0.2.12:7",
  ]);
});

Deno.test("format: a flow's translation, read from its tuples", () => {
  const flow = {
    proto: 6,
    state: "established",
    origSrc: "192.0.2.12",
    origSrcPort: 40000,
    origDst: "203.0.113.10",
    origDstPort: 443,
    replySrc: "203.0.113.10",
    replySrcPort: 443,
    replyDst: "198.51.100.1",
    replyDstPort: 61000,
    packets: 2,
    bytes: 100,
    expiresInSec: 30,
    rule: null,
    assured: true,
  };
  assert.equal(flowTranslation(flow), "from 198.51.100.1:61000", "masquerade: the new source");
  const plain = { ...flow, replyDst: "192.0.2.12", replyDstPort: 40000 };
  assert.equal(flowTranslation(plain), "-", "a flow NAT left alone");
  const npt = { ...plain, origSrc: "2001:db8:192::12", replyDst: "2001:db8:199:0:fff8::12" };
  npt.origDst = npt.replySrc = "2001:db8:203::10";
  assert.equal(flowTranslation(npt), "from [2001:db8:199:0:fff8::12]:40000", "NPTv6");
});

Deno.test("format: a rule's WAN binding", () => {
  assert.equal(formatWan({ uplink: "all", wanAddress: "all" }), "all");
  assert.equal(formatWan({ uplink: "isp-a", wanAddress: "all" }), "isp-a");
  assert.equal(formatWan({ uplink: "isp-a", wanAddress: "198.51.100.2" }), "isp-a 198.51.100.2");
});
