/**
 * Lab test: a locked source learns nothing from the WAN address (TTL=1
 * probes, IP options, `nmap -sO`, closed UDP ports), a forwarded packet loses
 * one hop, the LAN cannot speak for the WAN, and UDP from port 53/123 reaches
 * the appliance's own sockets only as a reply (DNS from its resolver).
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import {
  ALICE,
  curl,
  ipv4,
  knock,
  labSupported,
  macOf,
  rawSend,
  readLog,
  removeTestConfig,
  ROOT,
  sh,
  shOk,
  spawnIn,
  statusSettled,
  tcpSegment,
  until,
  writeTestConfig,
} from "./_helpers.ts";
import { capture, nftCount } from "./_capture.ts";

const C = LAB.client, C2 = LAB.client2, S = LAB.server, W = LAB.wan;
const HELLO_C = `hello from ${S}:8080 to ${C}\n`;

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Alice's sequence (first port included) now, from the knock client. */
async function sequenceNow(): Promise<number[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}src/cli/knock.ts`,
      "--first-port",
      String(ALICE.firstPort),
      "--secret",
      ALICE.secret,
      "--print-sequence",
    ],
  }).output();
  return new TextDecoder().decode(out.stdout).trim().split(/\s+/).map(Number);
}

/** One UDP datagram from `ns` to `host`:`port`; the JSON `_udp_echo.ts` prints. */
async function udpQuery(
  lab: RunningLab,
  ns: "appliance",
  host: string,
  port: number,
): Promise<{ received: number }> {
  const out = await shOk(lab, ns, [
    Deno.execPath(),
    "run",
    "-A",
    `${ROOT}tests/lab/_udp_echo.ts`,
    host,
    String(port),
    "48",
    "2000",
  ], 15);
  return JSON.parse(out.trim());
}

/** A UDP listener (echo) on `ports` in `ns`, started and listening. */
async function udpListener(lab: RunningLab, ns: "client" | "appliance", ports: number[]) {
  const l = spawnIn(lab, ns, [
    Deno.execPath(),
    "run",
    "-A",
    `${ROOT}tests/lab/_udp_listen.ts`,
    ...ports.map(String),
  ], 120);
  assert.ok(await until(() => l.output().includes("listening"), 10000), l.errors());
  return l;
}

Deno.test({
  name: "lab: stealth (TTL=1, IP options, nmap -sO), one hop, LAN spoofing, UDP 53/123 bypass",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await writeTestConfig();
    let lab: RunningLab | null = null;
    let netnsEtc = "";
    try {
      // The appliance's resolver is the client (ip netns exec bind-mounts /etc/netns/NS/).
      lab = await startLab({ config, appliance: false });
      const l = lab;
      netnsEtc = `/etc/netns/${l.names.appliance}`;
      await Deno.mkdir(netnsEtc, { recursive: true });
      await Deno.writeTextFile(`${netnsEtc}/resolv.conf`, `nameserver ${C}\n`);
      await l.startAppliance();

      await t.step("a locked source gets no answer of any kind from the WAN address", async () => {
        const heard = await capture(l, "client2", `ip and src host ${W}`);
        const kernelTried = await nftCount(l, "output", "stealth");
        // TTL 1: the kernel's forward path into the TUN would send time exceeded.
        await sh(l, "client2", ["hping3", "-S", "-p", "52201", "--ttl", "1", "-c", "2", W], 10);
        await sh(l, "client2", ["ping", "-c", "2", "-i", "0.2", "-W", "1", "-t", "1", W], 5);
        // IP options: record route, and a malformed one the kernel would answer with
        // parameter problem.
        await sh(l, "client2", ["ping", "-c", "2", "-i", "0.2", "-W", "1", "-R", W], 5);
        const badOption = new Uint8Array([7, 2, 1, 0]); // record route with length 2 (< 3)
        await rawSend(l, "client2", [
          ipv4({
            src: C2,
            dst: W,
            proto: 6,
            options: badOption,
            payload: tcpSegment(C2, 40001, W, 52201),
          }),
          ipv4({
            src: C2,
            dst: W,
            proto: 6,
            options: badOption,
            payload: tcpSegment(C2, 40002, W, 8443),
          }),
        ]);
        // Closed ports, the management port, a locked UDP forward.
        await sh(l, "client2", ["hping3", "-2", "-p", "9", "-c", "2", "-i", "u200000", W], 5);
        await sh(l, "client2", ["hping3", "-2", "-p", "52203", "-c", "2", "-i", "u200000", W], 5);
        await sh(l, "client2", ["hping3", "-S", "-p", "8443", "-c", "2", "-i", "u200000", W], 5);
        assert.equal(await curl(l, "client2", `http://${W}:52201/`, 2), null);
        const got = await heard.stop();
        assert.deepEqual(got, [], "the WAN address answered");
        assert.ok(
          (await nftCount(l, "output", "stealth")) >= kernelTried + 5,
          "the kernel's ICMP errors (time exceeded, parameter problem) were dropped on output",
        );
      });

      await t.step("nmap -sO sees the host down, and with -Pn no protocol closed", async () => {
        const heard = await capture(l, "client2", `ip and src host ${W}`);
        const protos = "1,2,4,6,17,41,47,50,51,89,103,112,132,136,255";
        const common = ["-n", "-sO", "-p", protos, "--max-retries", "1", "--host-timeout", "30s"];
        const ping = await shOk(l, "client2", ["nmap", ...common, "--disable-arp-ping", W], 45);
        assert.match(ping, /0 hosts up|Host seems down/, ping);
        const pn = await shOk(l, "client2", ["nmap", ...common, "-Pn", W], 45);
        assert.doesNotMatch(pn, /\bclosed\b|\bopen\s/, pn);
        assert.deepEqual(await heard.stop(), []);
      });

      await t.step("a forwarded packet loses one hop, each way", async () => {
        const r = await knock(l, "client", ["--transport", "tcp"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(await curl(l, "client", `http://${W}:52201/`), HELLO_C);
        const atServer = await capture(l, "server", `udp and dst port 7 and src host ${C}`);
        const atClient = await capture(l, "client", `udp and src host ${W} and src port 52203`);
        const sent = ["hping3", "-2", "-p", "52203", "-s", "41234", "-k", "-t", "50", "-c", "2"];
        await sh(l, "client", [...sent, "-i", "u200000", W], 10);
        const there = await atServer.stop(), back = await atClient.stop();
        assert.ok(there.length >= 1 && there.every((p) => p.includes("ttl 49,")), there.join("\n"));
        // The server sends with TTL 64.
        assert.ok(back.length >= 1 && back.every((p) => p.includes("ttl 63,")), back.join("\n"));
      });

      await t.step("the LAN cannot knock (or open flows) in a WAN source's name", async () => {
        const before = await statusSettled(l);
        const spoofedBefore = await nftCount(l, "prerouting", "lan-spoofed");
        const seq = await sequenceNow();
        const packets = [
          ...seq.map((port) =>
            ipv4({ src: C2, dst: W, proto: 6, payload: tcpSegment(C2, 40100, W, port) })
          ),
          ipv4({ src: C2, dst: W, proto: 6, payload: tcpSegment(C2, 40101, W, 52201) }),
          ipv4({ src: LAB.lan, dst: W, proto: 6, payload: tcpSegment(LAB.lan, 40102, W, 41001) }),
        ];
        const mac = await macOf(l, "appliance", "lan0");
        await shOk(l, "server", [
          Deno.execPath(),
          "run",
          "-A",
          `${ROOT}tests/lab/_raw_send.ts`,
          "eth0",
          mac,
          ...packets.map(hex),
        ], 30);
        const spoofed = (await nftCount(l, "prerouting", "lan-spoofed")) - spoofedBefore;
        assert.equal(spoofed, packets.length, "every spoofed packet dropped at prerouting");
        const after = await statusSettled(l);
        assert.equal(after.stats.rx_packets, before.stats.rx_packets, "nothing reached the TUN");
        assert.equal(after.drops.knock ?? 0, before.drops.knock ?? 0);
        // The status line (SIGUSR2) reports the table's drops too.
        const host = (after as unknown as { host: Record<string, number> }).host;
        assert.ok(host["lan-spoofed"] >= packets.length, JSON.stringify(host));
        assert.doesNotMatch(await readLog(l), new RegExp(`ip=${C2.replaceAll(".", "\\.")}`));
        assert.equal(
          await curl(l, "client2", `http://${W}:52201/`, 2),
          null,
          "client2 still locked",
        );
      });

      await t.step(
        "UDP from port 53/123 reaches the appliance's sockets only as a reply",
        async () => {
          const installed = await shOk(l, "appliance", [
            "nft",
            "list",
            "chain",
            "inet",
            "knockgate",
            "input",
          ]);
          assert.match(installed, new RegExp(`udp sport 53 ip saddr ${C.replaceAll(".", "\\.")} `));
          // The appliance's own DNS and NTP: its resolver (the client) and an NTP server answer.
          const servers = await udpListener(l, "client", [53, 123]);
          try {
            assert.ok((await udpQuery(l, "appliance", C, 53)).received > 0, "DNS reply");
            assert.ok((await udpQuery(l, "appliance", C, 123)).received > 0, "NTP reply");
          } finally {
            await servers.stop();
          }
          // Sockets on the appliance host: one in the ephemeral range, one below it.
          const sockets = await udpListener(l, "appliance", [40053, 5353]);
          try {
            const from = (ns: "client" | "client2", sport: number, dport: number) =>
              sh(l, ns, [
                "hping3",
                "-2",
                "-s",
                String(sport),
                "-k",
                "-p",
                String(dport),
                "-c",
                "2",
                "-i",
                "u100000",
                "-d",
                "16",
                W,
              ], 5);
            await from("client2", 53, 40053); // not the resolver
            await from("client", 53, 5353); // the resolver, but not to an ephemeral port
            await from("client", 123, 5353);
            await from("client2", 123, 5353);
            await new Promise((r) => setTimeout(r, 500));
            assert.doesNotMatch(sockets.output(), /got /, sockets.output());
          } finally {
            await sockets.stop();
          }
        },
      );
    } finally {
      await lab?.down();
      await removeTestConfig(config);
      if (netnsEtc) await Deno.remove(netnsEtc, { recursive: true }).catch(() => {});
    }
  },
});
