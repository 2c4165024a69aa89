import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import type { ApplianceEvent } from "./events.ts";
import { Logger } from "./logger.ts";
import { type LogSink, MemorySink } from "./sink.ts";

function stop(logger: Logger, n: number): void {
  logger.record("appliance-stop", { reason: `r${n}` });
}

function reasons(events: ApplianceEvent[]): string[] {
  return events.map((e) => (e.type === "appliance-stop" ? e.reason : "?"));
}

Deno.test("Logger fans events to every sink, stamped by the clock", async () => {
  const clock = new ManualClock(1000);
  const a = new MemorySink();
  const b = new MemorySink();
  const logger = new Logger({ clock, sinks: [a] });
  logger.addSink(b);
  const e = logger.record("knock-penalty", { ip: "203.0.113.5", until: 2000 });
  assert.equal(e.time, 1000);
  assert.deepEqual(a.events, [e]);
  assert.deepEqual(b.events, [e]);
  await logger.close();
  assert.ok(a.closed && b.closed);
});

Deno.test("Logger ring buffer keeps only the last `capacity` events, oldest first", () => {
  const logger = new Logger({ clock: new ManualClock(), capacity: 3 });
  assert.deepEqual(logger.recent(), []);
  stop(logger, 1);
  stop(logger, 2);
  assert.deepEqual(reasons(logger.recent()), ["r1", "r2"]);
  for (let i = 3; i <= 7; i++) stop(logger, i);
  assert.equal(logger.capacity, 3);
  assert.equal(logger.lastSeq, 7);
  assert.deepEqual(reasons(logger.recent()), ["r5", "r6", "r7"]);
  assert.deepEqual(reasons(logger.recent(2)), ["r6", "r7"]);
  assert.deepEqual(reasons(logger.recent(10)), ["r5", "r6", "r7"]);
  assert.deepEqual(logger.entries(5).map((e) => e.seq), [6, 7]);
  assert.deepEqual(logger.entries(0).map((e) => e.seq), [5, 6, 7]);
  assert.deepEqual(logger.entries(0, 1).map((e) => e.seq), [5]);
  assert.deepEqual(logger.entries(7), []);
  assert.throws(() => new Logger({ clock: new ManualClock(), capacity: 0 }), RangeError);
});

Deno.test("Logger subscribers see live events until they unsubscribe", () => {
  const logger = new Logger({ clock: new ManualClock() });
  const seen: number[] = [];
  const off = logger.subscribe((_e, seq) => seen.push(seq));
  stop(logger, 1);
  stop(logger, 2);
  off();
  stop(logger, 3);
  assert.deepEqual(seen, [1, 2]);
});

Deno.test("Logger isolates a throwing sink or listener", () => {
  const bad: LogSink = {
    emit: () => {
      throw new Error("boom");
    },
    close: () => Promise.resolve(),
  };
  const good = new MemorySink();
  const logger = new Logger({ clock: new ManualClock(), sinks: [bad, good] });
  logger.subscribe(() => {
    throw new Error("listener");
  });
  stop(logger, 1);
  assert.equal(good.events.length, 1);
  assert.equal(logger.failures, 2);
});
