/**
 * Lab test of the IPv6 data plane (issue 13 item 3) in the dual-stack lab:
 * a pinhole (an open-ports rule to the LAN server's IPv6 address) and a
 * NAT66 forward (the WAN IPv6 address's port 52206 to the server's 8080),
 * both enforcing knocks. Before any knock nmap sees the pinhole filtered;
 * an IPv4 knock opens IPv4 only; a knock over IPv6 (`knock --family 6`)
 * unlocks the client's /64: curl and iperf3 reach the server through the
 * pinhole, nmap sees it open, a second client in the same /64 gets in, an
 * address of another /64 does not; the NAT66 forward answers from the WAN
 * address; a packet too big sent to the WAN address about a NAT66 flow
 * reaches the server translated (its route cache takes the MTU) while
 * neighbour discovery on the WAN still resolves both ways; a packet too big
 * from the client's side about the server's tracked pinhole flow reaches the
 * server, one about no flow does not; TCP through the pinhole, from the LAN
 * out, and a NAT66 UDP flow whose server speaks first go on across a restart
 * and a kill -9. The rules are
 * in the configuration file, so it needs the configuration to take IPv6
 * private addresses (issue 13 item 5).
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB, LAB6 } from "../../scripts/lab/topology.ts";
import {
  addOtherClientPrefix6,
  ALICE,
  type Background,
  CLIENT6_OTHER,
  curl,
  dropDelta,
  echoed,
  knock,
  labSupported,
  readLog,
  removeTestConfig,
  ROOT,
  sh,
  shOk,
  spawnIn,
  status,
  statusWhen,
  until,
  writeTestConfig,
} from "./_helpers.ts";
import { capture } from "./_capture.ts";

const C6 = LAB6.client, C6B = LAB6.client2, S6 = LAB6.server, W6 = LAB6.wan;
/** An address of the client outside its /64 (added by the test). */
const C6_OTHER = CLIENT6_OTHER;

/** The lab configuration with IPv6 on, a pinhole to the server and a NAT66 forward. */
async function pinholeConfig(): Promise<string> {
  const file = await writeTestConfig();
  let text = await Deno.readTextFile(file);
  const edit = (from: string, to: string) => {
    assert.ok(text.includes(from), `the default config changed: ${from}`);
    text = text.replace(from, to);
  };
  const wan = `"addresses": ["198.51.100.1/24"] }]`;
  edit(
    wan,
    `"addresses": ["198.51.100.1/24"], "addresses6": ["${W6}/64"] }],
  "ipv6": { "enabled": true, "lan": { "address": "${LAB6.lan}", "network": "${LAB6.lanNetwork}" } }`,
  );
  edit(
    `"openPorts": []`,
    `"openPorts": [{
    "name": "server6",
    "privateAddress": "${S6}",
    "enforceKnock": true,
    "ports": [{ "protocol": "tcp", "ports": "8080" }, { "protocol": "both", "ports": "5201" }]
  }]`,
  );
  edit(
    `"forwards": [`,
    `"forwards": [
    {
      "name": "web6",
      "protocol": "tcp",
      "publicPorts": "52206",
      "privateAddress": "${S6}",
      "privatePorts": "8080",
      "enforceKnock": true
    },
    {
      "name": "udp6",
      "protocol": "udp",
      "publicPorts": "52207",
      "privateAddress": "${S6}",
      "privatePorts": "7008",
      "enforceKnock": true
    },`,
  );
  await Deno.writeTextFile(file, text);
  return file;
}

/** nmap's verdict on TCP `port` of `target` over IPv6, from `ns`. */
async function nmap6(lab: RunningLab, ns: "client" | "client2", target: string, port: number) {
  const out = await shOk(lab, ns, [
    "nmap",
    "-6",
    "-Pn",
    "-n",
    "-sS",
    "--max-retries",
    "2",
    "--max-rtt-timeout",
    "1000ms",
    "--host-timeout",
    "30s",
    "-p",
    String(port),
    "-oG",
    "-",
    target,
  ], 45);
  return /(\d+)\/(open|filtered|closed)\/tcp/.exec(out)?.[2] ?? out;
}

/** curl over IPv6 to `[addr]:port` from `ns`, optionally from source address `from`. */
function curl6(
  lab: RunningLab,
  ns: "client" | "client2",
  addr: string,
  port: number,
  from?: string,
) {
  const args = from === undefined ? [] : ["--interface", from];
  return sh(
    lab,
    ns,
    ["curl", "-sS", "-g", "-6", "-m", "3", ...args, `http://[${addr}]:${port}/`],
    8,
  );
}

/**
 * Holds a TCP connection from the client to the server's iperf3 port (a
 * tracked pinhole flow), then sends the server, from the client's side, a
 * packet too big quoting the server's segment of that flow (`tracked`) or
 * of a port no flow has; exits after 1 s.
 */
const SEND_PTB = `
import socket, struct, sys, time
server, client, tracked = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
c = socket.create_connection((server, 5201), timeout=3)
lport = c.getsockname()[1] if tracked else 1
tcp = struct.pack("!HHIIBBHHH", 5201, lport, 1, 1, 0x50, 0x10, 65535, 0, 0)
inner = struct.pack("!IHBB", 6 << 28, len(tcp) + 1400, 6, 64)
inner += socket.inet_pton(socket.AF_INET6, server) + socket.inet_pton(socket.AF_INET6, client)
raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
raw.sendto(struct.pack("!BBHI", 2, 0, 0, 1280) + inner + tcp + bytes(64), (server, 0))
time.sleep(1)
c.close()
`;

/**
 * Holds a TCP connection from the client to the NAT66 forward and sends the
 * WAN address, from the client's side, a packet too big (MTU 1280) quoting
 * the forward's next segment to the client (the sequence number the client
 * expects, read in repair mode, so the server's kernel takes it as in its
 * window); exits after 1 s.
 */
const SEND_PTB_NAT66 = `
import socket, struct, sys, time
wan, port, client = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = socket.create_connection((wan, port), timeout=3)
time.sleep(0.3)
c.setsockopt(socket.IPPROTO_TCP, 19, 1)  # TCP_REPAIR
c.setsockopt(socket.IPPROTO_TCP, 20, 1)  # TCP_REPAIR_QUEUE: TCP_RECV_QUEUE
rcv_nxt = struct.unpack("I", c.getsockopt(socket.IPPROTO_TCP, 21, 4))[0]  # TCP_QUEUE_SEQ
c.setsockopt(socket.IPPROTO_TCP, 19, -1)  # TCP_REPAIR_OFF_NO_WP
tcp = struct.pack("!HHIIBBHHH", port, c.getsockname()[1], rcv_nxt, 1, 0x50, 0x10, 65535, 0, 0)
inner = struct.pack("!IHBB", 6 << 28, len(tcp) + 1400, 6, 63)
inner += socket.inet_pton(socket.AF_INET6, wan) + socket.inet_pton(socket.AF_INET6, client)
raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
raw.sendto(struct.pack("!BBHI", 2, 0, 0, 1280) + inner + tcp + bytes(64), (wan, 0))
time.sleep(1)
c.close()
`;

Deno.test({
  name: "lab: IPv6 pinhole and NAT66 forward (knock over IPv6, the /64 policy, ICMPv6 errors)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await pinholeConfig();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config, ipv6: true });
      const l = lab;
      // The lab's servers listen on IPv4; the same on the server's IPv6 address.
      const http = spawnIn(l, "server", [
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}scripts/lab/server.ts`,
        S6,
      ], 300);
      const iperf = spawnIn(l, "server", ["iperf3", "-s", "-B", S6, "-p", "5201"], 300);
      const up = async () =>
        (await sh(l, "server", ["ss", "-Hltn", "sport = :8080"], 5)).stdout.includes(`[${S6}]`);
      assert.ok(await until(up, 15000), "the IPv6 server did not start");
      await addOtherClientPrefix6(l, "client", "appliance");

      await t.step("before a knock the pinhole is filtered and nothing crosses", async () => {
        assert.equal(await nmap6(l, "client", S6, 8080), "filtered");
        assert.notEqual((await curl6(l, "client", S6, 8080)).code, 0);
        const s = await status(l);
        assert.ok((s.drops.locked ?? 0) > 0, JSON.stringify(s.drops));
      });

      await t.step("an IPv4 knock opens IPv4 only", async () => {
        // The previous step (drift -1): the IPv6 knock below uses the current one, which an
        // IPv4 knock of the same step would make a replay (one step unlocks one source).
        const now = Math.floor(Date.now() / 1000);
        if (now % 30 > 26) await new Promise((r) => setTimeout(r, (31 - (now % 30)) * 1000));
        const r = await knock(l, "client", ["--time", String(Math.floor(Date.now() / 1000) - 30)]);
        assert.equal(r.code, 0, r.stderr);
        assert.match((await curl(l, "client", `http://${LAB.wan}:52201/`, 3)) ?? "", /hello from/);
        const before = await status(l);
        assert.notEqual((await curl6(l, "client", S6, 8080)).code, 0, "IPv6 stayed locked");
        const after = await statusWhen(l, (s) => dropDelta(before, s, "locked") > 0);
        assert.ok(dropDelta(before, after, "locked") > 0);
      });

      await t.step("a knock over IPv6 opens the pinhole to the client's /64", async () => {
        const r = await knock(l, "client", ["--family", "6"], ALICE, W6);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout + r.stderr, /IPv6/);
        const body = await curl6(l, "client", S6, 8080);
        assert.equal(body.code, 0, body.stderr);
        assert.equal(body.stdout, `hello from ${S6}:8080 to ${C6}\n`, "no NAT through a pinhole");
        assert.equal(await nmap6(l, "client", S6, 8080), "open");
        assert.ok(
          await until(async () => (await readLog(l)).includes("2001:db8:203::/64"), 5000),
          "the unlock is logged as the /64",
        );
      });

      await t.step("the same /64 is admitted, another /64 is not", async () => {
        const same = await curl6(l, "client2", S6, 8080);
        assert.equal(same.code, 0, same.stderr);
        assert.equal(same.stdout, `hello from ${S6}:8080 to ${C6B}\n`);
        const atServer = await capture(l, "server", `ip6 and src host ${C6_OTHER}`, "eth0", false);
        const before = await status(l);
        const other = await curl6(l, "client", S6, 8080, C6_OTHER);
        assert.notEqual(other.code, 0, "another /64 got in");
        assert.deepEqual(await atServer.stop(), [], "the other /64 reached the server");
        const after = await statusWhen(l, (s) => dropDelta(before, s, "locked") > 0);
        assert.ok(dropDelta(before, after, "locked") > 0);
      });

      await t.step("iperf3 through the pinhole, TCP and UDP", async () => {
        const tcp = await shOk(l, "client", [
          "iperf3",
          "-6",
          "-c",
          S6,
          "-p",
          "5201",
          "-t",
          "2",
          "-J",
        ], 30);
        const bps = JSON.parse(tcp).end.sum_received.bits_per_second as number;
        console.log(`iperf3 TCP over IPv6 through the pinhole: ${(bps / 1e9).toFixed(2)} Gbit/s`);
        assert.ok(bps > 1e6, `${bps} bit/s`);
        const before = await status(l);
        const four = await shOk(
          l,
          "client",
          ["iperf3", "-6", "-c", S6, "-p", "5201", "-t", "2", "-P", "4", "-J"],
          30,
        );
        const bps4 = JSON.parse(four).end.sum_received.bits_per_second as number;
        console.log(`iperf3 TCP over IPv6, 4 streams: ${(bps4 / 1e9).toFixed(2)} Gbit/s`);
        assert.ok(bps4 > 1e6, `${bps4} bit/s`);
        // Only worker 0 judges IPv6: it writes what a tracker handed it through its own queue, so
        // the kernel steers each flow to queue 0 after its first packets instead of handing every
        // packet of the flows it hashed to another queue over for their whole life.
        const after = await status(l);
        const delta = (k: string) =>
          after.queues.map((q, i) => (q[k] ?? 0) - (before.queues[i]?.[k] ?? 0));
        const handed = delta("handed_off_packets").reduce((a, b) => a + b, 0);
        const packets = delta("rx_packets").reduce((a, b) => a + b, 0);
        console.log(`${after.queues.length} queues: ${handed} of ${packets} packets handed off`);
        assert.ok(packets > 1000, `${packets} packets`);
        assert.ok(handed < packets / 20, `${handed} of ${packets} packets handed off`);
        const udp = await shOk(
          l,
          "client",
          ["iperf3", "-6", "-u", "-b", "20M", "-c", S6, "-p", "5201", "-t", "2", "-J"],
          30,
        );
        const sum = JSON.parse(udp).end.sum;
        console.log(`iperf3 UDP over IPv6: ${sum.packets} datagrams, ${sum.lost_packets} lost`);
        assert.ok(sum.packets > 0 && sum.lost_packets < sum.packets / 2, JSON.stringify(sum));
      });

      await t.step("the NAT66 forward answers from the WAN address", async () => {
        const r = await curl6(l, "client", W6, 52206);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `hello from ${S6}:8080 to ${C6}\n`, "the server sees the client");
      });

      await t.step(
        "50 MB through the NAT66 forward (offloaded segments rewritten whole)",
        async () => {
          const bytes = 50_000_000;
          const r = await sh(l, "client", [
            "curl",
            "-sS",
            "-g",
            "-6",
            "-m",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            `http://[${W6}]:52206/?bytes=${bytes}`,
          ], 30);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(Number(r.stdout), bytes);
        },
      );

      await t.step(
        "a packet too big to the WAN address about a NAT66 flow reaches the server translated",
        async () => {
          const route = async () =>
            (await shOk(l, "server", ["ip", "-6", "route", "get", C6])).trim();
          assert.doesNotMatch(await route(), /mtu 1280/);
          const before = await status(l);
          const ptb = `icmp6 and ip6[40] == 2 and src host ${C6} and dst host ${S6}`;
          const atServer = await capture(l, "server", ptb, "eth0", false);
          await shOk(l, "client", ["python3", "-c", SEND_PTB_NAT66, W6, "52206", C6], 10);
          const passed = await atServer.stop();
          assert.equal(passed.length, 1, passed.join("\n"));
          // The server's kernel matched the quoted segment (S6:8080 -> C6) to its socket.
          assert.match(await route(), /mtu 1280/);
          const after = await statusWhen(
            l,
            (s) =>
              (s.stats.icmp_errors_translated ?? 0) > (before.stats.icmp_errors_translated ?? 0),
          );
          assert.ok(
            after.stats.icmp_errors_translated > (before.stats.icmp_errors_translated ?? 0),
          );
        },
      );

      await t.step("neighbour discovery on the WAN still works both ways", async () => {
        await shOk(l, "client", ["ip", "-6", "neigh", "flush", "to", W6, "dev", "eth0"]);
        await shOk(l, "appliance", ["ip", "-6", "neigh", "flush", "to", C6, "dev", "wan0"]);
        const r = await curl6(l, "client", W6, 52206);
        assert.equal(r.code, 0, r.stderr);
        const entry = async (ns: "client" | "appliance", addr: string, dev: string) =>
          (await shOk(l, ns, ["ip", "-6", "neigh", "show", "to", addr, "dev", dev])).trim();
        for (
          const [ns, addr, dev] of [["client", W6, "eth0"], ["appliance", C6, "wan0"]] as const
        ) {
          const e = await entry(ns, addr, dev);
          assert.match(e, /lladdr .* (REACHABLE|STALE|DELAY|PROBE)$/, `${ns}: ${e}`);
        }
      });

      await t.step("from the LAN out: echo and its reply, one hop taken", async () => {
        const atClient = await capture(l, "client", `icmp6 and ip6[40] == 128 and src host ${S6}`);
        const ping = await sh(l, "server", [
          "ping",
          "-6",
          "-n",
          "-c",
          "2",
          "-i",
          "0.2",
          "-W",
          "2",
          C6,
        ], 10);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr);
        const seen = await atClient.stop();
        assert.ok(seen.length >= 2, seen.join("\n"));
        // The server's 64 arrives as 63: the appliance is one router.
        for (const line of seen) assert.match(line, /hlim 63/);
      });

      await t.step(
        "a packet too big about a tracked flow passes; one about no flow does not",
        async () => {
          const before = await status(l);
          const ptb = `icmp6 and ip6[40] == 2 and src host ${C6}`;
          let atServer = await capture(l, "server", ptb, "eth0", false);
          await shOk(l, "client", ["python3", "-c", SEND_PTB, S6, C6, "1"], 10);
          const passed = await atServer.stop();
          assert.equal(passed.length, 1, passed.join("\n"));
          const mid = await statusWhen(
            l,
            (s) =>
              (s.stats.icmp_errors_translated ?? 0) > (before.stats.icmp_errors_translated ?? 0),
          );
          assert.ok(mid.stats.icmp_errors_translated > (before.stats.icmp_errors_translated ?? 0));
          atServer = await capture(l, "server", ptb, "eth0", false);
          await shOk(l, "client", ["python3", "-c", SEND_PTB, S6, C6, "0"], 10);
          assert.deepEqual(await atServer.stop(), [], "an error about no flow reached the server");
          const after = await statusWhen(l, (s) => dropDelta(mid, s, "icmp-unmatched") > 0);
          assert.ok(dropDelta(mid, after, "icmp-unmatched") > 0);
        },
      );

      await t.step(
        "the status counts IPv6 ids, no bad-version drop, trackers' handoffs",
        async () => {
          const s = await status(l);
          console.log(`conntrack ${JSON.stringify(s.conntrack)}`);
          assert.equal(s.drops["bad-version"] ?? 0, 0);
          // With more than one queue the trackers handed their IPv6 to worker 0.
          if (s.queues.length > 1) {
            assert.ok(s.stats.handed_off_packets > 0, JSON.stringify(s.stats));
          }
        },
      );
      await t.step(
        "IPv6 through the pinhole, from the LAN out and a NAT66 server's UDP survive a restart and a kill -9",
        async () => {
          await iperf.stop();
          const ECHO = `${ROOT}tests/lab/_echo_stream.ts`;
          const deno = [Deno.execPath(), "run", "-A", ECHO];
          const UDP = [Deno.execPath(), "run", "-A", `${ROOT}tests/lab/_udp_server_first.ts`];
          // The server sends every 100 ms once it has heard the client, which only answers:
          // after a restart the server's datagram crosses first, and must leave from W6:52207
          // (the client's socket is connected to it) for the client to answer.
          const udpServer = spawnIn(l, "server", [...UDP, "serve", S6, "7008", "100"], 300);
          const servers = [
            spawnIn(l, "server", [...deno, "serve", S6, "5201"], 300),
            spawnIn(l, "client", [...deno, "serve", C6, "7007"], 300),
            udpServer,
          ];
          const streams = {
            pinhole: null as Background | null,
            outbound: null as Background | null,
          };
          let udpClient: Background | null = null;
          const udpEchoes = () =>
            Number(/echoed (\d+)\n(?![^]*echoed)/.exec(udpServer.output())?.[1] ?? 0);
          const udpGoesOn = async (when: string) => {
            const from = udpEchoes();
            assert.ok(
              await until(() => udpEchoes() >= from + 5, 30000),
              `NAT66 UDP ${when}: ${from} -> ${udpEchoes()} echoes; ${udpClient!.output()}`,
            );
          };
          try {
            for (const s of servers) {
              assert.ok(await until(() => s.output().includes("listening"), 15000), s.errors());
            }
            udpClient = spawnIn(l, "client", [...UDP, "answer", W6, "52207"], 300);
            await udpGoesOn("before the restart");
            assert.match(udpServer.output(), new RegExp(`client ${C6}:`), "NAT66 keeps the source");
            streams.pinhole = spawnIn(l, "client", [...deno, "connect", S6, "5201"], 300, {
              stdin: true,
            });
            streams.outbound = spawnIn(l, "server", [...deno, "connect", C6, "7007"], 300, {
              stdin: true,
            });
            let total = 0;
            const round = async (between: () => Promise<void> = async () => {}) => {
              total += 2000;
              for (const s of Object.values(streams)) await s!.write("2000\n");
              await between();
              for (const [name, s] of Object.entries(streams)) await echoed(s!, total, name);
            };
            await round();
            await l.stopAppliance("SIGTERM");
            await round(() => l.startAppliance());
            await udpGoesOn("after SIGTERM");
            await round();
            await l.stopAppliance("SIGKILL");
            await round(() => l.startAppliance());
            await udpGoesOn("after kill -9");
            await round();
            const s = await status(l);
            assert.ok(s.stats.tcp_picked_up >= 2, JSON.stringify(s.stats));
          } finally {
            const all = [...servers, streams.pinhole, streams.outbound, udpClient];
            for (const b of all) await b?.stop();
          }
        },
      );

      await http.stop();
      await iperf.stop();
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
