/**
 * Lab test of UDP segmentation offload: a client sending with `UDP_SEGMENT`
 * (as QUIC stacks do) through the iperf forward (52202 -> server:5201, UDP
 * free between iperf runs). With USO negotiated, the TUN reads one
 * `VIRTIO_NET_HDR_GSO_UDP_L4` super packet per send; the appliance rewrites
 * it whole and writes it back behind its header. The appliance's LAN veth
 * has TX checksum offload off, so the kernel segments each super packet in
 * software and completes every datagram's checksum from the pseudo-header
 * sum NAT left; the server verifies each one in software (a locally
 * delivered partial checksum is never checked) and a sink counts them and
 * checks their payload pattern. Needs python3 (the sender) and ethtool.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import {
  kernelCounters,
  labSupported,
  removeTestConfig,
  ROOT,
  shOk,
  spawnIn,
  status,
  statusSettled,
  until,
  waitForLog,
  writeTestConfig,
} from "./_helpers.ts";

const SENDS = 40, SEGMENTS = 64, SIZE = 100;

function has(cmd: string, versionFlag: string): boolean {
  try {
    return new Deno.Command(cmd, { args: [versionFlag], stdout: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "lab: UDP_SEGMENT datagrams cross the appliance as GSO super packets, intact",
  ignore: !labSupported() || !has("python3", "-V") || !has("ethtool", "--version"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const config = await writeTestConfig({ allow: ["203.0.113.0/24"] });
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config });
      await shOk(lab, "appliance", ["ethtool", "-K", "lan0", "tx", "off"]);
      const serverBefore = await kernelCounters(lab, "server");
      const before = await status(lab);
      const line = await waitForLog(lab, /^data plane: \S+ offloads /);
      assert.equal(line, "data plane: kn0 offloads csum tso4 tso6 uso4 uso6");
      assert.ok(
        before.device.offloads?.includes("uso4"),
        `USO should be negotiated on kernel 6.18: ${JSON.stringify(before.device)}`,
      );
      const sink = spawnIn(lab, "server", [
        "python3",
        `${ROOT}tests/lab/_udp_sink.py`,
        LAB.server,
        "5201",
        "1500",
        "30000",
      ], 40);
      assert.ok(await until(() => sink.output().includes("listening"), 10_000), sink.errors());
      const sent = JSON.parse(
        await shOk(lab, "client", [
          "python3",
          `${ROOT}tests/lab/_udp_segment_send.py`,
          LAB.wan,
          "52202",
          String(SENDS),
          String(SEGMENTS),
          String(SIZE),
        ], 30),
      );
      const datagrams = SENDS * SEGMENTS;
      assert.deepEqual(sent, { datagrams, sends: SENDS });
      const done = await sink.finish(35_000);
      const got = JSON.parse(done.stdout.trim().split("\n").pop()!);
      // Where datagrams went missing, should any: the appliance's drops and the server's UDP counters.
      const seen = await statusSettled(lab);
      const server = await kernelCounters(lab, "server");
      const why = JSON.stringify({
        drops: seen.drops,
        device: seen.device,
        queues: seen.queues,
        server: Object.fromEntries(Object.entries(server).filter(([k]) => k.startsWith("Udp"))),
      });

      assert.deepEqual(got, {
        received: datagrams,
        corrupt: 0,
        duplicates: 0,
        distinct: datagrams,
        bytes: datagrams * SIZE,
        sizes: [SIZE],
      }, `every datagram arrives once, its payload intact: ${why}`);
      const after = await statusSettled(lab);
      const gso = after.device.gsoPackets - before.device.gsoPackets;
      const rx = after.stats.rx_packets - before.stats.rx_packets;
      // One super packet per send: the appliance handles 40 packets, not 2,560.
      assert.ok(gso >= SENDS, `the TUN should read a super packet per send, read ${gso}`);
      assert.ok(rx < datagrams / 4, `the pipeline should see super packets, saw ${rx} packets`);
      const serverAfter = await kernelCounters(lab, "server");
      const csumErrors = (serverAfter.UdpInCsumErrors ?? 0) - (serverBefore.UdpInCsumErrors ?? 0);
      assert.equal(csumErrors, 0, "every datagram's checksum is right");
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
