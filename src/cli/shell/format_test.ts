import assert from "node:assert/strict";
import {
  formatAgo,
  formatBytes,
  formatDrift,
  formatDuration,
  formatRange,
  formatTime,
  formatUntil,
} from "./format.ts";

Deno.test("formatDuration: the two largest units", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(999), "0s");
  assert.equal(formatDuration(8_000), "8s");
  assert.equal(formatDuration(60_000), "1m");
  assert.equal(formatDuration(367_000), "6m 7s");
  assert.equal(formatDuration(3_600_000 * 4 + 5 * 60_000 + 9_000), "4h 5m");
  assert.equal(formatDuration(86_400_000 * 2 + 3_600_000 * 3), "2d 3h");
  assert.equal(formatDuration(-5), "0s");
});

Deno.test("formatAgo and formatUntil are relative to now", () => {
  const now = 1_000_000_000_000;
  assert.equal(formatAgo(now - 500, now), "just now");
  assert.equal(formatAgo(now - 65_000, now), "1m 5s ago");
  assert.equal(formatUntil(now + 3_588_000, now), "in 59m 48s");
  assert.equal(formatUntil(now, now), "expired");
});

Deno.test("formatTime, formatBytes, formatDrift, formatRange", () => {
  const d = new Date(2026, 0, 2, 3, 4, 5);
  assert.equal(formatTime(d.getTime()), "2026-01-02 03:04:05");
  assert.equal(formatBytes(100), "100 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(20 * 1024 * 1024), "20.0 MiB");
  assert.equal(formatDrift(1), "+1");
  assert.equal(formatDrift(0), "0");
  assert.equal(formatDrift(-1), "-1");
  assert.equal(formatRange({ start: 80, end: 80 }), "80");
  assert.equal(formatRange({ start: 80, end: 89 }), "80-89");
});
