/**
 * Lab test of the data plane: a real kernel, a real TUN device, network
 * namespaces and ordinary tools (curl, nc, ping, nmap, iperf3, hping3,
 * tcpdump) against the appliance process. The WAN clients are on the static
 * allow-list, so forwards open without knocking (the knock engine has its
 * own lab test).
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import {
  curl,
  dropDelta,
  hping,
  ipv4,
  kernelCounters,
  labSupported,
  nmapStates,
  rawSend,
  removeTestConfig,
  ROOT,
  sh,
  shOk,
  sleep,
  spawnIn,
  status,
  statusSettled,
  statusWhen,
  tcpSegment,
  udpDatagram,
  until,
  writeTestConfig,
} from "./_helpers.ts";

const C = LAB.client, W = LAB.wan;

/** One UDP datagram through the echo forward (52203 -> server:7); what came back. */
async function udpEcho(
  lab: RunningLab,
  size: number,
): Promise<{ sent: number; received: number; same: boolean }> {
  const out = await shOk(lab, "client", [
    Deno.execPath(),
    "run",
    "-A",
    `${ROOT}tests/lab/_udp_echo.ts`,
    W,
    "52203",
    String(size),
    "3000",
  ], 30);
  return JSON.parse(out.trim());
}

/** Runs iperf3 from the client through the 52202 forward; returns its JSON report. */
async function iperf(lab: RunningLab, extra: string[]): Promise<Record<string, unknown>> {
  const r = await sh(
    lab,
    "client",
    ["iperf3", "-c", W, "-p", "52202", "-t", "2", "-J", ...extra],
    40,
  );
  const report = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(report.error, undefined, `iperf3 failed: ${report.error}`);
  assert.equal(r.code, 0, r.stderr);
  return report;
}

/** Kernel drops of bad IPv4 headers in the namespaces a WAN packet crosses. */
async function kernelHeaderDrops(lab: RunningLab): Promise<number> {
  let n = 0;
  for (const ns of ["inet", "appliance"] as const) {
    const k = await kernelCounters(lab, ns);
    n += (k.IpInHdrErrors ?? 0) + (k.IpExtInTruncatedPkts ?? 0);
  }
  return n;
}

Deno.test({
  name: "lab: data plane (forwards, range, UDP, masquerade, hairpin, stealth, iperf3, malformed)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await writeTestConfig({ allow: ["203.0.113.0/24"] });
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      const l = lab;

      await t.step("the appliance answers SIGUSR2 with a status line", async () => {
        const s = await status(l);
        assert.equal(typeof s.stats.rx_packets, "number");
        assert.equal(typeof s.conntrack.size, "number");
      });

      await t.step("TCP through a port forward (52201 -> server:8080)", async () => {
        assert.equal(
          await curl(l, "client", `http://${W}:52201/`),
          `hello from ${LAB.server}:8080 to ${C}\n`,
        );
      });

      await t.step("TCP through a port range (52215 -> server:8085)", async () => {
        assert.equal(
          await curl(l, "client", `http://${W}:52215/`),
          `hello from ${LAB.server}:8085 to ${C}\n`,
        );
        assert.equal(
          await curl(l, "client", `http://${W}:52219/`),
          `hello from ${LAB.server}:8089 to ${C}\n`,
        );
      });

      await t.step("UDP through a forward (nc -u to 52203, the echo comes back)", async () => {
        const r = await sh(
          l,
          "client",
          ["nc", "-u", "-w", "1", W, "52203"],
          10,
          new TextEncoder().encode("ping-udp\n"),
        );
        assert.equal(r.stdout, "ping-udp\n", r.stderr);
      });

      await t.step("a fragmented UDP datagram (3000 B, MTU 1500) is echoed whole", async () => {
        const before = await status(l);
        const r = await udpEcho(l, 3000);
        assert.deepEqual(r, { sent: 3000, received: 3000, same: true });
        const after = await status(l);
        // Three fragments each way cross the appliance.
        assert.ok(after.stats.fragments - before.stats.fragments >= 6, JSON.stringify(after.stats));
        assert.equal(dropDelta(before, after, "fragment-orphan"), 0);
      });

      await t.step("ping from the server to a client is masqueraded and answered", async () => {
        const dump = spawnIn(
          l,
          "client",
          ["tcpdump", "-n", "-l", "--immediate-mode", "-i", "eth0", "-c", "2", "icmp"],
          20,
        );
        assert.ok(await until(() => dump.errors().includes("listening on"), 5000), dump.errors());
        const out = await shOk(l, "server", ["ping", "-c", "3", "-W", "2", "-i", "0.2", C], 15);
        assert.match(out, /3 packets transmitted, 3 received/);
        const seen = (await dump.finish(5000)).stdout;
        // On the WAN the echo request comes from the WAN address, not the server.
        assert.match(
          seen,
          new RegExp(
            `IP ${W.replaceAll(".", "\\.")} > ${C.replaceAll(".", "\\.")}: ICMP echo request`,
          ),
        );
        assert.doesNotMatch(seen, /192\.0\.2\.12/);
      });

      await t.step("hairpin: the server reaches its own forward on the WAN address", async () => {
        assert.equal(
          await curl(l, "server", `http://${W}:52201/`),
          `hello from ${LAB.server}:8080 to ${W}\n`,
        );
      });

      await t.step("nmap -Pn: forwarded ports open, everything else filtered", async () => {
        const states = await nmapStates(l, "client", [
          52201,
          52202,
          52203,
          52204,
          52215,
          52220,
          8080,
        ]);
        assert.deepEqual(states, {
          52201: "open",
          52202: "open",
          52203: "filtered", // the echo forward is UDP only
          52204: "filtered",
          52215: "open",
          52220: "filtered",
          8080: "filtered",
        });
      });

      await t.step("iperf3 TCP through 52202 completes and moves bytes", async () => {
        const report = await iperf(l, []);
        const end = report.end as { sum_received: { bytes: number }; sum_sent: { bytes: number } };
        assert.ok(
          end.sum_sent.bytes > 0 && end.sum_received.bytes > 0,
          JSON.stringify(end.sum_received),
        );
      });

      await t.step("iperf3 UDP through 52202 completes and moves datagrams", async () => {
        const report = await iperf(l, ["-u", "-b", "20M", "-l", "1200"]);
        const sum =
          (report.end as { sum: { bytes: number; packets: number; lost_packets: number } }).sum;
        assert.ok(sum.bytes > 0 && sum.packets > 0, JSON.stringify(sum));
        // Some loss is possible on a busy host; most datagrams must arrive.
        assert.ok(sum.lost_packets < sum.packets / 2, JSON.stringify(sum));
      });

      await t.step("malformed packets from hping3 are counted and change nothing", async () => {
        const before = await statusSettled(l); // after iperf3's last segments

        const send = (args: string[]) => hping(l, "client", ["-q", "-i", "u20000", ...args]);
        assert.equal(await send(["-c", "3", "-S", "-p", "52201", "--badcksum"]), 3);
        assert.equal(await send(["-c", "3", "-2", "-p", "52203", "--badcksum"]), 3);
        assert.equal(await send(["-c", "3", "-S", "-p", "52201", "--rroute"]), 3); // record route
        const after = await statusWhen(
          l,
          (s) =>
            dropDelta(before, s, "bad-l4-checksum") + dropDelta(before, s, "ipv4-options") >= 9,
        );
        assert.equal(dropDelta(before, after, "bad-l4-checksum"), 6, JSON.stringify(after.drops));
        assert.equal(dropDelta(before, after, "ipv4-options"), 3, JSON.stringify(after.drops));
        assert.equal(after.conntrack.inserted, before.conntrack.inserted, "no flow was created");
        assert.equal(after.stats.flows_created, before.stats.flows_created);
      });

      await t.step("lone later fragments are dropped (and counted where they arrive)", async () => {
        const before = await status(l);
        const reasmBefore = (await kernelCounters(l, "appliance")).IpReasmReqds ?? 0;
        // Later fragments (offset 800) of datagrams whose first fragment never comes.
        const sent = await hping(l, "client", [
          "-q",
          "-i",
          "u20000",
          "-c",
          "3",
          "-2",
          "-p",
          "52203",
          "-g",
          "100",
          "-d",
          "64",
        ]);
        assert.equal(sent, 3);
        const reasm = (await kernelCounters(l, "appliance")).IpReasmReqds - reasmBefore;
        if (reasm > 0) {
          // Netfilter conntrack is active in the appliance's namespace: the kernel's reassembly
          // holds the fragments (and drops them after its timeout); the TUN never sees them.
          await sleep(500);
          const after = await status(l);
          assert.equal(dropDelta(before, after, "fragment-orphan"), 0);
          assert.equal(after.stats.fragments, before.stats.fragments);
        } else {
          const after = await statusWhen(l, (s) => dropDelta(before, s, "fragment-orphan") >= 3);
          assert.equal(dropDelta(before, after, "fragment-orphan"), 3, JSON.stringify(after.drops));
          assert.equal(after.conntrack.inserted, before.conntrack.inserted, "no flow was created");
        }
      });

      await t.step(
        "malformed packets sent byte for byte are counted and change nothing",
        async () => {
          const syn = tcpSegment(C, 40000, W, 52201);
          const reachApp = [
            // IP total length shorter than the frame: the kernel trims it to a 10-byte TCP header.
            ipv4({ src: C, dst: W, proto: 6, payload: syn, totalLen: 30 }),
            // TCP header cut to 12 bytes.
            ipv4({ src: C, dst: W, proto: 6, payload: syn.subarray(0, 12) }),
            // TCP data offset (60 bytes) past the end of the segment.
            ipv4({
              src: C,
              dst: W,
              proto: 6,
              payload: tcpSegment(C, 40001, W, 52201, { dataOffset: 15 }),
            }),
            // UDP length 200 in a 18-byte datagram.
            ipv4({
              src: C,
              dst: W,
              proto: 17,
              payload: udpDatagram(C, 40002, W, 52203, new Uint8Array(10), 200),
            }),
            // An IP options header (record route) on a SYN to a forwarded port.
            ipv4({
              src: C,
              dst: W,
              proto: 6,
              payload: syn,
              options: new Uint8Array([7, 7, 4, 0, 0, 0, 0, 1]),
            }),
          ];
          const v6 = ipv4({ src: C, dst: W, proto: 6, payload: syn });
          v6[0] = 0x65;
          const kernelDrops = [
            ipv4({ src: C, dst: W, proto: 6, payload: syn, badChecksum: true }),
            ipv4({ src: C, dst: W, proto: 6, payload: syn, totalLen: 100 }), // longer than the frame
            ipv4({ src: C, dst: W, proto: 6, payload: syn, ihl: 4 }),
            v6,
          ];
          const before = await status(l);
          const kBefore = await kernelHeaderDrops(l);
          await rawSend(l, "client", [...reachApp, ...kernelDrops]);
          const after = await statusWhen(
            l,
            (s) => s.stats.drops - before.stats.drops >= reachApp.length,
          );
          const kAfter = await kernelHeaderDrops(l);
          const d = (r: string) => dropDelta(before, after, r);
          assert.deepEqual(
            {
              truncated: d("truncated"),
              "bad-l4-header-len": d("bad-l4-header-len"),
              "bad-l4-len": d("bad-l4-len"),
              "ipv4-options": d("ipv4-options"),
            },
            { truncated: 2, "bad-l4-header-len": 1, "bad-l4-len": 1, "ipv4-options": 1 },
            JSON.stringify(after.drops),
          );
          // Bad IP headers never reach the TUN: the kernel (bridge or appliance) drops and counts them.
          for (const r of ["bad-checksum", "bad-total-len", "bad-header-len", "bad-version"]) {
            assert.equal(d(r), 0, `${r}: ${JSON.stringify(after.drops)}`);
          }
          assert.ok(
            kAfter - kBefore >= kernelDrops.length,
            `kernel header drops ${kBefore} -> ${kAfter}`,
          );
          assert.equal(after.conntrack.inserted, before.conntrack.inserted, "no flow was created");
        },
      );

      await t.step("tiny fragments (hping3 -f) are dropped and counted", async () => {
        const before = await status(l);
        const args = ["-q", "-c", "2", "-i", "u20000", "-S", "-p", "52201", "-f", "-d", "64"];
        assert.equal(await hping(l, "client", args), 2);
        const after = await statusWhen(
          l,
          (s) =>
            dropDelta(before, s, "truncated") >= 2 && dropDelta(before, s, "fragment-orphan") >= 2,
        );
        // The first fragment holds 16 bytes of TCP header; the rest have no first fragment.
        assert.equal(dropDelta(before, after, "truncated"), 2, JSON.stringify(after.drops));
        assert.ok(dropDelta(before, after, "fragment-orphan") >= 2, JSON.stringify(after.drops));
        assert.equal(after.conntrack.inserted, before.conntrack.inserted);
      });

      await t.step("the appliance still forwards after all that", async () => {
        assert.equal(
          await curl(l, "client", `http://${W}:52201/`),
          `hello from ${LAB.server}:8080 to ${C}\n`,
        );
        assert.deepEqual(await udpEcho(l, 100), { sent: 100, received: 100, same: true });
        assert.equal(
          await curl(l, "server", `http://${W}:52215/`),
          `hello from ${LAB.server}:8085 to ${W}\n`,
        );
      });
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
