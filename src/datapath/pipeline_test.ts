import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { MemoryDevice } from "../device/mod.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import type { KnockStateRecord } from "../knock/verifier.ts";
import {
  buildIcmpEcho,
  buildIcmpError,
  buildTcp,
  buildUdp,
  formatIpv4,
  fragment,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  Icmpv4Packet,
  internetChecksum,
  Ipv4Packet,
  parseIpv4,
  PROTO_TCP,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  TcpPacket,
  UdpPacket,
} from "../packet/mod.ts";
import { TCP_CLOSE } from "../conntrack/mod.ts";
import {
  Drop,
  KNOCK_STAT_BASE,
  KNOCK_STATS,
  knockFailureSlot,
  newCounters,
  RULE_BASE,
  snapshotCounters,
  Stat,
} from "./counters.ts";
import { Engine } from "./engine.ts";
import type { DatapathSettings, KnockClaim } from "./messages.ts";
import { Pipeline } from "./pipeline.ts";
import type { ApplianceEvent } from "../log/events.ts";
import { CLIENT, CLIENT2, forward, SECRET, SERVER, SETTINGS, T0, WAN } from "./_test_fixtures.ts";

const RULES = [forward("web", 52201, 8080, true), forward("open", 52300, 80, false)];

async function setup(
  settings: Partial<DatapathSettings> = {},
  emitKnockState?: (records: KnockStateRecord[]) => void,
) {
  const events: ApplianceEvent[] = [];
  const counters = newCounters(false);
  const p = new Pipeline({
    settings: { ...SETTINGS, ...settings },
    forwards: RULES,
    openPorts: [],
    counters,
    emit: (e) => events.push(...e),
    emitKnockState,
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

/** Runs `pkt` through `p`; the rewritten copy, or null when dropped. */
function run(p: Pipeline, pkt: Uint8Array, now = T0): Uint8Array | null {
  const buf = pkt.slice();
  return p.process(buf, 0, buf.length, 0, now) ? buf : null;
}

function syn(src: string, sport: number, dport: number, dst = WAN) {
  return buildTcp({ src, dst, srcPort: sport, dstPort: dport, flags: TCP_SYN });
}

async function knock(p: Pipeline, src: string, now = T0) {
  const seq = await knockSequenceAt(SECRET, Math.floor(now / 1000), 41001, 3);
  for (const port of seq) assert.equal(run(p, syn(src, 40000, port), now), null);
}

function assertValid(pkt: Uint8Array) {
  const ip = new Ipv4Packet().bind(pkt);
  assert.equal(ip.verifyChecksum(), true, "IP checksum");
  const proto = ip.protocol();
  if (proto === 6) {
    assert.ok(
      new TcpPacket().bind(pkt, ip.payloadOffset(), ip.payloadLen()).verifyChecksum(
        ip.src(),
        ip.dst(),
      ),
    );
  } else if (proto === 17) {
    assert.ok(
      new UdpPacket().bind(pkt, ip.payloadOffset(), ip.payloadLen()).verifyChecksum(
        ip.src(),
        ip.dst(),
      ),
    );
  } else {
    assert.equal(
      internetChecksum(pkt, ip.payloadOffset(), ip.off + ip.totalLen()),
      0,
      "ICMP checksum",
    );
  }
}

function addrs(pkt: Uint8Array) {
  const ip = new Ipv4Packet().bind(pkt);
  const l4 = ip.payloadOffset();
  return {
    src: formatIpv4(ip.src()),
    dst: formatIpv4(ip.dst()),
    sport: (pkt[l4] << 8) | pkt[l4 + 1],
    dport: (pkt[l4 + 2] << 8) | pkt[l4 + 3],
  };
}

Deno.test("a locked source cannot open a knock-enforcing forward and creates no flow", async () => {
  const { p, counters } = await setup();
  for (let i = 0; i < 100; i++) assert.equal(run(p, syn(CLIENT2, 30000 + i, 52201)), null);
  assert.equal(p.ct.size, 0);
  assert.equal(counters[Drop.Locked], 100);
});

Deno.test("a port without a rule is dropped silently and counted", async () => {
  const { p, counters } = await setup();
  assert.equal(run(p, syn(CLIENT, 1234, 52299)), null);
  assert.equal(run(p, buildIcmpEcho({ src: CLIENT, dst: WAN, ident: 7, seq: 1 })), null);
  assert.equal(counters[Drop.NoRule], 2);
});

Deno.test("knock, DNAT both ways, and the [Port Unlock] event", async () => {
  const { p, counters, events } = await setup();
  await knock(p, CLIENT);
  await p.housekeeping(T0);
  assert.ok(
    events.some((e) => e.type === "knock-success" && e.ip === CLIENT && e.user === "alice"),
  );
  const out = run(p, syn(CLIENT, 42829, 52201));
  assert.ok(out);
  assert.deepEqual(addrs(out), { src: CLIENT, dst: SERVER, sport: 42829, dport: 8080 });
  assertValid(out);
  const reply = buildTcp({
    src: SERVER,
    dst: CLIENT,
    srcPort: 8080,
    dstPort: 42829,
    flags: TCP_SYN | TCP_ACK,
  });
  const back = run(p, reply);
  assert.ok(back);
  assert.deepEqual(addrs(back), { src: WAN, dst: CLIENT, sport: 52201, dport: 42829 });
  assertValid(back);
  await p.housekeeping(T0);
  const admitted = events.find((e) => e.type === "flow-admitted");
  assert.ok(admitted && admitted.type === "flow-admitted");
  assert.equal(admitted.privateAddr, SERVER);
  assert.equal(counters[Stat.FastPath], 1);
  assert.equal(counters[Stat.FlowsAdmittedByKnock], 1);
});

Deno.test("an established flow survives the end of its unlock; new flows do not", async () => {
  const { p } = await setup();
  await knock(p, CLIENT);
  assert.ok(run(p, syn(CLIENT, 5000, 52201)));
  assert.ok(
    run(
      p,
      buildTcp({
        src: SERVER,
        dst: CLIENT,
        srcPort: 8080,
        dstPort: 5000,
        flags: TCP_SYN | TCP_ACK,
      }),
    ),
  );
  assert.ok(
    run(p, buildTcp({ src: CLIENT, dst: WAN, srcPort: 5000, dstPort: 52201, flags: TCP_ACK })),
  );
  const later = T0 + 120_000; // past the 60 s idle timeout
  await p.housekeeping(later);
  assert.equal(p.unlocks.isUnlocked(parseIpv4(CLIENT)!, later), false);
  assert.ok(
    run(
      p,
      buildTcp({ src: CLIENT, dst: WAN, srcPort: 5000, dstPort: 52201, flags: TCP_ACK }),
      later,
    ),
  );
  assert.equal(run(p, syn(CLIENT, 5001, 52201), later), null);
});

Deno.test("the second client replaying the knocks stays locked", async () => {
  const { p, events } = await setup();
  await knock(p, CLIENT);
  await knock(p, CLIENT2);
  await p.housekeeping(T0);
  assert.equal(run(p, syn(CLIENT2, 5000, 52201)), null);
  assert.ok(events.some((e) => e.type === "knock-replay" && e.ip === CLIENT2));
});

Deno.test("fleet claims: a knock unlocks only on a granted claim; taken is a replay; unreachable refuses", async () => {
  const claims: KnockClaim[] = [];
  const events: ApplianceEvent[] = [];
  const counters = newCounters(false);
  const p = new Pipeline({
    settings: SETTINGS,
    forwards: RULES,
    openPorts: [],
    counters,
    emit: (e) => events.push(...e),
    clock: new ManualClock(T0),
    knockClaims: true,
    emitClaims: (c) => claims.push(...c),
  });
  await p.setUsers([{
    user: "alice",
    secret: SECRET,
    firstPort: 41001,
    length: 3,
    transport: "any",
  }]);
  await knock(p, CLIENT);
  assert.equal(claims.length, 0, "handed on after the loop turn, not per packet");
  p.afterBatch();
  assert.equal(claims.length, 1);
  const c = claims[0];
  const step = Math.floor(T0 / 30_000);
  assert.deepEqual(
    { ip: c.ip, user: c.user, step: c.step, drift: c.drift, wan: c.wanAddress },
    { ip: CLIENT, user: "alice", step, drift: 0, wan: WAN },
  );
  assert.equal(c.expiresAt, (step + 2) * 30_000 + SETTINGS.knock.windowSec * 1000);
  assert.equal(run(p, syn(CLIENT, 5000, 52201)), null, "locked while the claim is out");
  p.resolveClaims([{ ...c, result: "granted" }], T0 + 20);
  assert.ok(events.some((e) => e.type === "knock-success" && e.ip === CLIENT && e.wan === WAN));
  assert.ok(run(p, syn(CLIENT, 5001, 52201), T0 + 30));
  // Another client's completion of a step held elsewhere: a replay naming the holder.
  claims.length = 0;
  const next = T0 + 30_000;
  await p.housekeeping(next);
  await knock(p, CLIENT2, next);
  p.afterBatch();
  p.resolveClaims([{ ...claims[0], result: "taken", firstIp: "203.0.113.99" }], next + 20);
  assert.ok(
    events.some((e) =>
      e.type === "knock-replay" && e.ip === CLIENT2 && e.firstIp === "203.0.113.99"
    ),
  );
  assert.equal(run(p, syn(CLIENT2, 5002, 52201), next + 30), null);
  // The store unreachable: refused and counted, no event, the same step may be tried again.
  claims.length = 0;
  const later = T0 + 60_000;
  await p.housekeeping(later);
  await knock(p, "203.0.113.30", later);
  p.afterBatch();
  const before = events.length;
  p.resolveClaims([{ ...claims[0], result: "unreachable" }], later + 20);
  assert.equal(events.length, before);
  assert.equal(run(p, syn("203.0.113.30", 5003, 52201), later + 30), null);
  await p.housekeeping(later + 40);
  const slot = (k: string) => KNOCK_STAT_BASE + (KNOCK_STATS as readonly string[]).indexOf(k);
  assert.equal(counters[slot("claims")], 3);
  assert.equal(counters[slot("claimsUnreachable")], 1);
  assert.equal(counters[slot("replays")], 1);
  // Many sources completing one step in one turn: one claim, the others local replays.
  const many = T0 + 90_000;
  await p.housekeeping(many);
  const seq = await knockSequenceAt(SECRET, Math.floor(many / 1000), 41001, 3);
  for (let i = 0; i < 300; i++) {
    const src = `198.18.${i >> 8}.${i & 255}`;
    for (const port of seq) run(p, syn(src, 40000, port), many);
  }
  claims.length = 0;
  p.afterBatch();
  assert.equal(claims.length, 1, "one claim per step at a node: the others are local replays");
  await p.housekeeping(many + 10);
  // (the user's attempt budget, 64 a step and sampled beyond, admits only some of the 300)
  assert.ok(counters[slot("replays")] > 64, String(counters[slot("replays")]));
  assert.equal(counters[slot("claims")], 4);
});

Deno.test("fleet claims: more completions in one loop turn than the claim queue holds are refused and counted", async () => {
  const claims: KnockClaim[] = [];
  const counters = newCounters(false);
  const p = new Pipeline({
    settings: SETTINGS,
    forwards: RULES,
    openPorts: [],
    counters,
    emit: () => {},
    clock: new ManualClock(T0),
    knockClaims: true,
    emitClaims: (c) => claims.push(...c),
  });
  const users = Array.from({ length: 300 }, (_, i) => ({
    user: `u${i}`,
    secret: SECRET,
    firstPort: 1000 + i,
    length: 1,
    transport: "any" as const,
  }));
  await p.setUsers(users);
  for (const [i, u] of users.entries()) {
    const seq = await knockSequenceAt(SECRET, Math.floor(T0 / 1000), u.firstPort, 1);
    for (const port of seq) run(p, syn(`198.18.${i >> 8}.${i & 255}`, 40000, port));
  }
  p.afterBatch();
  assert.equal(claims.length, 256);
  await p.housekeeping(T0 + 10);
  const slot = (k: string) => KNOCK_STAT_BASE + (KNOCK_STATS as readonly string[]).indexOf(k);
  assert.equal(counters[slot("claims")], 300);
  assert.equal(counters[slot("claimsDropped")], 44);
});

Deno.test("the static allow-list admits without knocking; rules without knocking are open", async () => {
  const { p } = await setup({ allow: ["203.0.113.0/24"] });
  assert.ok(run(p, syn(CLIENT2, 5000, 52201)));
  const open = await setup();
  assert.ok(run(open.p, syn(CLIENT2, 5000, 52300)));
});

Deno.test("masquerade: LAN to WAN is hidden behind the WAN address, ICMP echo included", async () => {
  const { p } = await setup();
  const out = run(
    p,
    buildUdp({
      src: SERVER,
      dst: CLIENT,
      srcPort: 5353,
      dstPort: 9999,
      payload: new Uint8Array(10),
    }),
  );
  assert.ok(out);
  const a = addrs(out);
  assert.equal(a.src, WAN);
  assertValid(out);
  const back = run(
    p,
    buildUdp({
      src: CLIENT,
      dst: WAN,
      srcPort: 9999,
      dstPort: a.sport,
      payload: new Uint8Array(3),
    }),
  );
  assert.ok(back);
  assert.deepEqual(addrs(back), { src: CLIENT, dst: SERVER, sport: 9999, dport: 5353 });
  const ping = run(p, buildIcmpEcho({ src: SERVER, dst: CLIENT, ident: 77, seq: 1 }));
  assert.ok(ping);
  assertValid(ping);
  const ident = new Icmpv4Packet().bind(ping, 20).ident();
  const pong = run(
    p,
    buildIcmpEcho({ src: CLIENT, dst: WAN, type: ICMP_ECHO_REPLY, ident, seq: 1 }),
  );
  assert.ok(pong);
  assert.equal(formatIpv4(new Ipv4Packet().bind(pong).dst()), SERVER);
  assert.equal(new Icmpv4Packet().bind(pong, 20).ident(), 77);
  assertValid(pong);
});

Deno.test("hairpin: a LAN host reaches a forward through the WAN address", async () => {
  const { p } = await setup();
  const out = run(p, syn("192.0.2.50", 6000, 52201));
  assert.ok(out);
  const a = addrs(out);
  assert.equal(a.dst, SERVER);
  assert.equal(a.src, WAN);
  const back = run(
    p,
    buildTcp({ src: SERVER, dst: WAN, srcPort: 8080, dstPort: a.sport, flags: TCP_SYN | TCP_ACK }),
  );
  assert.ok(back);
  assert.deepEqual(addrs(back), { src: WAN, dst: "192.0.2.50", sport: 52201, dport: 6000 });
});

Deno.test("an ICMP error about a forwarded flow is translated, inner header included", async () => {
  const { p, counters } = await setup({ allow: ["203.0.113.0/24"] });
  const first = buildUdp({
    src: CLIENT,
    dst: WAN,
    srcPort: 7000,
    dstPort: 52201,
    payload: new Uint8Array(4),
  });
  const fwd = run(p, first);
  assert.ok(fwd);
  // The server's host answers "port unreachable" about the translated datagram.
  const err = buildIcmpError({
    src: SERVER,
    dst: CLIENT,
    type: ICMP_DEST_UNREACHABLE,
    code: 3,
    original: fwd,
  });
  const out = run(p, err);
  assert.ok(out);
  assertValid(out);
  const ip = new Ipv4Packet().bind(out);
  assert.equal(formatIpv4(ip.src()), WAN);
  assert.equal(formatIpv4(ip.dst()), CLIENT);
  const inner = new Ipv4Packet().bind(out, 28, out.length - 28);
  assert.equal(formatIpv4(inner.src()), CLIENT);
  assert.equal(formatIpv4(inner.dst()), WAN);
  assert.equal((out[48 + 2] << 8) | out[48 + 3], 52201);
  assert.equal(counters[Stat.IcmpErrorsTranslated], 1);
});

Deno.test("fragments of a forwarded datagram follow the first; orphans are dropped", async () => {
  const { p, counters } = await setup({ allow: ["203.0.113.0/24"] });
  const big = buildUdp({
    src: CLIENT,
    dst: WAN,
    srcPort: 7001,
    dstPort: 52201,
    payload: new Uint8Array(3000).fill(7),
    ident: 4242,
  });
  const frags = fragment(big, 1500);
  assert.ok(frags.length >= 3);
  for (const f of frags) {
    const out = run(p, f);
    assert.ok(out);
    assert.equal(formatIpv4(new Ipv4Packet().bind(out).dst()), SERVER);
    assert.ok(new Ipv4Packet().bind(out).verifyChecksum());
  }
  const orphan = fragment(
    buildUdp({
      src: CLIENT,
      dst: WAN,
      srcPort: 7002,
      dstPort: 52201,
      payload: new Uint8Array(3000),
      ident: 99,
    }),
    1500,
  );
  assert.equal(run(p, orphan[1]), null);
  assert.equal(counters[Drop.FragmentOrphan], 1);
});

Deno.test("malformed packets are dropped by reason and never throw", async () => {
  const { p, counters } = await setup({ allow: ["203.0.113.0/24"] });
  const good = syn(CLIENT, 1000, 52201);
  const badSum = good.slice();
  badSum[10] ^= 0xff;
  const badL4 = good.slice();
  badL4[36] ^= 0xff;
  const short = good.slice(0, 30);
  const v6 = good.slice();
  v6[0] = 0x65;
  for (const pkt of [badSum, badL4, short, v6, new Uint8Array(0), new Uint8Array(3)]) {
    assert.equal(run(p, pkt), null);
  }
  const s = snapshotCounters(counters);
  assert.equal(s.drops["bad-checksum"], 1);
  assert.equal(s.drops["bad-l4-checksum"], 1);
  assert.ok(s.drops["bad-total-len"] >= 1);
  assert.ok(s.drops["bad-version"] >= 1);
  assert.equal(p.ct.size, 0);
  for (let i = 0; i < 2000; i++) {
    const junk = crypto.getRandomValues(new Uint8Array(1 + (i % 200)));
    if (i % 2) junk[0] = 0x45;
    run(p, junk);
  }
});

Deno.test("the management port opens from the WAN only for unlocked sources", async () => {
  const { p } = await setup();
  assert.equal(run(p, syn(CLIENT, 7000, 8443)), null);
  await knock(p, CLIENT);
  const out = run(p, syn(CLIENT, 7001, 8443));
  assert.ok(out);
  assert.deepEqual(addrs(out), { src: CLIENT, dst: WAN, sport: 7001, dport: 8443 });
  const never = await setup({ managementWanAccess: "never" });
  await knock(never.p, CLIENT);
  assert.equal(run(never.p, syn(CLIENT, 7002, 8443)), null);
});

Deno.test("the engine moves a batch from a memory device through the pipeline", async () => {
  const { p } = await setup({ allow: ["203.0.113.0/24"] });
  const dev = new MemoryDevice();
  for (let i = 0; i < 10; i++) dev.inject(syn(CLIENT, 2000 + i, 52201));
  dev.inject(syn(CLIENT, 3000, 1)); // no rule
  const engine = new Engine(dev, p, { batch: 4 });
  let n = 0;
  while (dev.wait(0) && n < 10) {
    engine.pump(T0);
    n++;
  }
  const out = dev.takeWritten();
  assert.equal(out.length, 10);
  for (const pkt of out) assert.equal(addrs(pkt).dst, SERVER);
});

Deno.test("settings change at run time: idle timeout applies to existing unlocks", async () => {
  const { p } = await setup();
  await knock(p, CLIENT);
  const ip = parseIpv4(CLIENT)!;
  assert.equal(p.unlocks.isUnlocked(ip, T0 + 30_000), true);
  const verifier = p.verifier;
  p.setSettings({ ...SETTINGS, knock: { ...SETTINGS.knock, idleTimeoutSec: 10, windowSec: 5 } });
  assert.equal(p.unlocks.isUnlocked(ip, T0 + 30_000), false);
  // The verifier is retuned, not rebuilt: it still knows the users and the step CLIENT used.
  assert.equal(p.verifier, verifier);
  assert.equal(p.verifier.tunables.windowMs, 5_000);
  await knock(p, CLIENT2);
  assert.equal(p.unlocks.isUnlocked(parseIpv4(CLIENT2)!, T0), false, "a replay of CLIENT's step");
  await knock(p, CLIENT2, T0 + 30_000);
  assert.equal(p.unlocks.isUnlocked(parseIpv4(CLIENT2)!, T0 + 30_000), true);
});

Deno.test("a step is spent once its unlock is revoked or has expired, even for the same IP", async () => {
  const { p, events } = await setup({
    knock: { ...SETTINGS.knock, idleTimeoutSec: 10 },
  });
  const ip = parseIpv4(CLIENT)!;
  await knock(p, CLIENT);
  await knock(p, CLIENT, T0 + 1_000); // a repeat while live: a refresh
  assert.equal(p.unlocks.isUnlocked(ip, T0 + 1_000), true);
  assert.ok(p.revoke(CLIENT, T0 + 2_000));
  await knock(p, CLIENT, T0 + 3_000);
  assert.equal(p.unlocks.isUnlocked(ip, T0 + 3_000), false, "replay after revoke");
  await p.housekeeping(T0 + 3_000);
  assert.ok(events.some((e) => e.type === "knock-replay" && e.ip === CLIENT));
  // Expiry: CLIENT2 knocks, idles past 10 s, and repeats its step (still a candidate).
  const ip2 = parseIpv4(CLIENT2)!;
  const t = T0 + 30_000;
  await knock(p, CLIENT2, t);
  assert.equal(p.unlocks.isUnlocked(ip2, t), true);
  await p.housekeeping(t + 11_000);
  assert.equal(p.unlocks.isUnlocked(ip2, t + 11_000), false);
  await knock(p, CLIENT2, t + 12_000);
  assert.equal(p.unlocks.isUnlocked(ip2, t + 12_000), false, "replay after expiry");
});

Deno.test("knock state goes out per housekeeping tick and comes back after a restart", async () => {
  const records: KnockStateRecord[] = [];
  const { p } = await setup({}, (r) => records.push(...r));
  await knock(p, CLIENT);
  await p.housekeeping(T0);
  assert.deepEqual(records.map((r) => [r.type, r.ip]), [["replay", CLIENT]]);
  // A restarted appliance: a new pipeline given the records (and no unlocks).
  const { p: again, events } = await setup();
  assert.equal(again.restoreKnockState(records, T0 + 1_000), 1);
  await knock(again, CLIENT2, T0 + 1_000);
  await knock(again, CLIENT, T0 + 1_000);
  assert.equal(again.unlocks.size, 0);
  await again.housekeeping(T0 + 1_000);
  assert.deepEqual(
    events.filter((e) => e.type === "knock-replay").map((e) => "ip" in e && e.ip),
    [CLIENT2, CLIENT],
  );
});

/** Client and server segments of `CLIENT:sport -> WAN:52201` (server side: SERVER:8080). */
function segments(sport: number) {
  const c = (flags: number) =>
    buildTcp({ src: CLIENT, dst: WAN, srcPort: sport, dstPort: 52201, flags });
  const s = (flags: number) =>
    buildTcp({ src: SERVER, dst: CLIENT, srcPort: 8080, dstPort: sport, flags });
  return { c, s };
}

/** Opens and closes a connection through `p` (handshake, FIN both ways, last ACK: TIME_WAIT). */
function openAndClose(p: Pipeline, sport: number, now = T0) {
  const { c, s } = segments(sport);
  assert.ok(run(p, c(TCP_SYN), now));
  assert.ok(run(p, s(TCP_SYN | TCP_ACK), now));
  assert.ok(run(p, c(TCP_ACK), now));
  assert.ok(run(p, c(TCP_FIN | TCP_ACK), now));
  assert.ok(run(p, s(TCP_FIN | TCP_ACK), now));
  assert.ok(run(p, c(TCP_ACK), now));
  assert.equal(p.flows(10)[0].state, "TIME_WAIT");
}

Deno.test("a SYN reusing a TIME_WAIT tuple after revoke is refused and counted as locked", async () => {
  const { p, counters } = await setup();
  await knock(p, CLIENT);
  openAndClose(p, 5000);
  assert.ok(p.revoke(CLIENT, T0));
  const locked = counters[Drop.Locked];
  assert.equal(run(p, segments(5000).c(TCP_SYN), T0 + 1000), null);
  assert.equal(counters[Drop.Locked], locked + 1);
  assert.equal(p.ct.stats().reopened, 1);
  await p.housekeeping(T0 + 1000);
  assert.equal(p.ct.size, 0, "the old flow is gone");
  assert.equal(run(p, segments(5000).c(TCP_SYN), T0 + 2000), null);
  assert.equal(counters[Drop.Locked], locked + 2);
});

Deno.test("a SYN reusing a TIME_WAIT tuple while unlocked is a new admitted flow", async () => {
  const { p, counters, events } = await setup();
  await knock(p, CLIENT);
  openAndClose(p, 5000);
  const out = run(p, segments(5000).c(TCP_SYN), T0 + 1000);
  assert.ok(out);
  assert.deepEqual(addrs(out), { src: CLIENT, dst: SERVER, sport: 5000, dport: 8080 });
  assert.equal(counters[Stat.FlowsAdmittedByKnock], 2);
  assert.equal(p.unlocks.get(parseIpv4(CLIENT)!)?.flows, 2);
  await p.housekeeping(T0 + 1000);
  assert.equal(events.filter((e) => e.type === "flow-admitted").length, 2);
  const [flow] = p.flows(10);
  assert.equal(flow.state, "SYN_SENT");
  assert.equal(flow.rule, "web");
  assert.ok(run(p, segments(5000).s(TCP_SYN | TCP_ACK), T0 + 1000));
});

Deno.test("a new SYN on a management flow passes admission again", async () => {
  const { p, counters } = await setup();
  await knock(p, CLIENT);
  assert.ok(run(p, syn(CLIENT, 7001, 8443)));
  assert.ok(
    run(p, buildTcp({ src: CLIENT, dst: WAN, srcPort: 7001, dstPort: 8443, flags: TCP_ACK })),
  );
  assert.ok(run(p, syn(CLIENT, 7001, 8443)), "a retransmitted SYN while unlocked");
  p.revoke(CLIENT, T0);
  assert.equal(run(p, syn(CLIENT, 7001, 8443), T0 + 1000), null);
  assert.equal(counters[Drop.Locked], 1);
});

Deno.test("the status table names a flow's rule after rules are added and deleted around it", async () => {
  const { p } = await setup({ allow: ["203.0.113.0/24"] });
  assert.ok(run(p, syn(CLIENT, 5000, 52201)));
  const rule = () => p.flows(10).find((f) => f.origSrcPort === 5000)?.rule;
  assert.equal(rule(), "web");
  p.setRules([forward("ssh", 52222, 22, true), ...RULES], []);
  assert.equal(rule(), "web");
  assert.ok(run(p, syn(CLIENT, 5001, 52222)));
  p.setRules([forward("open", 52300, 80, false)], []);
  assert.equal(rule(), "web", "a deleted rule's flows keep its name");
  assert.equal(p.flows(10).find((f) => f.origSrcPort === 5001)?.rule, "ssh");
  p.setRules([forward("web", 52201, 8081, true)], []);
  assert.equal(rule(), "web");
  assert.ok(run(p, syn(CLIENT, 5002, 52201)));
  assert.equal(p.flows(10).find((f) => f.origSrcPort === 5002)?.replySrcPort, 8081);
  assert.equal(p.flows(10).find((f) => f.origSrcPort === 5002)?.rule, "web");
});

Deno.test("a blind RST or SYN on an established forward is dropped as tcp-out-of-window", async () => {
  const { p, counters } = await setup();
  const fromClient = (flags: number, seq: number, ack: number, payload?: Uint8Array) =>
    buildTcp({ src: CLIENT, dst: WAN, srcPort: 6000, dstPort: 52300, flags, seq, ack, payload });
  const fromServer = (flags: number, seq: number, ack: number) =>
    buildTcp({ src: SERVER, dst: CLIENT, srcPort: 80, dstPort: 6000, flags, seq, ack });
  assert.ok(run(p, fromClient(TCP_SYN, 1_000, 0)));
  assert.ok(run(p, fromServer(TCP_SYN | TCP_ACK, 90_000, 1_001)));
  assert.ok(run(p, fromClient(TCP_ACK, 1_001, 90_001)));
  assert.equal(run(p, fromClient(TCP_RST, 2_500_000_000, 0)), null, "a blind RST");
  assert.equal(run(p, fromClient(TCP_SYN, 3_000_000_000, 0)), null, "a blind SYN");
  assert.equal(
    run(p, fromServer(TCP_RST, 1_000_000_000, 0)),
    null,
    "a blind RST from the LAN side",
  );
  assert.equal(counters[Drop.TcpOutOfWindow], 3);
  assert.equal(snapshotCounters(counters).drops["tcp-out-of-window"], 3);
  assert.ok(run(p, fromClient(TCP_RST, 1_101, 0)), "an in-window inexact RST is passed on");
  assert.ok(run(p, fromClient(TCP_ACK, 1_001, 90_001, new Uint8Array(10))), "data still flows");
  assert.ok(run(p, fromServer(TCP_RST, 90_001, 0)), "an exact RST");
  const h = p.ct.lookup(PROTO_TCP, parseIpv4(CLIENT)!, 6000, parseIpv4(WAN)!, 52300);
  assert.equal(p.ct.tcpState(h >> 1), TCP_CLOSE);
});

Deno.test("a forwarded packet gets back the hop the TUN cost; one to the appliance does not", async () => {
  const { p } = await setup();
  const ttlOf = (b: Uint8Array | null) => new Ipv4Packet().bind(b!).ttl();
  const fwd = run(
    p,
    buildTcp({ src: CLIENT, dst: WAN, srcPort: 40001, dstPort: 52300, flags: TCP_SYN, ttl: 40 }),
  );
  assert.equal(ttlOf(fwd), 41);
  assertValid(fwd!);
  const reply = run(
    p,
    buildTcp({
      src: SERVER,
      dst: CLIENT,
      srcPort: 80,
      dstPort: 40001,
      flags: TCP_SYN | TCP_ACK,
      ttl: 63,
    }),
  );
  assert.equal(ttlOf(reply), 64);
  assertValid(reply!);
  const mgmt = run(
    p,
    buildTcp({ src: SERVER, dst: WAN, srcPort: 40002, dstPort: 8443, flags: TCP_SYN, ttl: 63 }),
  );
  assert.equal(ttlOf(mgmt), 63);
});

Deno.test("a revoke names the user who asked in its unlock-revoked event", async () => {
  const { p, events } = await setup();
  await knock(p, CLIENT);
  await p.housekeeping(T0);
  assert.ok(p.revoke(CLIENT, T0, "otto"));
  await p.housekeeping(T0);
  const revoked = events.find((e) => e.type === "unlock-revoked");
  assert.equal(revoked?.type === "unlock-revoked" ? revoked.by : undefined, "otto");
});

Deno.test("per-rule packets and bytes count both directions by stable rule id", async () => {
  const { p, counters } = await setup({ allow: ["203.0.113.0/24"] });
  const req = syn(CLIENT, 5000, 52201);
  assert.ok(run(p, req));
  const reply = buildTcp({
    src: SERVER,
    dst: CLIENT,
    srcPort: 8080,
    dstPort: 5000,
    flags: TCP_SYN | TCP_ACK,
  });
  assert.ok(run(p, reply));
  const web = p.admission.ruleIds().find((r) => r.name === "web")!;
  assert.equal(counters[RULE_BASE + 2 * web.id], 2);
  assert.equal(counters[RULE_BASE + 2 * web.id + 1], req.length + reply.length);
  const open = p.admission.ruleIds().find((r) => r.name === "open")!;
  assert.equal(counters[RULE_BASE + 2 * open.id], 0);
  // A rule added later keeps the old ids and counts under its own.
  p.setRules([forward("ssh", 52222, 22, true), ...RULES], []);
  assert.ok(run(p, syn(CLIENT, 5001, 52222)));
  const ssh = p.admission.ruleIds().find((r) => r.name === "ssh")!;
  assert.equal(p.admission.ruleIds().find((r) => r.name === "web")!.id, web.id);
  assert.equal(counters[RULE_BASE + 2 * ssh.id], 1);
  assert.equal(counters[RULE_BASE + 2 * web.id], 2);
});

Deno.test("knock successes, failures by reason and verifier counts reach the counters", async () => {
  const { p, counters } = await setup();
  await knock(p, CLIENT);
  // A sequence's first port, a stray, then nothing until its window has passed.
  const seq = await knockSequenceAt(SECRET, Math.floor(T0 / 1000), 41001, 3);
  run(p, syn(CLIENT2, 40000, seq[0]));
  run(p, syn(CLIENT2, 40000, 41000));
  await p.housekeeping(T0 + 16_000);
  assert.equal(counters[Stat.Unlocks], 1);
  assert.equal(counters[knockFailureSlot("window-expired")], 1);
  assert.equal(counters[knockFailureSlot("wrong-port")], 0);
  assert.equal(counters[KNOCK_STAT_BASE + KNOCK_STATS.indexOf("strays")], 1);
  const knocks = KNOCK_STAT_BASE + KNOCK_STATS.indexOf("knocks");
  assert.equal(counters[knocks], p.verifier.stats.knocks);
  assert.ok(counters[knocks] >= 4);
});

Deno.test("the gateway's answer to a health probe is consumed and counted, a forged one dropped", async () => {
  const GW = "198.51.100.62";
  const sent: Uint8Array[] = [];
  const counters = newCounters(false);
  const events: ApplianceEvent[] = [];
  const p = new Pipeline({
    settings: {
      ...SETTINGS,
      uplinks: [{
        name: "isp-a",
        addresses: [WAN],
        management: true,
        probe: { target: GW, intervalMs: 1000, downAfter: 3, upAfter: 2 },
      }],
      masquerade: ["isp-a"],
    },
    forwards: RULES,
    openPorts: [],
    counters,
    emit: (e) => events.push(...e),
    clock: new ManualClock(T0),
    probeSender: {
      send: (uplink, msg, len, target) => {
        assert.equal(uplink, 0);
        assert.equal(formatIpv4(target), GW);
        sent.push(msg.slice(0, len));
        return len;
      },
    },
  });
  await p.housekeeping(T0);
  assert.equal(sent.length, 1);
  const echo = new Icmpv4Packet().bind(sent[0]);
  const reply = (payload: Uint8Array) =>
    buildIcmpEcho({
      src: GW,
      dst: WAN,
      type: ICMP_ECHO_REPLY,
      ident: echo.ident(),
      seq: echo.seqNo(),
      payload,
    });
  const forged = sent[0].slice(8);
  forged[0] ^= 0xff;
  assert.equal(run(p, reply(forged)), null);
  const drops = counters[Stat.Drops];
  assert.equal(drops, 1, "a forged answer is dropped like any echo reply of no flow");
  assert.equal(run(p, reply(sent[0].slice(8))), null);
  assert.equal(counters[Stat.ProbeReplies], 1);
  assert.equal(counters[Stat.Drops], drops, "the answer is not a drop");
  assert.equal(snapshotCounters(counters).stats.uplink_probe_replies, 1);
  const [st] = p.query("uplinks", 10) as { name: string; sent: number; received: number }[];
  assert.deepEqual([st.name, st.sent, st.received], ["isp-a", 1, 1]);
});

Deno.test("two uplinks: a knock on A opens B's address; replies leave from B's; masquerade fails over", async () => {
  const B = "198.51.100.65";
  const { p, counters, events } = await setup({
    uplinks: [
      { name: "isp-a", addresses: [WAN], management: true, probe: null },
      { name: "isp-b", addresses: [B], management: false, probe: null },
    ],
    masquerade: ["isp-a", "isp-b"],
  });
  await knock(p, CLIENT);
  const out = run(p, syn(CLIENT, 5000, 52201, B))!;
  assertValid(out);
  assert.deepEqual(addrs(out), { src: CLIENT, dst: SERVER, sport: 5000, dport: 8080 });
  const reply = buildTcp({
    src: SERVER,
    dst: CLIENT,
    srcPort: 8080,
    dstPort: 5000,
    flags: TCP_SYN | TCP_ACK,
  });
  const back = run(p, reply)!;
  assertValid(back);
  assert.deepEqual(addrs(back), { src: B, dst: CLIENT, sport: 52201, dport: 5000 });
  await p.housekeeping(T0);
  const success = events.find((e) => e.type === "knock-success");
  assert.ok(success?.type === "knock-success" && success.wan === WAN);
  assert.equal(p.unlocks.get(parseIpv4(CLIENT)!)?.wanAddress, WAN);
  // Masquerade from A's address, from B's once A is down.
  const dns = (sport: number) =>
    run(p, buildUdp({ src: "192.0.2.50", dst: "203.0.113.99", srcPort: sport, dstPort: 53 }));
  assert.equal(addrs(dns(40000)!).src, WAN);
  p.admission.setUplinkHealth([false, true]);
  assert.equal(addrs(dns(40001)!).src, B);
  // No masquerade uplink: LAN-to-WAN flows are dropped as no-uplink.
  const none = await setup({ masquerade: [] });
  assert.equal(
    run(none.p, buildUdp({ src: "192.0.2.50", dst: "203.0.113.99", srcPort: 1, dstPort: 53 })),
    null,
  );
  assert.equal(snapshotCounters(none.counters).drops["no-uplink"], 1);
  assert.equal(counters[Drop.NoUplink], 0);
});

Deno.test("unlocks of other nodes merge into the running table without an event", async () => {
  const { p, events } = await setup();
  const record = (ip: string, user: string, at: number, lastSeen = at) => ({
    ip,
    user,
    unlockedAt: at,
    lastSeen,
    expiresAt: lastSeen + 60_000,
    drift: 0,
    flows: 0,
    bytes: 0,
    wanAddress: WAN,
  });
  assert.equal(run(p, syn(CLIENT, 5000, 52201)), null);
  assert.equal(
    p.mergeUnlocks([record(CLIENT, "alice", T0 - 1000), record(CLIENT2, "alice", T0 - 61_000)], T0),
    1,
    "an ended record is skipped",
  );
  assert.ok(run(p, syn(CLIENT, 5001, 52201)), "the merged unlock admits");
  assert.equal(run(p, syn(CLIENT2, 5000, 52201)), null);
  // Later traffic at the other node moves the idle expiry; older does not.
  assert.equal(p.mergeUnlocks([record(CLIENT, "alice", T0 - 1000, T0 + 30_000)], T0), 1);
  assert.equal(p.unlocks.get(parseIpv4(CLIENT)!)?.expiresAt, T0 + 90_000);
  assert.equal(p.mergeUnlocks([record(CLIENT, "alice", T0 - 1000, T0)], T0), 0);
  // Another user's older knock does not replace the local one.
  assert.equal(p.mergeUnlocks([record(CLIENT, "bob", T0 - 2000)], T0), 0);
  assert.equal(p.unlocks.get(parseIpv4(CLIENT)!)?.user, "alice");
  await p.housekeeping(T0);
  assert.ok(!events.some((e) => e.type === "knock-success"), JSON.stringify(events));
});
