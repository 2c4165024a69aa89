import assert from "node:assert/strict";
import dgram from "node:dgram";
import type { AddressInfo } from "node:net";
import { ManualClock } from "../clock.ts";
import { makeEvent, Severity } from "./events.ts";
import {
  bsdTimestamp,
  frameRfc3164,
  frameRfc5424,
  MAX_UNRESOLVED_QUEUE,
  priority,
  type SyslogHeader,
  SyslogSink,
} from "./syslog.ts";

const clock = new ManualClock(Date.UTC(2023, 9, 17, 5, 36, 54, 123));
const header: SyslogHeader = {
  facility: 16,
  hostname: "knockgate1",
  appName: "knockgate",
  procId: "4242",
};
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
const ROUTER_LINE = "[Port Unlock] P:6 203.0.113.10:42829->198.51.100.1:52201 #192.0.2.12:8080";

Deno.test("priority is facility * 8 + severity", () => {
  assert.equal(priority(16, Severity.Info), 134);
  assert.equal(priority(0, Severity.Emergency), 0);
  assert.equal(priority(23, Severity.Debug), 191);
});

Deno.test("frameRfc5424 builds <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG", () => {
  assert.equal(
    frameRfc5424(admitted, header),
    `<134>1 2023-10-17T05:36:54.123Z knockgate1 knockgate 4242 flow-admitted - ${ROUTER_LINE}`,
  );
  const odd = frameRfc5424(admitted, { ...header, hostname: "", procId: "a b" });
  assert.match(odd, /^<134>1 \S+ - knockgate a_b flow-admitted - /);
});

Deno.test("frameRfc3164 builds <PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG", () => {
  const warn = makeEvent(clock, "knock-failure", { ip: "203.0.113.10", reason: "wrong-port" });
  assert.equal(
    frameRfc3164(warn, { ...header, facility: 4 }),
    "<36>Oct 17 05:36:54 knockgate1 knockgate[4242]: " +
      "[Port Knock] failure ip=203.0.113.10 reason=wrong-port",
  );
  // Single-digit days are padded with a space (RFC 3164 §4.1.2).
  assert.equal(bsdTimestamp(Date.UTC(2024, 0, 5, 1, 2, 3)), "Jan  5 01:02:03");
});

/** A node:dgram listener on 127.0.0.1 collecting datagrams as text. */
async function listen(): Promise<{ port: number; got: string[]; close: () => Promise<void> }> {
  const server = dgram.createSocket("udp4");
  const got: string[] = [];
  server.on("message", (msg) => got.push(new TextDecoder().decode(msg)));
  await new Promise<void>((resolve) => server.bind(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return { port, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function waitFor(pred: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!pred() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
}

Deno.test("SyslogSink sends real UDP datagrams to 127.0.0.1 in both formats", async () => {
  const a = await listen();
  const b = await listen();
  const sink = new SyslogSink({
    collectors: [
      { host: "127.0.0.1", port: a.port },
      { host: "127.0.0.1", port: b.port, format: "rfc3164", facility: 1 },
    ],
    hostname: "knockgate1",
    procId: "4242",
  });
  try {
    sink.emit(admitted);
    sink.emit(makeEvent(clock, "appliance-stop", { reason: "dbg" }, Severity.Debug));
    await sink.flush();
    await waitFor(() => a.got.length >= 1 && b.got.length >= 1);
    assert.deepEqual(a.got, [
      `<134>1 2023-10-17T05:36:54.123Z knockgate1 knockgate 4242 flow-admitted - ${ROUTER_LINE}`,
    ]);
    assert.deepEqual(b.got, [`<14>Oct 17 05:36:54 knockgate1 knockgate[4242]: ${ROUTER_LINE}`]);
    assert.deepEqual(sink.stats, { sent: 2, errors: 0, dropped: 0, resolveFailures: 0 });
  } finally {
    await sink.close();
    await a.close();
    await b.close();
  }
  sink.emit(admitted); // Ignored once closed.
  assert.equal(sink.stats.sent, 2);
});

Deno.test("SyslogSink counts a send error instead of throwing", async () => {
  const sink = new SyslogSink({ collectors: [{ host: "127.0.0.1", port: 70000 }] });
  try {
    sink.emit(admitted);
    await sink.flush();
    assert.equal(sink.stats.errors, 1);
  } finally {
    await sink.close();
  }
});

Deno.test("SyslogSink resolves a collector name in the background and sends what it queued", async () => {
  const a = await listen();
  const sink = new SyslogSink({ collectors: [{ host: "localhost", port: a.port }] });
  try {
    sink.emit(admitted); // before the name has resolved: queued, not lost
    await waitFor(() => a.got.length >= 1);
    assert.equal(a.got.length, 1);
    assert.equal(sink.collectors()[0].address, "127.0.0.1");
    sink.emit(admitted);
    await sink.flush();
    await waitFor(() => a.got.length >= 2);
    assert.equal(a.got.length, 2);
  } finally {
    await sink.close();
    await a.close();
  }
});

Deno.test("SyslogSink: a name that does not resolve never blocks emit, flush or close; it is retried", async () => {
  const sink = new SyslogSink({
    collectors: [{ host: "collector.invalid" }, { host: "127.0.0.1", port: 70000 }],
    resolve: { retryMs: 10, maxRetryMs: 20 },
  });
  try {
    for (let i = 0; i < MAX_UNRESOLVED_QUEUE + 10; i++) sink.emit(admitted);
    await sink.flush(); // waits for the IP collector's sends only
    const [named] = sink.collectors();
    assert.equal(named.address, null);
    assert.equal(named.queued, MAX_UNRESOLVED_QUEUE);
    assert.equal(sink.stats.dropped, 10, "the queue is bounded");
    await waitFor(() => sink.stats.resolveFailures >= 2);
    assert.ok(sink.stats.resolveFailures >= 2, "retried after a failure");
    assert.notEqual(sink.collectors()[0].lastError, null);
  } finally {
    await sink.close();
  }
  assert.equal(sink.collectors()[0].queued, 0);
});

Deno.test("SyslogSink sends to an IPv6 collector (::1), the IPv6 flow line bracketed", async () => {
  const server = dgram.createSocket("udp6");
  const got: string[] = [];
  server.on("message", (msg) => got.push(new TextDecoder().decode(msg)));
  await new Promise<void>((resolve) => server.bind(0, "::1", resolve));
  const port = (server.address() as AddressInfo).port;
  const sink = new SyslogSink({ collectors: [{ host: "::1", port }], hostname: "kg", procId: "1" });
  try {
    sink.emit(makeEvent(clock, "flow-admitted", {
      proto: 6,
      src: "2001:db8:1:2::99",
      srcPort: 40000,
      dst: "2001:db8:a::1",
      dstPort: 443,
      privateAddr: "2001:db8:192::12",
      privatePort: 8443,
      rule: "web6",
    }));
    await sink.flush();
    await waitFor(() => got.length >= 1);
    assert.deepEqual(got, [
      "<134>1 2023-10-17T05:36:54.123Z kg knockgate 1 flow-admitted - [Port Unlock] P:6 " +
      "[2001:db8:1:2::99]:40000->[2001:db8:a::1]:443 #[2001:db8:192::12]:8443",
    ]);
  } finally {
    await sink.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
