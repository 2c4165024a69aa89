import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ErrnoError } from "./libc.ts";
import { TunDevice, type TunStats } from "./tun.ts";

/** Root, /dev/net/tun and `ip` are needed; otherwise these tests are skipped. */
function canRun(): boolean {
  if (Deno.uid() !== 0) return false;
  try {
    Deno.statSync("/dev/net/tun");
    return new Deno.Command("ip", { args: ["-V"] }).outputSync().success;
  } catch {
    return false;
  }
}

const ignore = !canRun();
const probe = fileURLToPath(new URL("./testdata/tun_probe.ts", import.meta.url));

/** What tun_probe.ts prints (see there). */
interface ProbeReport {
  headroom: number;
  maxPacketSize: number;
  queues: number;
  udp: {
    seen: boolean;
    payload: string;
    csumPartial: number;
    checksumOk: boolean;
    written: number;
    reply: { text: string; from: string } | null;
  };
  icmp: { written: number; seen: boolean; type: number; from: string };
  ipv6Dropped: number;
  truncation: { read: number; truncated: number };
  tcp: {
    synSeen: boolean;
    synCsumPartial: number;
    synChecksumOk: boolean;
    connected: boolean;
    dataPackets: number;
    largest: number;
    dataCsumPartialAll: boolean;
    dataChecksumOkAll: boolean;
    gsoWriteBack: number;
  };
  stats: TunStats;
}

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Runs the probe in a fresh namespace (so the TUN is made there) and returns its report. */
async function runProbe(mode: string, tag: string): Promise<ProbeReport> {
  const ns = `kgt${Deno.pid}${tag}`;
  await ip("netns", "add", ns);
  try {
    const out = await new Deno.Command("ip", {
      args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", probe, `kgt${Deno.pid}t`, mode],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `probe ${mode} failed: ${stderr}`);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await ip("netns", "del", ns);
  }
}

/** Checks what every mode must show: UDP out and back, ICMP echo, IPv6 dropped. */
function assertCommon(r: ProbeReport, offload: boolean): void {
  assert.equal(r.headroom, offload ? 10 : 0);
  assert.equal(r.maxPacketSize, offload ? 65535 : 1400);
  assert.equal(r.udp.seen, true, "the UDP datagram should come out of the TUN");
  assert.equal(r.udp.payload, "knock-out");
  assert.equal(r.udp.csumPartial, offload ? 1 : 0);
  assert.equal(r.udp.checksumOk, true);
  assert.equal(r.udp.written, 1);
  assert.deepEqual(r.udp.reply, { text: "knock-back", from: "198.51.100.2:9999" });
  assert.deepEqual(r.icmp, { written: 1, seen: true, type: 0, from: "198.51.100.1" });
  assert.ok(r.ipv6Dropped >= 1, "an IPv6 packet should be dropped and counted");
  assert.deepEqual(r.truncation, { read: 0, truncated: 1 }, "a cut packet should be dropped");
  assert.equal(r.stats.readErrors, 0);
  assert.equal(r.stats.writeErrors, 0);
}

Deno.test({
  name: "TunDevice without offload: UDP, ICMP and TCP through a namespace",
  ignore,
  async fn() {
    const r = await runProbe("plain", "p");
    assertCommon(r, false);
    assert.equal(r.tcp.synSeen, true);
    assert.equal(r.tcp.synCsumPartial, 0);
    assert.equal(r.tcp.synChecksumOk, true);
    assert.equal(r.tcp.connected, true, "the hand-written SYN-ACK should complete the handshake");
    assert.ok(r.tcp.dataPackets > 0);
    assert.ok(r.tcp.largest <= 1400, `no read may exceed the MTU, saw ${r.tcp.largest}`);
    assert.equal(r.tcp.dataChecksumOkAll, true);
    assert.equal(r.stats.gsoPackets, 0);
  },
});

Deno.test({
  name: "TunDevice with offload: partial checksums, GSO reads and a GSO write back",
  ignore,
  async fn() {
    const r = await runProbe("offload", "o");
    assertCommon(r, true);
    assert.equal(r.tcp.synCsumPartial, 1);
    assert.equal(r.tcp.synChecksumOk, true, "a partial checksum holds the pseudo-header sum");
    assert.equal(r.tcp.connected, true);
    assert.ok(r.tcp.largest > 1400, `a GSO read should exceed the MTU, saw ${r.tcp.largest}`);
    assert.equal(r.tcp.dataCsumPartialAll, true);
    assert.equal(r.tcp.dataChecksumOkAll, true);
    assert.ok(r.stats.gsoPackets >= 1);
    assert.equal(r.tcp.gsoWriteBack, 1, "the kernel should take a GSO packet back");
  },
});

Deno.test({
  name: "TunDevice with two queues opens both and reads through them",
  ignore,
  async fn() {
    const r = await runProbe("multiqueue", "m");
    assert.equal(r.queues, 2);
    assertCommon(r, true);
  },
});

Deno.test({
  name: "TunDevice.open rejects bad options before touching the kernel",
  fn() {
    const base = { name: "kgtbad", mtu: 1400, offload: false };
    assert.throws(
      () => TunDevice.open({ ...base, name: "a-name-far-too-long" }),
      /Cannot open TUN "a-name-far-too-long": the name is longer than 15 bytes/,
    );
    assert.throws(() => TunDevice.open({ ...base, mtu: 40 }), /MTU 40 is out of range 68..65535/);
    assert.throws(() => TunDevice.open({ ...base, queues: 0 }), /0 queues is out of range/);
  },
});

Deno.test({
  name: "TunDevice.open turns a kernel refusal into an ErrnoError",
  ignore,
  fn() {
    // "lo" exists and is not a TUN: TUNSETIFF refuses (EINVAL) and leaves it alone.
    assert.throws(
      () => TunDevice.open({ name: "lo", mtu: 1400, offload: false }),
      (e) =>
        e instanceof ErrnoError &&
        /^Cannot create TUN "lo" \(TUNSETIFF\): E[A-Z]+ \(errno \d+\)$/.test(e.message),
    );
  },
});
