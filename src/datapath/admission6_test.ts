/**
 * The management port on the WAN IPv6 addresses (`Admission6`'s management
 * gate), through the pipeline as the TUN feeds it: gated as over IPv4.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import {
  buildIpv6Tcp,
  buildTcp,
  formatIpv6,
  Ipv6Packet,
  PROTO_TCP,
  TCP_ACK,
  TCP_FIN,
  TCP_SYN,
} from "../packet/mod.ts";
import { newCounters, snapshotCounters } from "./counters.ts";
import type { DatapathSettings } from "./messages.ts";
import { Pipeline } from "./pipeline.ts";
import { CLIENT, SECRET, SETTINGS, T0, WAN } from "./_test_fixtures.ts";

const C6 = "2001:db8:203::10", C6B = "2001:db8:203::20", C6OTHER = "2001:db8:204::10";
const WAN6 = "2001:db8:198::1", WAN6B = "2001:db8:199::1";
const LAN6 = "2001:db8:192::1", S6 = "2001:db8:192::12";
const MGMT = 8443;

const SETTINGS6: DatapathSettings = {
  ...SETTINGS,
  uplinks: [
    { name: "isp-a", addresses: [WAN], addresses6: [WAN6], management: true, probe: null },
    {
      name: "isp-b",
      addresses: ["198.51.100.65"],
      addresses6: [WAN6B],
      management: false,
      probe: null,
    },
  ],
  masquerade: ["isp-a"],
  ipv6: { lanAddress: LAN6, lanNetwork: "2001:db8:192::/64", unlockPrefix: 64 },
};

async function setup(settings: Partial<DatapathSettings> = {}) {
  const counters = newCounters(false);
  const p = new Pipeline({
    settings: { ...SETTINGS6, ...settings },
    forwards: [],
    openPorts: [],
    counters,
    emit: () => {},
    emitKnockState: () => {},
    clock: new ManualClock(T0),
  });
  await p.setUsers([{
    user: "alice",
    secret: SECRET,
    firstPort: 41001,
    length: 3,
    transport: "any",
  }]);
  return { p, counters };
}

function run(p: Pipeline, pkt: Uint8Array, now = T0): Uint8Array | null {
  const buf = pkt.slice();
  return p.process(buf, 0, buf.length, 0, now) ? buf : null;
}

function tcp6(src: string, dst: string, sport: number, dport: number, flags = TCP_SYN) {
  return buildIpv6Tcp({ src, dst, srcPort: sport, dstPort: dport, flags, seq: 1000, ack: 0 });
}

async function knock6(p: Pipeline, src: string, now = T0) {
  const seq = await knockSequenceAt(SECRET, Math.floor(now / 1000), 41001, 3);
  for (const port of seq) assert.equal(run(p, tcp6(src, WAN6, 40000, port), now), null);
}

async function knock4(p: Pipeline, src: string, now = T0) {
  const seq = await knockSequenceAt(SECRET, Math.floor(now / 1000), 41001, 3);
  for (const port of seq) {
    const pkt = buildTcp({ src, dst: WAN, srcPort: 40000, dstPort: port, flags: TCP_SYN });
    assert.equal(run(p, pkt, now), null);
  }
}

function addrs(pkt: Uint8Array) {
  const ip = new Ipv6Packet().bind(pkt);
  assert.equal(ip.check(), 0);
  const l4 = ip.upperOffset();
  return {
    src: formatIpv6(Array.from({ length: 4 }, (_, i) => ip.srcWord(i))),
    dst: formatIpv6(Array.from({ length: 4 }, (_, i) => ip.dstWord(i))),
    dport: (pkt[l4 + 2] << 8) | pkt[l4 + 3],
    hopLimit: ip.hopLimit(),
  };
}

function drops(counters: Float64Array): Record<string, number> {
  return snapshotCounters(counters).drops;
}

Deno.test("the management port on a WAN IPv6 address opens to an IPv6-unlocked /64 only", async () => {
  const { p, counters } = await setup();
  assert.equal(run(p, tcp6(C6, WAN6, 50000, MGMT)), null, "locked before a knock");
  assert.equal(drops(counters)["locked"], 1, "dropped as IPv4 drops it");
  await knock4(p, CLIENT);
  assert.equal(run(p, tcp6(C6, WAN6, 50001, MGMT)), null, "an IPv4 knock opens no IPv6");
  assert.equal(drops(counters)["locked"], 2);
  const T1 = T0 + 60_000; // the next steps: the same step over IPv6 would be a replay
  await knock6(p, C6, T1);
  const syn = run(p, tcp6(C6, WAN6, 50002, MGMT), T1);
  assert.ok(syn, "admitted after the IPv6 knock");
  assert.deepEqual(addrs(syn), { src: C6, dst: WAN6, dport: MGMT, hopLimit: 65 }, "untranslated");
  // Only the client's half crosses the TUN (the kernel answers by its routes): no TCP state.
  for (const flags of [TCP_ACK, TCP_ACK, TCP_ACK | TCP_FIN]) {
    assert.ok(run(p, tcp6(C6, WAN6, 50002, MGMT, flags), T1), `segment ${flags}`);
  }
  assert.ok(run(p, tcp6(C6B, WAN6, 50003, MGMT), T1), "another address of the /64");
  assert.equal(run(p, tcp6(C6OTHER, WAN6, 50004, MGMT), T1), null, "another /64");
  assert.equal(drops(counters)["locked"], 3);
  assert.equal(drops(counters)["invalid-tcp"] ?? 0, 0);
  assert.equal(drops(counters)["tcp-out-of-window"] ?? 0, 0);
  const flow = p.flows(10).find((f) => f.origSrcPort === 50002);
  assert.ok(flow, "the flow is tracked");
  assert.deepEqual([flow.proto, flow.origSrc, flow.origDst], [PROTO_TCP, C6, WAN6]);
  const unlock = (p.query("unlocks", 10) as { ip: string; flows: number }[])
    .find((u) => u.ip === "2001:db8:203::/64");
  assert.equal(unlock?.flows, 2, "the management flows count on the unlock");
});

Deno.test("a revoked prefix's SYN on a management tuple is locked; after a restart nothing is picked up", async () => {
  const { p, counters } = await setup();
  await knock6(p, C6);
  assert.ok(run(p, tcp6(C6, WAN6, 50000, MGMT)));
  assert.ok(run(p, tcp6(C6, WAN6, 50000, MGMT, TCP_ACK)));
  assert.ok(run(p, tcp6(C6, WAN6, 50000, MGMT)), "a retransmitted SYN while unlocked");
  assert.ok(p.revoke(C6B, T0), "revoked by any address of the /64");
  assert.equal(run(p, tcp6(C6, WAN6, 50000, MGMT), T0 + 1000), null, "the SYN is judged again");
  assert.equal(drops(counters)["locked"], 1);
  // A restart with the unlock restored: the listener's sockets are gone, so a segment in mid
  // stream starts nothing (as over IPv4), while a new connection is admitted.
  const cold = await setup();
  await knock6(cold.p, C6);
  assert.equal(run(cold.p, tcp6(C6, WAN6, 50001, MGMT, TCP_ACK)), null);
  assert.equal(drops(cold.counters)["no-flow"], 1);
  assert.ok(run(cold.p, tcp6(C6, WAN6, 50002, MGMT)));
});

Deno.test("the management port over IPv6: allow-listed, not a management uplink, wanAccess never, the LAN", async () => {
  const listed = await setup({ allow: ["2001:db8:203::/48"] });
  assert.ok(run(listed.p, tcp6(C6, WAN6, 50000, MGMT)), "an allow-listed prefix needs no knock");
  assert.equal(run(listed.p, tcp6(C6OTHER, WAN6, 50001, MGMT)), null, "outside the allow-list");
  assert.deepEqual(listed.p.query("unlocks", 10), []);

  const { p, counters } = await setup();
  await knock6(p, C6);
  assert.equal(run(p, tcp6(C6, WAN6B, 50000, MGMT)), null, "isp-b is no management uplink");
  assert.equal(drops(counters)["no-rule"], 1);
  assert.equal(drops(counters)["locked"] ?? 0, 0);

  const never = await setup({ managementWanAccess: "never" });
  await knock6(never.p, C6);
  assert.equal(run(never.p, tcp6(C6, WAN6, 50000, MGMT)), null, "wanAccess never");
  assert.equal(drops(never.counters)["locked"], 1);

  // From the LAN the WAN address's management port answers without a knock, as over IPv4.
  const lan = run(p, tcp6(S6, WAN6, 50010, MGMT));
  assert.ok(lan, "LAN to the WAN IPv6 address's management port");
  assert.deepEqual(addrs(lan), { src: S6, dst: WAN6, dport: MGMT, hopLimit: 65 });
  assert.ok(run(p, tcp6(S6, WAN6, 50010, MGMT, TCP_ACK)), "its next segment");
  assert.equal(run(p, tcp6(S6, WAN6, 50011, 8080)), null, "any other port of the WAN address");
  assert.equal(drops(counters)["lan-local"], 1);
});

Deno.test("one step over both families opens IPv6 management only with pairFamilies", async () => {
  for (const pairFamilies of [false, true]) {
    const { p } = await setup({ ipv6: { ...SETTINGS6.ipv6!, pairFamilies } });
    await knock4(p, CLIENT);
    await knock6(p, C6, T0 + 1000);
    const v4 = buildTcp({ src: CLIENT, dst: WAN, srcPort: 7000, dstPort: MGMT, flags: TCP_SYN });
    assert.ok(run(p, v4, T0 + 2000), "the IPv4 half opens IPv4 management");
    const v6 = run(p, tcp6(C6, WAN6, 50000, MGMT), T0 + 2000);
    assert.equal(v6 !== null, pairFamilies, `pairFamilies ${pairFamilies}`);
  }
});
