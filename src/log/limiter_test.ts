import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { DistinctCounter, TopCounter } from "./_sketch.ts";
import type { ApplianceEvent, LogSummaryEvent } from "./events.ts";
import { formatEvent } from "./format.ts";
import { Logger } from "./logger.ts";
import { MemorySink } from "./sink.ts";
import { formatLine } from "./stdout.ts";

/** A spoofed source in 198.18.0.0/15 for index `i`. */
function spoofed(i: number): string {
  return `198.${18 + ((i >> 16) & 1)}.${(i >> 8) & 255}.${i & 255}`;
}

Deno.test("DistinctCounter estimates within a few percent at any size, in 4 KB", () => {
  for (const n of [1, 10, 1000, 18012, 131072]) {
    const d = new DistinctCounter(12);
    for (let i = 0; i < n; i++) {
      d.add(spoofed(i));
      d.add(spoofed(i)); // repeats do not count
    }
    const err = Math.abs(d.estimate() - n) / n;
    assert.ok(err < 0.06, `n=${n}: estimate ${d.estimate()}`);
  }
});

Deno.test("TopCounter finds the heavy hitters among many one-off keys", () => {
  // Space-Saving keeps every key more frequent than total / capacity (here 1 in 128).
  const t = new TopCounter(128);
  for (let i = 0; i < 50_000; i++) {
    t.add(spoofed(i));
    if (i % 50 === 0) t.add("198.18.0.7");
    if (i % 100 === 0) t.add("198.18.0.9");
  }
  const top = t.top(2);
  assert.deepEqual(top.map((e) => e.key), ["198.18.0.7", "198.18.0.9"]);
  assert.ok(top[0].count >= 1000);
});

Deno.test("Logger: 200k knock failures from many sources become a bounded number of lines", async () => {
  const clock = new ManualClock(Date.UTC(2026, 11, 1, 10, 0, 0));
  const sink = new MemorySink();
  const logger = new Logger({ clock, sinks: [sink], limits: { intervalMs: 10_000, burst: 5 } });
  const flood = 200_000;
  const success = () =>
    logger.record("knock-success", {
      ip: "203.0.113.10",
      user: "alice",
      drift: 0,
      step: 1,
      wan: "198.51.100.1",
    });
  for (let i = 0; i < flood; i++) {
    if (i % 1000 === 0) clock.advance(100); // 200k over 20 s: two intervals
    const ip = i % 50 === 0 ? "198.18.0.7" : spoofed(i);
    logger.record("knock-failure", { ip, reason: i % 10 === 0 ? "window-expired" : "wrong-port" });
    if (i === 150_000) success();
  }
  await logger.close();
  const lines = sink.events.map(formatLine);
  const summaries = sink.events.filter((e): e is LogSummaryEvent => e.type === "log-summary");
  const failures = sink.events.filter((e) => e.type === "knock-failure");
  // Two intervals: 5 in full and one summary each, and the success.
  assert.equal(failures.length, 10);
  assert.equal(summaries.length, 2);
  assert.equal(lines.length, 13);
  assert.equal(summaries.reduce((n, s) => n + s.count, 0), flood);
  assert.ok(sink.events.some((e) => e.type === "knock-success"));
  const [first] = summaries;
  assert.equal(first.kind, "knock-failure");
  assert.equal(first.shown, 5);
  // The one repeated source is named, with a count it certainly reached; one-off sources are not.
  assert.deepEqual(first.top.map((x) => x.ip), ["198.18.0.7"]);
  assert.ok(first.top[0].count >= 1000 && first.top[0].count <= 2100, `${first.top[0].count}`);
  assert.ok(Math.abs(first.sources - first.count * 0.98) / first.count < 0.05, `${first.sources}`);
  assert.deepEqual(Object.keys(first.reasons), ["wrong-port", "window-expired"]);
  assert.match(
    formatEvent(first),
    /^\[Port Knock\] \d+ failures from \d+ sources in 10 s \(wrong-port \d+, window-expired \d+; top: 198\.18\.0\.7 x\d+; 5 shown\)$/,
  );
});

Deno.test("Logger: successes, penalties and config changes are never limited; quiet kinds write nothing extra", async () => {
  const clock = new ManualClock(0);
  const sink = new MemorySink();
  const logger = new Logger({ clock, sinks: [sink], limits: { burst: 2 } });
  for (let i = 0; i < 100; i++) {
    logger.record("knock-success", {
      ip: spoofed(i),
      user: "alice",
      drift: 0,
      step: i,
      wan: "198.51.100.1",
    });
    logger.record("knock-penalty", { ip: spoofed(i), until: 1 });
    logger.record("config-changed", { source: "api", detail: `change ${i}` });
  }
  logger.record("knock-replay", {
    ip: "203.0.113.9",
    user: "alice",
    step: 1,
    firstIp: "203.0.113.8",
  });
  clock.advance(60_000);
  logger.flushSummaries();
  assert.equal(sink.events.length, 301);
  await logger.close();
  assert.equal(sink.events.length, 301, "one replay in full needs no summary");
});

Deno.test("Logger: each limited kind has its own interval; drop summaries add up by reason", async () => {
  const clock = new ManualClock(0);
  const sink = new MemorySink();
  const logger = new Logger({ clock, sinks: [sink], limits: { burst: 1 } });
  for (let i = 0; i < 3; i++) {
    logger.record("knock-replay", {
      ip: spoofed(i),
      user: "alice",
      step: 7,
      firstIp: "203.0.113.8",
    });
    logger.record("packet-drop-summary", {
      intervalMs: 1000,
      drops: { "no-rule": 10, "bad-csum": i },
    });
  }
  clock.advance(10_000);
  logger.flushSummaries();
  const kinds = sink.events.map((e) => e.type === "log-summary" ? `summary:${e.kind}` : e.type);
  assert.deepEqual(kinds, [
    "knock-replay",
    "packet-drop-summary",
    "summary:knock-replay",
    "summary:packet-drop-summary",
  ]);
  const drops = sink.events[3] as LogSummaryEvent;
  assert.equal(drops.count, 33);
  assert.deepEqual(drops.reasons, { "no-rule": 30, "bad-csum": 3 });
  assert.equal(formatEvent(drops), "[Drops] 33 drops in 10 s (no-rule 30, bad-csum 3; 1 shown)");
  assert.match(formatEvent(sink.events[2]), /^\[Port Knock\] 3 replays refused from 3 sources/);
  await logger.close();
});

Deno.test("Logger: the summary is written by a timer when the flood stops", async () => {
  const sink = new MemorySink();
  const logger = new Logger({
    clock: { now: () => Date.now() },
    sinks: [sink],
    limits: { intervalMs: 50, burst: 1 },
  });
  for (let i = 0; i < 10; i++) {
    logger.record("knock-failure", { ip: spoofed(i), reason: "wrong-port" });
  }
  for (let i = 0; i < 100 && !sink.events.some((e) => e.type === "log-summary"); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const summary = sink.events.find((e): e is LogSummaryEvent => e.type === "log-summary");
  assert.equal(summary?.count, 10);
  await logger.close();
});

Deno.test("Logger: a flood of failures leaves the last success in the history", async () => {
  const logger = new Logger({ clock: new ManualClock(0), capacity: 1000 });
  logger.record("knock-success", {
    ip: "203.0.113.10",
    user: "alice",
    drift: 0,
    step: 1,
    wan: "198.51.100.1",
  });
  logger.record("flow-admitted", {
    proto: 6,
    src: "203.0.113.10",
    srcPort: 40000,
    dst: "198.51.100.1",
    dstPort: 52201,
    privateAddr: "192.0.2.12",
    privatePort: 5201,
    rule: "iperf",
  });
  logger.record("config-changed", { source: "api", detail: "rule iperf added" });
  for (let i = 0; i < 200_000; i++) {
    logger.record("knock-failure", { ip: spoofed(i), reason: "wrong-port" });
  }
  const types = (e: ApplianceEvent[]) => e.map((x) => x.type);
  assert.deepEqual(types(logger.recent(Infinity, ["access"])), ["knock-success"]);
  assert.deepEqual(types(logger.recent(Infinity, ["flow"])), ["flow-admitted"]);
  assert.deepEqual(types(logger.recent(Infinity, ["system"])), ["config-changed"]);
  const failures = logger.entries(0, Infinity, ["failure"]);
  assert.ok(failures.length <= 1000);
  // All classes together, oldest first by sequence number.
  const all = logger.entries();
  assert.deepEqual(all.slice(0, 3).map((e) => e.seq), [1, 2, 3]);
  assert.ok(all.every((e, i) => i === 0 || e.seq > all[i - 1].seq));
  await logger.close();
  assert.equal(logger.recent(1)[0].type, "log-summary");
});
