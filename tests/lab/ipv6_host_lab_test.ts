/**
 * Lab test of the host side of IPv6 (issue 13 item 2) in the dual-stack lab:
 * with `ipv6.enabled` and `--routing`, the TUN keeps IPv6 and IPv6 crossing
 * the appliance is steered into it (no rule opens anything to the server, so
 * the IPv6 data plane drops it as `no-rule`, and the server sees nothing; the
 * pinhole lab test, `ipv6_pinhole_lab_test.ts`, opens one); neighbour
 * discovery with the client and the server, and a router advertisement on
 * the WAN, stay with the kernel; after SIGKILL nothing IPv6 crosses and the
 * fail-closed table's forward chain counts it.
 */
import assert from "node:assert/strict";
import { type RunningLab, startLab } from "../../scripts/lab/appliance.ts";
import { LAB6, type LabNames } from "../../scripts/lab/topology.ts";
import {
  labSupported,
  removeTestConfig,
  sh,
  shOk,
  type Status,
  statusWhen,
  until,
  writeTestConfig,
} from "./_helpers.ts";
import { capture, failClosedInstalled, nftCount } from "./_capture.ts";

const C6 = LAB6.client, S6 = LAB6.server;

/** The lab's default configuration with IPv6 on: the WAN address and the LAN prefix of `LAB6`. */
async function ipv6Config(): Promise<string> {
  const file = await writeTestConfig();
  const text = await Deno.readTextFile(file);
  const wan = `"addresses": ["198.51.100.1/24"] }]`;
  assert.ok(text.includes(wan), "the default wan line changed");
  await Deno.writeTextFile(
    file,
    text.replace(
      wan,
      `"addresses": ["198.51.100.1/24"], "addresses6": ["${LAB6.wan}/64"] }],
  "ipv6": { "enabled": true, "lan": { "address": "${LAB6.lan}", "network": "${LAB6.lanNetwork}" } }`,
    ),
  );
  return file;
}

/** The client tries the server over IPv6: TCP, ICMPv6 echo, UDP; none may succeed. */
async function tryCrossing(lab: RunningLab): Promise<void> {
  const tcp = await sh(lab, "client", ["nc", "-6", "-z", "-w", "2", S6, "8080"], 6);
  assert.notEqual(tcp.code, 0, "TCP over IPv6 to the LAN server connected");
  const ping = await sh(lab, "client", ["ping", "-6", "-n", "-c", "2", "-i", "0.2", "-W", "1", S6]);
  assert.notEqual(ping.code, 0, "the LAN server answered an IPv6 echo");
  await sh(lab, "client", ["sh", "-c", `echo six | nc -6 -u -w 1 ${S6} 7`], 5);
}

/**
 * `ns` flushes its neighbour cache, pings `addr` (an answer is not needed)
 * and returns its cache entry for `addr` if REACHABLE: a solicited
 * advertisement came back (STALE would be an entry learnt from the peer's
 * own solicitation).
 */
async function resolves(lab: RunningLab, ns: keyof LabNames, addr: string) {
  await sh(lab, ns, ["ip", "-6", "neigh", "flush", "all"], 5);
  await sh(lab, ns, ["ping", "-6", "-n", "-c", "1", "-W", "1", addr], 5);
  const out = (await sh(lab, ns, ["ip", "-6", "neigh", "show", addr], 5)).stdout;
  return /lladdr \S+ .*REACHABLE/.test(out) ? out.trim() : null;
}

/** A router advertisement from the client's link-local address to all nodes (hop limit 255). */
const SEND_RA = `
import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
# type 134, code 0, checksum (the kernel's), hop limit 64, flags 0, router lifetime 600 s
s.sendto(struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 600, 0, 0),
         ("ff02::1", 0, 0, socket.if_nametoindex("eth0")))
`;

Deno.test({
  name: "lab: IPv6 host side (steered into the TUN and dropped, NDP and RAs kept, fail closed)",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const config = await ipv6Config();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config, ipv6: true });
      const l = lab;

      await t.step("the TUN keeps IPv6; IPv6 is steered, forwarding on, RAs heard", async () => {
        const sysctl = await shOk(l, "appliance", [
          "sysctl",
          "-n",
          "net.ipv6.conf.kn0.disable_ipv6",
          "net.ipv6.conf.all.forwarding",
          "net.ipv6.conf.wan0.accept_ra",
        ]);
        assert.deepEqual(sysctl.trim().split("\n"), ["0", "1", "2"]);
        const rules = await shOk(l, "appliance", ["ip", "-6", "rule"]);
        assert.match(rules, /^15:\s+from all iif lan0 lookup 100 proto 75$/m);
        assert.match(rules, /^22:\s+from all iif wan0 ipproto tcp lookup 100 proto 75$/m);
        assert.match(rules, /^5:\s+from all to ff00::\/8 lookup local proto 75$/m);
        assert.ok(await failClosedInstalled(l));
      });

      await t.step("IPv6 WAN->LAN reaches the TUN, counted, and is dropped there", async () => {
        const before = await statusWhen(l, () => true);
        const atServer = await capture(l, "server", `ip6 and src host ${C6}`, "eth0", false);
        await tryCrossing(l);
        const grew = (s: Status, b: Status) => ({
          read: (s.device.ipv6Packets ?? 0) - (b.device.ipv6Packets ?? 0),
          dropped: (s.drops["no-rule"] ?? 0) - (b.drops["no-rule"] ?? 0),
        });
        // A TCP SYN or two, two echo requests and a datagram at least.
        const after = await statusWhen(l, (s) => grew(s, before).dropped >= 4);
        const g = grew(after, before);
        console.log(`IPv6 read from the TUN ${g.read}, dropped as no-rule ${g.dropped}`);
        assert.ok(g.read >= 4, `IPv6 packets read from the TUN: ${JSON.stringify(g)}`);
        assert.ok(g.dropped >= 4, `IPv6 packets dropped as no-rule: ${JSON.stringify(g)}`);
        assert.equal(after.drops["bad-version"] ?? 0, 0, "IPv6 is parsed, not refused");
        assert.deepEqual(await atServer.stop(), [], "IPv6 from the WAN reached the LAN server");
      });

      await t.step(
        "NDP with the client and the server, a router advertisement on the WAN",
        async () => {
          // The client resolves the WAN address (its echo goes unanswered: stealth), the appliance
          // the client (the advertisement comes back to the WAN address), and on the LAN both ways.
          assert.ok(await resolves(l, "client", LAB6.wan), "the client resolved the WAN address");
          assert.ok(await resolves(l, "appliance", C6), "the appliance resolved the client");
          assert.ok(await resolves(l, "server", LAB6.lan), "the server resolved the LAN address");
          assert.ok(await resolves(l, "appliance", S6), "the appliance resolved the server");
          // The LAN reaches the appliance's LAN address.
          await shOk(l, "server", ["ping", "-6", "-n", "-c", "1", "-W", "2", LAB6.lan], 5);
          // With forwarding on, RAs still configure the WAN (accept_ra 2).
          await shOk(l, "client", ["python3", "-c", SEND_RA], 5);
          const route = async () =>
            (await sh(l, "appliance", ["ip", "-6", "route", "show", "default"], 5)).stdout;
          assert.ok(
            await until(async () => /via fe80::\S+ dev wan0 proto ra/.test(await route()), 3000),
            `no default route from the RA: ${await route()}`,
          );
        },
      );

      await t.step(
        "after SIGKILL nothing IPv6 crosses, and the forward chain counts it",
        async () => {
          await l.stopAppliance("SIGKILL");
          assert.ok(await failClosedInstalled(l), "the table outlives the process");
          assert.match(await shOk(l, "appliance", ["ip", "-6", "rule"]), /lookup 100/);
          const before = await nftCount(l, "forward", "not-through-tun");
          const atServer = await capture(l, "server", `ip6 and src host ${C6}`, "eth0", false);
          const atClient = await capture(l, "client", `ip6 and src host ${S6}`, "eth0", false);
          await tryCrossing(l);
          const back = await sh(l, "server", ["ping", "-6", "-n", "-c", "1", "-W", "1", C6], 5);
          assert.notEqual(back.code, 0, "the LAN server reached the client");
          assert.deepEqual(await atServer.stop(), [], "IPv6 from the WAN reached the LAN server");
          assert.deepEqual(await atClient.stop(), [], "IPv6 from the LAN reached the client");
          const dropped = (await nftCount(l, "forward", "not-through-tun")) - before;
          console.log(`after SIGKILL the forward chain dropped ${dropped} IPv6 packets`);
          assert.ok(dropped >= 5, `the forward chain counted ${dropped} packets`);
        },
      );
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});

Deno.test({
  name: "lab: IPv6 disabled (the default) in the dual-stack lab: nothing IPv6 crosses, as before",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const config = await writeTestConfig();
    let lab: RunningLab | null = null;
    try {
      lab = await startLab({ config, ipv6: true });
      const l = lab;
      const sysctl = await shOk(l, "appliance", [
        "sysctl",
        "-n",
        "net.ipv6.conf.kn0.disable_ipv6",
        "net.ipv6.conf.all.forwarding",
      ]);
      assert.deepEqual(sysctl.trim().split("\n"), ["1", "0"]);
      assert.equal((await shOk(l, "appliance", ["ip", "-6", "rule"])).includes("proto 75"), false);
      const before = await nftCount(l, "forward", "not-through-tun");
      const atServer = await capture(l, "server", `ip6 and src host ${C6}`, "eth0", false);
      await tryCrossing(l);
      assert.deepEqual(await atServer.stop(), [], "IPv6 from the WAN reached the LAN server");
      // Forwarding is off, so the kernel drops it before the forward chain sees it.
      assert.equal((await nftCount(l, "forward", "not-through-tun")) - before, 0);
    } finally {
      await lab?.down();
      await removeTestConfig(config);
    }
  },
});
