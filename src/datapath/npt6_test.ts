import assert from "node:assert/strict";
import fc from "fast-check";
import { ManualClock } from "../clock.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import type { ApplianceEvent } from "../log/events.ts";
import type { OpenPortsRule } from "../nat/rule.ts";
import {
  buildIcmpv6,
  buildIcmpv6Error,
  buildIpv6Tcp,
  buildIpv6Udp,
  formatIpv6,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_PACKET_TOO_BIG,
  Icmpv6Packet,
  Ipv6Packet,
  parseIpv6,
  PROTO_TCP,
  PROTO_UDP,
  TCP_ACK,
  TCP_SYN,
  TcpPacket,
  UdpPacket,
} from "../packet/mod.ts";
import { newCounters, snapshotCounters } from "./counters.ts";
import type { DatapathSettings } from "./messages.ts";
import { Pipeline } from "./pipeline.ts";
import { SECRET, SETTINGS, T0 } from "./_test_fixtures.ts";

const C6 = "2001:db8:203::10", C6OTHER = "2001:db8:204::10", REMOTE6 = "2001:db8:55::80";
const WAN6 = "2001:db8:198::1", LAN6 = "2001:db8:192::1", S6 = "2001:db8:192::12";
/**
 * The server's outside addresses on uplink `wan` (2001:db8:199::/64) and
 * `wan2` (2001:db8:196::/64): RFC 6296 §3.5 adds sum(inside) - sum(outside)
 * (0x192 - 0x199 = -7, 0x192 - 0x196 = -4, ones' complement) to the first
 * interface-identifier word, so the address sums to the same checksum.
 */
const O6 = "2001:db8:199:0:fff8::12", O6B = "2001:db8:196:0:fffb::12";

const SETTINGS_NPT: DatapathSettings = {
  ...SETTINGS,
  uplinks: [
    { ...SETTINGS.uplinks[0], addresses6: [WAN6], npt6: { outside: "2001:db8:199::/64" } },
    {
      name: "wan2",
      addresses: ["198.51.100.65"],
      management: false,
      probe: null,
      addresses6: ["2001:db8:197::1"],
      npt6: { outside: "2001:db8:196::/64" },
    },
  ],
  masquerade: ["wan", "wan2"],
  ipv6: { lanAddress: LAN6, lanNetwork: "2001:db8:192::/64", unlockPrefix: 64 },
};

const PINHOLE: OpenPortsRule = {
  name: "pinhole",
  enabled: true,
  privateAddress: S6,
  ports: [{ protocol: "both", ports: { start: 8080, end: 8080 } }],
  enforceKnock: true,
  users: [],
};

async function setup(settings: DatapathSettings = SETTINGS_NPT) {
  const counters = newCounters(false);
  const events: ApplianceEvent[] = [];
  const p = new Pipeline({
    settings,
    forwards: [],
    openPorts: [PINHOLE],
    counters,
    emit: (e) => events.push(...e),
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
  return { p, counters, events };
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

/** Addresses, ports, hop limit and L4 checksum of an IPv6 packet whose checksums are valid. */
function view(pkt: Uint8Array) {
  const ip = new Ipv6Packet().bind(pkt);
  assert.equal(ip.check(), 0);
  const sum = ip.pseudoHeaderSum(), l4 = ip.upperOffset(), len = ip.upperLen();
  const proto = ip.upperProtocol();
  if (proto === PROTO_TCP) {
    assert.ok(new TcpPacket().bind(pkt, l4, len).verifyChecksum6(sum), "TCP checksum");
  } else if (proto === PROTO_UDP) {
    assert.ok(new UdpPacket().bind(pkt, l4, len).verifyChecksum6(sum), "UDP checksum");
  } else assert.ok(new Icmpv6Packet().bind(pkt, l4, len).verifyChecksum(sum), "ICMPv6 checksum");
  const at = proto === PROTO_TCP ? 16 : proto === PROTO_UDP ? 6 : 2;
  return {
    src: formatIpv6(Array.from({ length: 4 }, (_, i) => ip.srcWord(i))),
    dst: formatIpv6(Array.from({ length: 4 }, (_, i) => ip.dstWord(i))),
    sport: (pkt[l4] << 8) | pkt[l4 + 1],
    dport: (pkt[l4 + 2] << 8) | pkt[l4 + 3],
    hopLimit: ip.hopLimit(),
    checksum: (pkt[l4 + at] << 8) | pkt[l4 + at + 1],
  };
}

function drops(counters: Float64Array) {
  return snapshotCounters(counters).drops;
}

Deno.test("NPTv6: a LAN source leaves from its outside address, checksum untouched; replies come back", async () => {
  const { p } = await setup();
  const syn = tcp6(S6, REMOTE6, 50000, 443);
  const out = run(p, syn);
  assert.ok(out, "LAN to the WAN passes");
  const o = view(out);
  assert.deepEqual(
    [o.src, o.sport, o.dst, o.dport, o.hopLimit],
    [O6, 50000, REMOTE6, 443, 65],
  );
  assert.equal(o.checksum, view(syn).checksum, "checksum-neutral: the TCP checksum is unchanged");
  const reply = tcp6(REMOTE6, O6, 443, 50000, TCP_SYN | TCP_ACK);
  const back = run(p, reply);
  assert.ok(back, "the reply to the outside address");
  assert.deepEqual([view(back).src, view(back).dst, view(back).dport], [REMOTE6, S6, 50000]);
  assert.equal(view(back).checksum, view(reply).checksum);
  const udp = run(p, buildIpv6Udp({ src: S6, dst: REMOTE6, srcPort: 5353, dstPort: 53 }));
  assert.ok(udp);
  assert.deepEqual([view(udp).src, view(udp).sport], [O6, 5353]);
  const udpBack = buildIpv6Udp({ src: REMOTE6, dst: O6, srcPort: 53, dstPort: 5353 });
  assert.equal(view(run(p, udpBack)!).dst, S6);
  const echo = run(
    p,
    buildIcmpv6({ src: S6, dst: REMOTE6, type: ICMPV6_ECHO_REQUEST, rest: 0x12340001 }),
  );
  assert.ok(echo);
  assert.equal(view(echo).src, O6);
  const pong = buildIcmpv6({ src: REMOTE6, dst: O6, type: ICMPV6_ECHO_REPLY, rest: 0x12340001 });
  assert.equal(view(run(p, pong)!).dst, S6);
  const flow = p.flows(10).find((f) => f.proto === PROTO_TCP)!;
  assert.deepEqual(
    [flow.origSrc, flow.origDst, flow.replySrc, flow.replyDst],
    [S6, REMOTE6, REMOTE6, O6],
    "the flow names both addresses",
  );
});

Deno.test("NPTv6: new flows leave by the first uplink up; flows keep theirs", async () => {
  const { p } = await setup();
  assert.equal(view(run(p, tcp6(S6, REMOTE6, 50000, 443))!).src, O6);
  p.admission.setUplinkHealth([false, true]);
  assert.equal(view(run(p, tcp6(S6, REMOTE6, 50001, 443))!).src, O6B, "wan is down: wan2's prefix");
  const old = run(p, tcp6(S6, REMOTE6, 50000, 443)); // its SYN again
  assert.equal(old && view(old).src, O6, "the earlier flow keeps wan's");
  assert.equal(view(run(p, tcp6(REMOTE6, O6B, 443, 50001, TCP_SYN | TCP_ACK))!).dst, S6);
  p.admission.setUplinkHealth([false, false]);
  assert.equal(view(run(p, tcp6(S6, REMOTE6, 50002, 443))!).src, O6, "all down: the first");
});

Deno.test("NPTv6: an uplink with an IPv6 probe is judged by it, one without by its IPv4 probe", async () => {
  const { p } = await setup();
  p.admission.setUplink6Health([false, null]);
  assert.equal(view(run(p, tcp6(S6, REMOTE6, 50000, 443))!).src, O6B, "wan's IPv6 gateway is down");
  p.admission.setUplinkHealth([true, false]);
  p.admission.setUplink6Health([true, null]);
  assert.equal(view(run(p, tcp6(S6, REMOTE6, 50001, 443))!).src, O6, "IPv6 up, IPv4 down: wan");
  p.admission.setUplink6Health([false, null]);
  assert.equal(
    view(run(p, tcp6(S6, REMOTE6, 50002, 443))!).src,
    O6,
    "wan2 down by IPv4: the first",
  );
});

Deno.test("NPTv6: the WAN reaches an outside address as a pinhole to its inside host, after a knock", async () => {
  const { p, counters, events } = await setup();
  assert.equal(run(p, tcp6(C6, O6, 50000, 8080)), null, "locked before the knock");
  assert.equal(drops(counters)["locked"], 1);
  assert.equal(run(p, tcp6(C6, O6, 50000, 22)), null, "no rule for the port");
  assert.equal(drops(counters)["no-rule"], 1);
  assert.equal(run(p, tcp6(C6, "2001:db8:199::99", 50000, 8080)), null, "no rule for that host");
  assert.equal(drops(counters)["no-rule"], 2);
  await knock6(p, C6);
  const syn = tcp6(C6, O6B, 50000, 8080);
  const pass = run(p, syn);
  assert.ok(pass, "admitted at the outside address on wan2");
  assert.deepEqual([view(pass).src, view(pass).dst, view(pass).dport], [C6, S6, 8080]);
  assert.equal(view(pass).checksum, view(syn).checksum);
  const answer = run(p, tcp6(S6, C6, 8080, 50000, TCP_SYN | TCP_ACK));
  assert.ok(answer, "the server answers");
  assert.deepEqual([view(answer).src, view(answer).sport], [O6B, 8080], "from the outside address");
  assert.equal(run(p, tcp6(C6OTHER, O6, 50001, 8080)), null, "another /64 stays out");
  assert.equal(drops(counters)["locked"], 2);
  const flow = p.flows(10).find((f) => f.origSrc === C6)!;
  assert.deepEqual([flow.origDst, flow.replySrc, flow.rule], [O6B, S6, "pinhole"]);
  p.admission.flush();
  const admitted = events.find((e) => e.type === "flow-admitted") as {
    dst: string;
    privateAddr: string;
  };
  assert.deepEqual([admitted.dst, admitted.privateAddr], [O6B, S6], "logged as dst #private");
});

Deno.test("NPTv6: an ICMPv6 error quoting a flow is translated, the quoted header too", async () => {
  const { p, counters } = await setup();
  const out = run(p, tcp6(S6, REMOTE6, 50000, 443))!;
  const router = "2001:db8:55::1";
  const ptb = buildIcmpv6Error({
    src: router,
    dst: O6,
    type: ICMPV6_PACKET_TOO_BIG,
    code: 0,
    rest: 1280,
    original: out,
  });
  const passed = run(p, ptb);
  assert.ok(passed, "packet too big about the flow");
  assert.deepEqual([view(passed).src, view(passed).dst], [router, S6]);
  const quoted = passed.subarray(48);
  assert.deepEqual([view(quoted).src, view(quoted).dst, view(quoted).sport], [S6, REMOTE6, 50000]);
  assert.equal(snapshotCounters(counters).stats.icmp_errors_translated, 1);
  const stray = buildIcmpv6Error({
    src: router,
    dst: O6,
    type: ICMPV6_PACKET_TOO_BIG,
    code: 0,
    rest: 1280,
    original: tcp6(O6, REMOTE6, 50009, 443),
  });
  assert.equal(run(p, stray), null, "about no flow");
  assert.equal(drops(counters)["icmp-unmatched"], 1);
});

Deno.test("NPTv6: an error from the client's side about the server's answer reaches the server", async () => {
  const { p } = await setup();
  await knock6(p, C6);
  assert.ok(run(p, tcp6(C6, O6, 50000, 8080)));
  const answer = run(p, tcp6(S6, C6, 8080, 50000, TCP_SYN | TCP_ACK))!;
  const ptb = buildIcmpv6Error({
    src: C6,
    dst: O6,
    type: ICMPV6_PACKET_TOO_BIG,
    code: 0,
    rest: 1280,
    original: answer,
  });
  const passed = run(p, ptb);
  assert.ok(passed);
  assert.deepEqual([view(passed).src, view(passed).dst], [C6, S6]);
  const quoted = passed.subarray(48);
  assert.deepEqual([view(quoted).src, view(quoted).sport, view(quoted).dst], [S6, 8080, C6]);
});

Deno.test("NPTv6: any LAN host and port leaves checksum-valid and its reply maps back", async () => {
  const { p } = await setup();
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 4, maxLength: 4 }),
      fc.integer({ min: 1024, max: 65535 }),
      fc.boolean(),
      (iid, port, udp) => {
        if (iid.every((w) => w === 0xffff)) return; // unmappable (RFC 6296 §3.5)
        if (iid.every((w) => w === 0)) return; // the subnet-router anycast address
        const host = formatIpv6(
          parseIpv6(`2001:db8:192:0:${iid.map((w) => w.toString(16)).join(":")}`)!,
        );
        const pkt = udp
          ? buildIpv6Udp({ src: host, dst: REMOTE6, srcPort: port, dstPort: 53 })
          : tcp6(host, REMOTE6, port, 443);
        const out = run(p, pkt);
        assert.ok(out, host);
        const o = view(out);
        assert.equal(o.checksum, view(pkt).checksum);
        assert.deepEqual([...parseIpv6(o.src)!.subarray(0, 2)], [0x20010db8, 0x01990000]);
        const reply = udp
          ? buildIpv6Udp({ src: REMOTE6, dst: o.src, srcPort: 53, dstPort: port })
          : tcp6(REMOTE6, o.src, 443, port, TCP_SYN | TCP_ACK);
        const back = run(p, reply);
        assert.ok(back, `reply to ${o.src}`);
        assert.equal(view(back).dst, host);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("NPTv6: after a restart TCP in mid stream is picked up from either side", async () => {
  const { p } = await setup();
  const lan = run(p, tcp6(S6, REMOTE6, 50000, 443, TCP_ACK));
  assert.ok(lan, "the LAN's segment starts the flow again");
  assert.equal(view(lan).src, O6);
  assert.equal(view(run(p, tcp6(REMOTE6, O6, 443, 50000, TCP_ACK))!).dst, S6);
  assert.equal(run(p, tcp6(C6, O6, 50001, 8080, TCP_ACK)), null, "locked: not picked up");
  await knock6(p, C6);
  const wan = run(p, tcp6(C6, O6, 50001, 8080, TCP_ACK));
  assert.ok(wan, "an unlocked source's segment through the pinhole");
  assert.equal(view(wan).dst, S6);
  assert.equal(view(run(p, tcp6(S6, C6, 8080, 50001, TCP_ACK))!).src, O6);
});

Deno.test("NPTv6: hairpin to an outside address and unmappable addresses are dropped and counted", async () => {
  const { p, counters } = await setup();
  assert.equal(run(p, tcp6("2001:db8:192::13", O6, 50000, 8080)), null);
  assert.equal(drops(counters)["lan-local"], 1);
  // A /64's interface identifier of all ones has no word to adjust (RFC 6296 §3.5).
  const ones = "2001:db8:192:0:ffff:ffff:ffff:ffff";
  assert.equal(run(p, tcp6(ones, REMOTE6, 50000, 443)), null);
  assert.equal(run(p, tcp6(C6, "2001:db8:199:0:ffff:ffff:ffff:ffff", 50000, 8080)), null);
  assert.equal(drops(counters)["npt6-unmappable"], 2);
});

Deno.test("NPTv6 off: LAN sources leave as they are, outside prefixes are not ours", async () => {
  const plain: DatapathSettings = {
    ...SETTINGS_NPT,
    uplinks: SETTINGS_NPT.uplinks.map((u) => ({ ...u, npt6: null })),
  };
  const { p, counters } = await setup(plain);
  assert.equal(view(run(p, tcp6(S6, REMOTE6, 50000, 443))!).src, S6);
  assert.equal(run(p, tcp6(C6, O6, 50000, 8080)), null);
  assert.equal(drops(counters)["not-for-us"], 1);
  p.setSettings(SETTINGS_NPT);
  assert.equal(view(run(p, tcp6(S6, REMOTE6, 50001, 443))!).src, O6, "taken by new settings");
});
