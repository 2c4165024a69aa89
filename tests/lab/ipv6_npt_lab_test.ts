/**
 * Lab test of NPTv6 (RFC 6296, issue 13 item 3) in the dual-stack lab: the
 * uplink translates the LAN prefix 2001:db8:192::/64 to the outside prefix
 * 2001:db8:199::/64, which the clients route via the appliance's WAN
 * address (as an ISP routes a delegated prefix to its customer's router; the
 * outside prefix is on no link). The server's connections out arrive from
 * its outside address; a pinhole (an open-ports rule to the server, knock
 * enforced) is reached at the outside address: filtered before a knock,
 * open to the knocking /64 after `knock --family 6` (curl, nc over UDP),
 * not to another /64; both kinds of flow survive a restart (loose pickup).
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB6 } from "../../scripts/lab/topology.ts";
import {
  addOtherClientPrefix6,
  ALICE,
  type Background,
  CLIENT6_OTHER,
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
const OUTSIDE = "2001:db8:199::/64";
/**
 * The server's outside address: the prefix swapped, and sum(inside prefix) -
 * sum(outside prefix) (0x192 - 0x199, ones' complement 0xfff8) added to the
 * first interface-identifier word, so the checksums stay right (RFC 6296 §3.5).
 */
const O6 = "2001:db8:199:0:fff8::12";
/** An address of the client outside its /64 (added by the test). */
const C6_OTHER = CLIENT6_OTHER;

/** The lab configuration with IPv6 on, NPTv6 on the uplink and a pinhole to the server. */
async function nptConfig(): Promise<string> {
  const file = await writeTestConfig();
  let text = await Deno.readTextFile(file);
  const edit = (from: string, to: string) => {
    assert.ok(text.includes(from), `the default config changed: ${from}`);
    text = text.replace(from, to);
  };
  edit(
    `"addresses": ["198.51.100.1/24"] }]`,
    `"addresses": ["198.51.100.1/24"], "addresses6": ["${W6}/64"],
    "npt6": { "outside": "${OUTSIDE}" } }],
  "ipv6": { "enabled": true, "lan": { "address": "${LAB6.lan}", "network": "${LAB6.lanNetwork}" } }`,
  );
  edit(
    `"openPorts": []`,
    `"openPorts": [{
    "name": "server6",
    "privateAddress": "${S6}",
    "enforceKnock": true,
    "ports": [{ "protocol": "tcp", "ports": "8080" }, { "protocol": "tcp", "ports": "5201" },
      { "protocol": "udp", "ports": "7" }]
  }]`,
  );
  await Deno.writeTextFile(file, text);
  return file;
}

/** nmap's verdict on TCP `port` of `target` over IPv6, from the client. */
async function nmap6(lab: RunningLab, target: string, port: number) {
  const out = await shOk(lab, "client", [
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
function curl6(lab: RunningLab, ns: "client" | "client2" | "server", addr: string, from?: string) {
  const args = from === undefined ? [] : ["--interface", from];
  return sh(lab, ns, ["curl", "-sS", "-g", "-6", "-m", "3", ...args, `http://[${addr}]:8080/`], 8);
}

Deno.test({
  name: "lab: NPTv6 on the uplink (outside address out, a pinhole at it after a knock, restart)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await nptConfig();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config, ipv6: true });
      const l = lab;
      for (const ns of ["client", "client2"] as const) {
        await shOk(l, ns, ["ip", "-6", "route", "add", OUTSIDE, "via", W6, "dev", "eth0"]);
      }
      const server = ["run", "-A", `${ROOT}scripts/lab/server.ts`];
      const http = spawnIn(l, "server", [Deno.execPath(), ...server, S6], 300);
      const atClient = spawnIn(l, "client", [Deno.execPath(), ...server, C6], 300);
      const listening = (ns: "server" | "client", addr: string) => async () =>
        (await sh(l, ns, ["ss", "-Hltn", "sport = :8080"], 5)).stdout.includes(`[${addr}]`);
      assert.ok(await until(listening("server", S6), 15000), "the IPv6 server did not start");
      assert.ok(await until(listening("client", C6), 15000), "the client's server did not start");

      await addOtherClientPrefix6(l, "client", "appliance");

      await t.step("the server's connection out arrives from its outside address", async () => {
        const r = await curl6(l, "server", C6);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `hello from ${C6}:8080 to ${O6}\n`);
        const seen = await capture(l, "client", `icmp6 and ip6[40] == 128 and src host ${O6}`);
        const ping = await sh(l, "server", ["ping", "-6", "-n", "-c", "2", "-i", "0.2", C6], 10);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr);
        const lines = await seen.stop();
        assert.ok(lines.length >= 2, lines.join("\n"));
        for (const line of lines) assert.match(line, /hlim 63/, "one router on the way");
      });

      await t.step("before a knock the pinhole at the outside address is filtered", async () => {
        const before = await status(l);
        assert.equal(await nmap6(l, O6, 8080), "filtered");
        assert.notEqual((await curl6(l, "client", O6)).code, 0);
        const after = await statusWhen(l, (s) => dropDelta(before, s, "locked") > 0);
        assert.ok(dropDelta(before, after, "locked") > 0, JSON.stringify(after.drops));
      });

      await t.step("after a knock over IPv6 curl and nc reach the server there", async () => {
        const r = await knock(l, "client", ["--family", "6"], ALICE, W6);
        assert.equal(r.code, 0, r.stderr);
        const body = await curl6(l, "client", O6);
        assert.equal(body.code, 0, body.stderr);
        assert.equal(body.stdout, `hello from ${S6}:8080 to ${C6}\n`, "the server sees the client");
        assert.equal(await nmap6(l, O6, 8080), "open");
        const logged = `->[${O6}]:8080 #[${S6}]:8080`;
        assert.ok(await until(async () => (await readLog(l)).includes(logged), 5000), logged);
        const udp = await sh(l, "client", [
          "sh",
          "-c",
          `echo npt-echo | nc -6 -u -w 2 ${O6} 7`,
        ], 8);
        assert.equal(udp.stdout.trim(), "npt-echo", udp.stderr);
        const same = await curl6(l, "client2", O6);
        assert.equal(same.stdout, `hello from ${S6}:8080 to ${C6B}\n`, "the same /64");
      });

      await t.step("another /64 stays out", async () => {
        const atServer = await capture(l, "server", `ip6 and src host ${C6_OTHER}`, "eth0", false);
        const before = await status(l);
        assert.notEqual((await curl6(l, "client", O6, C6_OTHER)).code, 0, "another /64 got in");
        assert.deepEqual(await atServer.stop(), [], "the other /64 reached the server");
        const after = await statusWhen(l, (s) => dropDelta(before, s, "locked") > 0);
        assert.ok(dropDelta(before, after, "locked") > 0);
      });

      await t.step("both directions' flows survive a restart (loose pickup)", async () => {
        const ECHO = `${ROOT}tests/lab/_echo_stream.ts`;
        const deno = [Deno.execPath(), "run", "-A", ECHO];
        const servers = [
          spawnIn(l, "server", [...deno, "serve", S6, "5201"], 300),
          spawnIn(l, "client", [...deno, "serve", C6, "7007"], 300),
        ];
        const streams = { pinhole: null as Background | null, outbound: null as Background | null };
        try {
          for (const s of servers) {
            assert.ok(await until(() => s.output().includes("listening"), 15000), s.errors());
          }
          streams.pinhole = spawnIn(l, "client", [...deno, "connect", O6, "5201"], 300, {
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
          assert.match(servers[0].output(), new RegExp(`accepted \\[?${C6}\\]?:`), "no NAT in");
          assert.match(servers[1].output(), new RegExp(`accepted \\[?${O6}\\]?:`), "outside out");
          await l.stopAppliance("SIGTERM");
          await round(() => l.startAppliance());
          await round();
          const s = await status(l);
          assert.ok(s.stats.tcp_picked_up >= 2, JSON.stringify(s.stats));
        } finally {
          for (const b of [...servers, streams.pinhole, streams.outbound]) await b?.stop();
        }
      });

      await http.stop();
      await atClient.stop();
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
