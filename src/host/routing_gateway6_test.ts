import assert from "node:assert/strict";
import { LanEgress6 } from "./lan_egress6.ts";
import {
  clearSteeringCommands,
  failClosedRuleset,
  lanEgress6Commands,
  lanEgress6Uplink,
  localBypassCommands,
  NFT_APPLY,
  routingCommands,
  type RoutingPlan,
  unroutingCommands,
} from "./routing.ts";
import { run } from "./run.ts";

/** Two ISPs with IPv6: isp-a's router link-local on wan0, isp-b's a static next hop. */
const PLAN: RoutingPlan = {
  tun: "kn0",
  uplinks: [{
    name: "isp-a",
    interface: "wan0",
    addresses: [{ address: "198.51.100.1", network: "198.51.100.0/26" }],
    addresses6: [
      { address: "2001:db8:a::1", network: "2001:db8:a::/64" },
      { address: "2001:db8:a::2", network: "2001:db8:a::/64" },
    ],
    gateway: "198.51.100.62",
    gateway6: "fe80::1",
    probe6: { target: "fe80::1" },
    table: 201,
  }, {
    name: "isp-b",
    interface: "wan1",
    addresses: [{ address: "198.51.100.65", network: "198.51.100.64/26" }],
    addresses6: [{ address: "2001:db8:b::1", network: "2001:db8:b::/64" }],
    gateway: "198.51.100.126",
    gateway6: "2001:db8:b::fe",
    probe6: { target: "2001:db8:b::fe" },
    table: 202,
  }],
  lanInterface: "lan0",
  lanAddress: "192.0.2.1",
  lanNetwork: "192.0.2.0/24",
  resolvers: ["198.51.100.53", "2001:db8:a::53"],
  ephemeralPorts: [32768, 60999],
  ipv6: { enabled: true, lan: { address: "2001:db8:192::1", network: "2001:db8:192::/64" } },
  masquerade: ["isp-a", "isp-b"],
};

const text = (cmds: string[][]) => cmds.map((c) => c.join(" "));

Deno.test("gateway6: each uplink's IPv6 table and rules by source, the LAN prefix by the first", () => {
  const six = text(routingCommands(PLAN)).filter((c) =>
    c.startsWith("ip -6") && /table 20[12]|lookup (20[12]|main)/.test(c)
  );
  assert.deepEqual(six, [
    "ip -6 rule add pref 200 to 2001:db8:192::/64 lookup main protocol 75",
    "ip -6 route replace 2001:db8:a::/64 dev wan0 table 201 proto 75",
    "ip -6 route replace default via fe80::1 dev wan0 table 201 proto 75",
    "ip -6 rule add pref 1000 from 2001:db8:a::1 lookup 201 protocol 75",
    "ip -6 rule add pref 1000 from 2001:db8:a::2 lookup 201 protocol 75",
    "ip -6 route replace 2001:db8:b::/64 dev wan1 table 202 proto 75",
    "ip -6 route replace default via 2001:db8:b::fe dev wan1 table 202 proto 75",
    "ip -6 rule add pref 1001 from 2001:db8:b::1 lookup 202 protocol 75",
    "ip -6 rule add pref 1100 from 2001:db8:192::/64 lookup 201 protocol 75",
  ]);
  // Before forwarding, as every steering rule.
  const all = text(routingCommands(PLAN));
  assert.ok(
    all.indexOf("ip -6 rule add pref 1100 from 2001:db8:192::/64 lookup 201 protocol 75") <
      all.indexOf("sysctl -qw net.ipv6.conf.all.forwarding=1"),
  );
});

Deno.test("gateway6: none, or IPv6 off, installs no IPv6 table (the main table routes, as before)", () => {
  const none: RoutingPlan = {
    ...PLAN,
    uplinks: PLAN.uplinks.map((u) => ({ ...u, gateway6: null })),
  };
  const off: RoutingPlan = { ...PLAN, ipv6: { ...PLAN.ipv6!, enabled: false } };
  for (const p of [none, off]) {
    assert.ok(
      !text(routingCommands(p)).some((c) => /^ip -6 .*(table 20|lookup 20|pref 1100)/.test(c)),
    );
    assert.equal(lanEgress6Uplink(p, [true, true]), null);
    assert.deepEqual(lanEgress6Commands(p, 201, 202).length, p === off ? 0 : 2);
  }
});

Deno.test("gateway6: the LAN's egress uplink follows the masquerade order and IPv6 health", () => {
  const pick = (up: boolean[], p = PLAN) => lanEgress6Uplink(p, up)?.name ?? null;
  assert.equal(pick([true, true]), "isp-a");
  assert.equal(pick([false, true]), "isp-b");
  assert.equal(pick([false, false]), "isp-a", "all down: the first with a gateway6");
  assert.equal(pick([true, true], { ...PLAN, masquerade: ["isp-b", "isp-a"] }), "isp-b");
  assert.equal(pick([true, false], { ...PLAN, masquerade: ["isp-b"] }), "isp-b");
  const onlyB: RoutingPlan = {
    ...PLAN,
    uplinks: [{ ...PLAN.uplinks[0], gateway6: null }, PLAN.uplinks[1]],
  };
  assert.equal(pick([true, false], onlyB), "isp-b");
  // The move: the new rule before the old one goes, so the prefix is never without one.
  assert.deepEqual(text(lanEgress6Commands(PLAN, 201, 202)), [
    "ip -6 rule add pref 1100 from 2001:db8:192::/64 lookup 202 protocol 75",
    "ip -6 rule del pref 1100 from 2001:db8:192::/64 lookup 201",
  ]);
  assert.deepEqual(lanEgress6Commands(PLAN, 202, 202), []);
});

Deno.test("gateway6: the input chain takes the probes' echo replies and IPv6 DNS replies only", () => {
  const input = failClosedRuleset(PLAN).match(/chain input \{\n([\s\S]*?)\n {2}\}/)![1]
    .split("\n").map((l) => l.trim());
  assert.deepEqual(input.filter((l) => /dns-reply|probe6-reply/.test(l)), [
    'iifname { "wan0", "wan1" } udp sport 53 ip saddr { 198.51.100.53 } udp dport 32768-60999 accept comment "dns-reply"',
    'iifname { "wan0", "wan1" } udp sport 53 ip6 saddr { 2001:db8:a::53 } udp dport 32768-60999 accept comment "dns-reply"',
    'iifname "wan0" ip6 saddr fe80::1 ip6 daddr 2001:db8:a::1 icmpv6 type echo-reply accept comment "probe6-reply"',
    'iifname "wan1" ip6 saddr 2001:db8:b::fe ip6 daddr 2001:db8:b::1 icmpv6 type echo-reply accept comment "probe6-reply"',
  ]);
  // Before the drop of everything else from the WAN.
  assert.ok(
    input.findIndex((l) => l.includes("probe6-reply")) <
      input.findIndex((l) => l.includes("wan-input")),
  );
  const v6only = failClosedRuleset({ ...PLAN, resolvers: ["2001:db8:a::53"] });
  assert.doesNotMatch(v6only, /udp sport 53 ip saddr/);
  assert.match(v6only, /udp sport 53 ip6 saddr \{ 2001:db8:a::53 \}/);
});

Deno.test("gateway6: the LAN egress rule moves on the IPv6 probe's events once installed, and says so", async () => {
  const ran: string[] = [], said: string[] = [];
  const egress = new LanEgress6(PLAN, (argv) => {
    ran.push(argv.join(" "));
    return Promise.resolve({ code: 0, stderr: "" });
  }, (l) => said.push(l));
  assert.equal(egress.uplink, "isp-a");
  // Before the rules are installed nothing runs; a change is applied once they are.
  egress.onEvents([{ type: "uplink-down", uplink: "isp-b", family: "ipv6" }]);
  egress.onEvents([{ type: "uplink-up", uplink: "isp-b", family: "ipv6" }]);
  await egress.settled();
  assert.deepEqual(ran, []);
  egress.installed();
  // The IPv4 probe's events do not move it.
  egress.onEvents([{ type: "uplink-down", uplink: "isp-a" }]);
  egress.onEvents([{ type: "uplink-down", uplink: "isp-a", family: "ipv6" }]);
  await egress.settled();
  assert.equal(egress.uplink, "isp-b");
  egress.onEvents([{ type: "uplink-down", uplink: "isp-b", family: "ipv6" }]);
  egress.onEvents([{ type: "uplink-up", uplink: "isp-a", family: "ipv6" }]);
  await egress.settled();
  assert.deepEqual(ran, [
    "ip -6 rule add pref 1100 from 2001:db8:192::/64 lookup 202 protocol 75",
    "ip -6 rule del pref 1100 from 2001:db8:192::/64 lookup 201",
    "ip -6 rule add pref 1100 from 2001:db8:192::/64 lookup 201 protocol 75",
    "ip -6 rule del pref 1100 from 2001:db8:192::/64 lookup 202",
  ]);
  assert.deepEqual(said, [
    "routing: LAN IPv6 egress by uplink isp-b (table 202, rule pref 1100): an IPv6 gateway before it is down",
    "routing: LAN IPv6 egress by uplink isp-a (table 201, rule pref 1100): the first uplink's IPv6 gateway answers again",
  ]);
  // Stopped: the rules are about to be cleared; nothing moves any more.
  await egress.stop();
  egress.onEvents([{ type: "uplink-down", uplink: "isp-a", family: "ipv6" }]);
  await egress.settled();
  assert.equal(ran.length, 4);
});

Deno.test({
  name: "gateway6 in a namespace: replies by uplink, the LAN prefix moved, all cleared on stop",
  ignore: Deno.uid() !== 0 ||
    (await run(["sh", "-c", "command -v nft"]).catch(() => null))?.code !== 0,
  fn: async () => {
    const ns = `kgg6-${Deno.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    const inNs = (argv: string[]) => run(["ip", "netns", "exec", ns, ...argv]);
    const sh = async (script: string) => {
      const r = await inNs(["sh", "-ec", script]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    assert.equal((await run(["ip", "netns", "add", ns])).code, 0);
    try {
      await sh(`ip link set lo up
        for i in wan0 wan1 lan0; do
          ip link add $i type veth peer name \${i}p; ip link set $i up; ip link set \${i}p up
        done
        ip addr add 198.51.100.1/26 dev wan0; ip addr add 198.51.100.65/26 dev wan1
        ip addr add 192.0.2.1/24 dev lan0
        ip -6 addr add 2001:db8:a::1/64 dev wan0 nodad; ip -6 addr add 2001:db8:a::2/64 dev wan0 nodad
        ip -6 addr add 2001:db8:b::1/64 dev wan1 nodad
        ip -6 addr add 2001:db8:192::1/64 dev lan0 nodad
        ip tuntap add dev kn0 mode tun; ip link set kn0 up`);
      const r = await run(["ip", "netns", "exec", ns, ...NFT_APPLY], failClosedRuleset(PLAN));
      assert.equal(r.code, 0, r.stderr);
      for (const c of clearSteeringCommands(PLAN)) await inNs(c);
      for (const c of [...routingCommands(PLAN), ...localBypassCommands(PLAN)]) {
        const out = await inNs(c);
        assert.equal(out.code, 0, `${c.join(" ")}: ${out.stderr}`);
      }
      // The main table has no IPv6 default route: only the rules by source reach a client.
      const client = "2001:db8:203::10", lanHost = "2001:db8:192::12";
      const get = (args: string) => sh(`ip -6 route get ${args}`);
      assert.match(
        await get(`${client} from 2001:db8:b::1`),
        /via 2001:db8:b::fe dev wan1 table 202/,
      );
      assert.match(await get(`${client} from 2001:db8:a::2`), /via fe80::1 dev wan0 table 201/);
      // What the process writes into the TUN from a LAN host: by the LAN egress uplink.
      assert.match(
        await get(`${client} from ${lanHost} iif kn0`),
        /via fe80::1 dev wan0 table 201/,
      );
      // A NAT66 reply toward the LAN (hairpin) stays on the LAN.
      assert.match(await get(`${lanHost} from 2001:db8:b::1 iif kn0`), /dev lan0/);
      for (const c of lanEgress6Commands(PLAN, 201, 202)) {
        const out = await inNs(c);
        assert.equal(out.code, 0, `${c.join(" ")}: ${out.stderr}`);
      }
      assert.match(
        await get(`${client} from ${lanHost} iif kn0`),
        /via 2001:db8:b::fe dev wan1 table 202/,
      );
      assert.equal((await sh("ip -6 rule list pref 1100")).trim().split("\n").length, 1);
      for (const c of unroutingCommands(PLAN)) await inNs(c);
      assert.doesNotMatch(
        await sh("ip -6 rule; ip -6 route show table all"),
        /proto 75|lookup 20[12]/,
      );
    } finally {
      await run(["ip", "netns", "del", ns]);
    }
  },
});

Deno.test("gateway6: a probe down before the rules were installed moves the rule once they are", async () => {
  const ran: string[] = [];
  const egress = new LanEgress6(PLAN, (argv) => {
    ran.push(argv.join(" "));
    return Promise.resolve({ code: 0, stderr: "" });
  }, () => {});
  egress.onEvents([{ type: "uplink-down", uplink: "isp-a", family: "ipv6" }]);
  await egress.settled();
  assert.deepEqual(ran, []);
  egress.installed();
  await egress.settled();
  assert.deepEqual(ran, [
    "ip -6 rule add pref 1100 from 2001:db8:192::/64 lookup 202 protocol 75",
    "ip -6 rule del pref 1100 from 2001:db8:192::/64 lookup 201",
  ]);
});

Deno.test("gateway6 with NPTv6: the outside prefix leaves by its uplink's table, beside its addresses", () => {
  const npt: RoutingPlan = {
    ...PLAN,
    uplinks: [PLAN.uplinks[0], { ...PLAN.uplinks[1], npt6: { outside: "2001:db8:b:100::/64" } }],
  };
  const six = text(routingCommands(npt)).filter((c) => c.startsWith("ip -6 rule add pref 1001"));
  assert.deepEqual(six, [
    "ip -6 rule add pref 1001 from 2001:db8:b::1 lookup 202 protocol 75",
    "ip -6 rule add pref 1001 from 2001:db8:b:100::/64 lookup 202 protocol 75",
  ]);
  // A stop flushes every rule of ours by its protocol, this one too.
  assert.ok(text(unroutingCommands(npt)).includes("ip -6 rule flush protocol 75"));
});
