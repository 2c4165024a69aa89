import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { CSUM_NONE, CSUM_PARTIAL, CSUM_VALID } from "./device.ts";
import { Doorbell } from "./doorbell.ts";
import { ErrnoError } from "./libc.ts";
import { TunDevice, TunQueue, type TunStats } from "./tun.ts";

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

/** The forward probe's peer sends with python3 (UDP_SEGMENT, raw sockets). */
function hasPython(): boolean {
  try {
    return new Deno.Command("python3", { args: ["-V"] }).outputSync().success;
  } catch {
    return false;
  }
}
const probe = fileURLToPath(new URL("./testdata/tun_probe.ts", import.meta.url));
const mqProbe = fileURLToPath(new URL("./testdata/mq_probe.ts", import.meta.url));

/** What tun_probe.ts prints (see there). */
interface ProbeReport {
  headroom: number;
  maxPacketSize: number;
  queues: number;
  offloads: string[];
  udp: {
    seen: boolean;
    payload: string;
    csum: number;
    checksumOk: boolean;
    written: number;
    reply: { text: string; from: string } | null;
  };
  icmp: { written: number; seen: boolean; type: number; from: string };
  ipv6: { seen: boolean; payload: string; csum: number; checksumOk: boolean; counted: number };
  truncation: { read: number; truncated: number };
  tcp: {
    synSeen: boolean;
    synCsum: number;
    synChecksumOk: boolean;
    connected: boolean;
    dataPackets: number;
    largest: number;
    dataCsumPartialAll: boolean;
    dataChecksumOkAll: boolean;
    gsoWriteBack: number;
  };
  corruptedWrites?: {
    noneWritten: number;
    noneDelivered: string | null;
    validWritten: number;
    validDelivered: string | null;
  };
  fallback?: string[];
  forwarded?: {
    udp: ForwardedRead;
    udpRaw: ForwardedRead;
    udpGso: ForwardedRead;
    tcpSyn: ForwardedRead;
    udp6: ForwardedRead;
    udpGso6: ForwardedRead;
    /** Only when ethtool could turn GRO on. */
    udpRawGro?: ForwardedRead;
    senderError?: string;
  };
  stats: TunStats;
}

/** One forwarded packet as a TUN read returned it (tun_probe.ts `forward`). */
interface ForwardedRead {
  csum: number;
  header: {
    flags: number;
    gsoType: number;
    hdrLen: number;
    gsoSize: number;
    csumStart: number;
    csumOffset: number;
  };
  size: number;
  checksumOk: boolean;
  udpLength?: number;
  l4Length?: number;
}

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Runs the probe in a fresh namespace (so the TUN is made there) and returns its report. */
async function runProbe(mode: string, tag: string): Promise<ProbeReport> {
  return await runScript(probe, [mode], tag);
}

/** Runs `script <ifname> ...args` in a fresh namespace and returns the JSON it prints. */
// deno-lint-ignore no-explicit-any
async function runScript(script: string, args: string[], tag: string): Promise<any> {
  const ns = `kgt${Deno.pid}${tag}`;
  await ip("netns", "add", ns);
  try {
    const out = await new Deno.Command("ip", {
      args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", script, `kgt${Deno.pid}t`, ...args],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `${script} ${args.join(" ")} failed: ${stderr}`);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await ip("netns", "del", ns);
  }
}

/** Checks what every mode must show: UDP out and back, ICMP echo, IPv6 read. */
function assertCommon(r: ProbeReport, offload: boolean): void {
  assert.equal(r.headroom, offload ? 10 : 0);
  assert.equal(r.maxPacketSize, offload ? 65535 : 1400);
  assert.equal(r.udp.seen, true, "the UDP datagram should come out of the TUN");
  assert.equal(r.udp.payload, "knock-out");
  assert.equal(r.udp.csum, offload ? CSUM_PARTIAL : CSUM_NONE);
  assert.equal(r.udp.checksumOk, true);
  assert.equal(r.udp.written, 1);
  assert.deepEqual(r.udp.reply, { text: "knock-back", from: "198.51.100.2:9999" });
  assert.deepEqual(r.icmp, { written: 1, seen: true, type: 0, from: "198.51.100.1" });
  assert.deepEqual(r.ipv6, {
    seen: true,
    payload: "six",
    csum: offload ? CSUM_PARTIAL : CSUM_NONE,
    checksumOk: true,
    counted: 1,
  }, "an IPv6 datagram should come out of the TUN, counted");
  assert.equal(r.stats.nonIpDropped, 0);
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
    assert.equal(r.tcp.synCsum, CSUM_NONE);
    assert.deepEqual(r.offloads, []);
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
    assert.equal(r.tcp.synCsum, CSUM_PARTIAL);
    assert.deepEqual(r.offloads, ["csum", "tso4", "tso6", "uso4", "uso6"], "kernel 6.18 has USO");
    assert.equal(r.tcp.synChecksumOk, true, "a partial checksum holds the pseudo-header sum");
    assert.equal(r.tcp.connected, true);
    assert.ok(r.tcp.largest > 1400, `a GSO read should exceed the MTU, saw ${r.tcp.largest}`);
    assert.equal(r.tcp.dataCsumPartialAll, true);
    assert.equal(r.tcp.dataChecksumOkAll, true);
    assert.ok(r.stats.gsoPackets >= 1);
    assert.equal(r.tcp.gsoWriteBack, 1, "the kernel should take a GSO packet back");
    assert.deepEqual(r.fallback, ["csum", "tso4", "tso6"], "refused bits are dropped, not fatal");
    // The kernel ignores DATA_VALID on write: a broken checksum is caught either way.
    assert.deepEqual(r.corruptedWrites, {
      noneWritten: 1,
      noneDelivered: null,
      validWritten: 1,
      validDelivered: null,
    });
  },
});

Deno.test({
  name: "TunDevice reads of forwarded traffic carry the checksum state the kernel knows",
  ignore: ignore || !hasPython(),
  async fn() {
    const r = await runProbe("forward", "f");
    assertCommon(r, true);
    const f = r.forwarded!;
    assert.equal(f.senderError, undefined, `the peer's sender failed: ${f.senderError}`);
    const partial = (csumOffset: number) => ({
      flags: 1,
      gsoType: 0,
      hdrLen: 0,
      gsoSize: 0,
      csumStart: 20,
      csumOffset,
    });
    const none = { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
    assert.equal(f.udp.csum, CSUM_PARTIAL, "a veth keeps a socket's CHECKSUM_PARTIAL");
    assert.deepEqual(f.udp.header, partial(6));
    assert.equal(f.tcpSyn.csum, CSUM_PARTIAL);
    assert.deepEqual(f.tcpSyn.header, partial(16));
    assert.equal(f.udpRaw.csum, CSUM_NONE, "forwarding never verifies a software checksum");
    assert.deepEqual(f.udpRaw.header, none);
    // One UDP_SEGMENT send of 1000 bytes in 100-byte datagrams: one super packet.
    assert.equal(f.udpGso.csum, CSUM_PARTIAL);
    assert.deepEqual(f.udpGso.header, {
      flags: 1,
      gsoType: 5,
      hdrLen: 28,
      gsoSize: 100,
      csumStart: 20,
      csumOffset: 6,
    });
    assert.deepEqual([f.udpGso.size, f.udpGso.udpLength, f.udpGso.l4Length], [1028, 1008, 1008]);
    // IPv6 alike, the checksum starting past the 40-byte fixed header.
    assert.equal(f.udp6?.csum, CSUM_PARTIAL, "forwarded IPv6 UDP should be read");
    assert.deepEqual(f.udp6.header, { ...partial(6), csumStart: 40 });
    assert.equal(f.udpGso6?.csum, CSUM_PARTIAL, "an IPv6 UDP_SEGMENT send should be read");
    assert.deepEqual(f.udpGso6.header, {
      flags: 1,
      gsoType: 5,
      hdrLen: 48,
      gsoSize: 100,
      csumStart: 40,
      csumOffset: 6,
    });
    assert.deepEqual(
      [f.udpGso6.size, f.udpGso6.udpLength, f.udpGso6.l4Length],
      [1048, 1008, 1008],
    );
    for (const [name, read] of Object.entries({ ...f, senderError: undefined })) {
      if (read === undefined) continue;
      assert.equal(read.checksumOk, true, `${name}: checksum (or pseudo-header sum) as stated`);
    }
    if (f.udpRawGro !== undefined) { // ethtool present: GRO verified the datagram
      assert.equal(f.udpRawGro.csum, CSUM_VALID);
      assert.equal(f.udpRawGro.header.flags, 2);
    }
    assert.ok(r.stats.gsoPackets >= 1);
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

/** What mq_probe.ts prints (see there): per queue, per flow, the packets read. */
interface MqReport {
  queues: number;
  packets: number;
  before: number[][];
  writer: number[];
  writesDone: number;
  after: number[][];
  shared: { accepted: number[]; received: number };
  bell: { woke: boolean; read: number };
  workerStats: { read: TunStats; written: number[] }[];
  writtenAfter: number[];
}

Deno.test({
  name: "two queues read by two Workers: flows spread over both, follow the queue written on, " +
    "one queue takes two writers, and a doorbell from the other Worker wakes a wait",
  ignore,
  async fn() {
    const r: MqReport = await runScript(mqProbe, [], "q");
    assert.equal(r.queues, 2);
    const flows = r.before[0].length;
    for (let f = 0; f < flows; f++) {
      const home = r.writer[f] === 1 ? 0 : 1;
      assert.deepEqual(
        [r.before[home][f], r.before[1 - home][f]],
        [r.packets, 0],
        `flow ${f}: all its packets on one queue`,
      );
      // Its reader wrote one reply through the other queue's fd: the kernel moved the flow there.
      assert.deepEqual(
        [r.after[r.writer[f]][f], r.after[1 - r.writer[f]][f]],
        [r.packets, 0],
        `flow ${f}: steered to the queue its reply was written on`,
      );
    }
    const onQueue0 = r.writer.filter((w) => w === 1).length;
    assert.ok(onQueue0 > 0 && onQueue0 < flows, `${flows} flows spread over both queues`);
    console.log(`  flows per queue: ${onQueue0} and ${flows - onQueue0}`);
    assert.equal(r.writesDone, flows);
    // Per Worker, per queue: its replies through the other's queue, and 100 shared through queue 0.
    assert.deepEqual(r.workerStats.map((w) => w.written), [
      [100, onQueue0],
      [flows - onQueue0 + 100, 0],
    ]);
    assert.deepEqual(
      r.shared,
      { accepted: [100, 100], received: 200 },
      "two Workers writing one queue's fd at once lose nothing",
    );
    assert.deepEqual(r.bell, { woke: true, read: 0 }, "the ring, not a packet, ended the wait");
    const reads = r.workerStats.map((w) => w.read.readPackets);
    assert.equal(reads[0] + reads[1], 2 * r.packets * flows, "every packet read once, no other");
    for (const w of r.workerStats) {
      assert.equal(w.read.readErrors, 0);
      assert.equal(w.read.writeErrors, 0);
    }
    assert.deepEqual(r.writtenAfter, [1, 1], "the Workers' close left the device's fds open");
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

Deno.test("a queue with a doorbell wakes on a ring and drains it; without one it does not", () => {
  // Any pollable fd stands in for the queue: an eventfd nobody rings is never readable.
  const idle = Doorbell.open();
  const bell = Doorbell.open();
  const q = TunQueue.fromFd(idle.fd, "kgtidle", 1400, true);
  try {
    assert.equal(q.wait(0), false);
    q.setDoorbell(bell);
    assert.equal(q.wait(0), false, "an unrung bell does not wake");
    bell.ring();
    assert.equal(q.wait(1000), true, "the ring wakes the wait");
    assert.equal(q.wait(0), false, "and was drained");
    bell.ring();
    q.setDoorbell(null);
    assert.equal(q.wait(0), false, "no longer polled");
    q.close(); // a mapped queue leaves the fd open
    idle.ring();
    assert.equal(idle.wait(0), true);
  } finally {
    bell.close();
    idle.close();
  }
  assert.throws(() => TunQueue.fromFd(-1, "kgt", 1400, false), /Cannot map TUN queue fd -1/);
});
