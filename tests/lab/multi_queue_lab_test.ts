/**
 * Lab test of the multi-queue data plane: `tun.queues: 3`, one Worker per
 * queue over one shared flow table. The kernel spreads flows over the
 * queues by hash, so a knock's packets (each to another port) land on
 * different queues and reach the verifier through the trackers' handoff
 * rings; after DNAT a flow's two directions hash differently, so the
 * trackers forward packets of flows worker 0 created. The test finds a
 * connection whose packets crossed more than one Worker, and checks every
 * byte and datagram arrived intact. A flood of locked, spoofed SYNs spreads
 * over the queues and is dropped by each queue's own Worker (the shared
 * unlock table says locked), while the unlocked client connects.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import {
  curl,
  dropDelta,
  knock,
  labSupported,
  removeTestConfig,
  ROOT,
  sh,
  shOk,
  spoofSyns,
  type Status,
  status,
  statusSettled,
  waitForLog,
  writeTestConfig,
} from "./_helpers.ts";

const QUEUES = 3;
/** Single connections tried before a split one must have been seen (each splits with p of about 2/3). */
const SPLIT_ATTEMPTS = 12;

/** Per-queue deltas of stat `key` between two status lines. */
function perQueue(a: Status, b: Status, key: string): number[] {
  return b.queues.map((q, i) => (q[key] ?? 0) - (a.queues[i]?.[key] ?? 0));
}

/** One UDP datagram through the echo forward (52203 -> server:7). */
async function udpEcho(lab: RunningLab, size: number): Promise<{ same: boolean }> {
  const out = await shOk(lab, "client", [
    Deno.execPath(),
    "run",
    "-A",
    `${ROOT}tests/lab/_udp_echo.ts`,
    LAB.wan,
    "52203",
    String(size),
    "3000",
  ], 30);
  return JSON.parse(out.trim());
}

Deno.test({
  name: "lab: three TUN queues, one Worker each: knocks, forwards and split flows",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await writeTestConfig({ queues: QUEUES });
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const running = lab;
      assert.equal(
        await waitForLog(running, /^data plane: \S+ \d+ queues?/),
        `data plane: kn0 ${QUEUES} queues, one Worker each`,
      );

      await t.step("a knock whose packets land on several queues unlocks", async () => {
        assert.equal(await curl(running, "client", `http://${LAB.wan}:52201/`, 2), null);
        const before = await status(running);
        const k = await knock(running, "client", ["--delay-ms", "50"]);
        assert.equal(k.code, 0, k.stderr);
        const body = await curl(running, "client", `http://${LAB.wan}:52201/`, 5);
        assert.ok(body?.startsWith("hello from "), `after the knock: ${body}`);
        const after = await status(running);
        assert.equal(after.queues.length, QUEUES);
        assert.ok(after.stats.unlocks - before.stats.unlocks >= 1, JSON.stringify(after.stats));
      });

      await t.step("traffic spreads over the queues, trackers forward and hand off", async () => {
        const before = await status(running);
        for (let i = 0; i < 16; i++) {
          const body = await curl(running, "client", `http://${LAB.wan}:52201/`, 5);
          assert.ok(body?.startsWith("hello from "), `curl ${i}: ${body}`);
        }
        for (const size of [64, 1400, 4000]) {
          assert.ok((await udpEcho(running, size)).same, `UDP echo of ${size} bytes`);
        }
        const r = await sh(running, "client", [
          "iperf3",
          "-c",
          LAB.wan,
          "-p",
          "52202",
          "-t",
          "2",
          "-P",
          "4",
          "-J",
        ], 40);
        const report = JSON.parse(r.stdout);
        assert.equal(report.error, undefined, `iperf3: ${report.error}`);
        const after = await status(running);
        const rx = perQueue(before, after, "rx_packets");
        assert.ok(rx.filter((n) => n > 0).length >= 2, `packets per queue ${rx}`);
        const fast = perQueue(before, after, "fast_path_packets");
        assert.ok(fast.slice(1).some((n) => n > 0), `trackers forwarded nothing: ${fast}`);
        const handed = perQueue(before, after, "handed_off_packets");
        assert.ok(handed.slice(1).some((n) => n > 0), `no tracker handed off: ${handed}`);
        const received = perQueue(before, after, "handoff_received_packets");
        assert.equal(received[0], handed.reduce((a, n) => a + n, 0), "worker 0 got every handoff");
        assert.equal(after.drops["handoff-full"] ?? 0, 0);
        // Every packet sent on was written once, handed-off ones (worker 0 through a tracker's queue) too.
        const written = after.device.writePackets - before.device.writePackets;
        assert.equal(written, after.stats.tx_packets - before.stats.tx_packets, "writes = sends");
        const perDevQueue = after.device.queues?.map((q) => q.readPackets) ?? [];
        assert.equal(perDevQueue.length, QUEUES, JSON.stringify(after.device));
      });

      await t.step("a connection's packets cross more than one Worker", async () => {
        let split: number[] | null = null;
        for (let i = 0; i < SPLIT_ATTEMPTS && split === null; i++) {
          const before = await status(running);
          const body = await curl(running, "client", `http://${LAB.wan}:52201/`, 5);
          assert.ok(body?.startsWith("hello from "), `curl ${i}: ${body}`);
          const after = await status(running);
          const fast = perQueue(before, after, "fast_path_packets");
          if (fast.filter((n) => n > 0).length >= 2) split = fast;
        }
        assert.ok(split !== null, `no connection in ${SPLIT_ATTEMPTS} crossed two Workers`);
      });

      await t.step(
        "a locked SYN flood is dropped by every queue's Worker; the client connects",
        async () => {
          // A route back to the spoofed range, so that no reverse-path filter drops it first.
          await running.exec("appliance", ["ip", "route", "add", "198.18.0.0/15", "dev", "wan0"]);
          const before = await statusSettled(running);
          const flood = spoofSyns(running, "client2", {
            dst: LAB.wan,
            sources: { first: "198.18.0.0", count: 8192 },
            ports: [52201],
            repeat: 4,
            pps: 20_000,
          });
          for (let i = 0; i < 5; i++) {
            const body = await curl(running, "client", `http://${LAB.wan}:52201/`, 5);
            assert.ok(body?.startsWith("hello from "), `curl ${i} during the flood: ${body}`);
          }
          const { sent } = await flood;
          assert.equal(sent, 8192 * 4);
          const after = await statusSettled(running);
          assert.equal(
            dropDelta(before, after, "locked"),
            sent,
            "every flood SYN dropped as locked",
          );
          const rx = perQueue(before, after, "rx_packets");
          assert.ok(rx.filter((n) => n > sent / 10).length >= 2, `flood packets per queue ${rx}`);
          // The trackers judged their share themselves: almost nothing went to worker 0.
          const slow = perQueue(before, after, "slow_path_packets");
          const trackers = slow.slice(1).reduce((a, n) => a + n, 0);
          assert.ok(trackers > sent / 10, `trackers' own verdicts ${slow}`);
          const handed = perQueue(before, after, "handed_off_packets");
          assert.ok(
            handed.reduce((a, n) => a + n, 0) < sent / 100,
            `handed off during the flood ${handed}`,
          );
          assert.equal(dropDelta(before, after, "handoff-full"), 0);
        },
      );
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
