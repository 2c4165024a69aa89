import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { makeEvent, Severity } from "./events.ts";
import { formatLine, StdoutSink, timestamp } from "./stdout.ts";

const clock = new ManualClock(Date.UTC(2023, 9, 17, 5, 36, 54, 789));

Deno.test("timestamp is the router's UTC `YYYY-MM-DD hh:mm:ss`", () => {
  assert.equal(timestamp(clock.now()), "2023-10-17 05:36:54");
});

Deno.test("StdoutSink writes one timestamped line per event and honours maxSeverity", async () => {
  const lines: string[] = [];
  const sink = new StdoutSink({ write: (l) => lines.push(l), maxSeverity: Severity.Info });
  const admitted = makeEvent(clock, "flow-admitted", {
    proto: 6,
    src: "203.0.113.10",
    srcPort: 42829,
    dst: "198.51.100.1",
    dstPort: 52201,
    privateAddr: "192.0.2.12",
    privatePort: 8080,
    rule: "web",
  });
  sink.emit(admitted);
  sink.emit(makeEvent(clock, "appliance-stop", { reason: "x" }, Severity.Debug));
  await sink.close();
  assert.deepEqual(lines, [
    "2023-10-17 05:36:54 [Port Unlock] P:6 203.0.113.10:42829->198.51.100.1:52201 #192.0.2.12:8080",
  ]);
  assert.equal(formatLine(admitted), lines[0]);
});
