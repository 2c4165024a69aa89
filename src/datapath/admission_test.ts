import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import {
  ConnTable,
  FLAG_DNAT,
  FLAG_GATED,
  FLAG_HAIRPIN,
  FLAG_LOCAL,
  FLAG_SNAT,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  TCP_ACK,
  TCP_FIN,
  TCP_SYN,
  TCP_TIME_WAIT,
  TcpSegment,
  TRACK_REOPEN,
} from "../conntrack/mod.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import { type ApplianceEvent, Severity } from "../log/events.ts";
import type { PortForwardRule } from "../nat/rule.ts";
import { parseIpv4 } from "../packet/mod.ts";
import { Admission, ADMITTED } from "./admission.ts";
import { ADMITTED_LOG_SIZE } from "./admitted_log.ts";
import { Drop, dropName, newCounters, Stat } from "./counters.ts";
import type { DatapathSettings } from "./messages.ts";

const ip = (s: string) => parseIpv4(s)!;
/** The one segment the tests fill by hand, as the pipeline reuses its own. */
const S = new TcpSegment();
const CLIENT = ip("203.0.113.10"), CLIENT2 = ip("203.0.113.20"), WAN = ip("198.51.100.1");
const SERVER = ip("192.0.2.12"), LAN_HOST = ip("192.0.2.50"), INET = ip("203.0.113.99");
const ALICE = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", BOB = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U";
const T0 = 1_764_028_800_000;

const SETTINGS: DatapathSettings = {
  wanAddress: "198.51.100.1",
  uplinks: [{ name: "wan", addresses: ["198.51.100.1"], management: true, probe: null }],
  masquerade: ["wan"],
  lanAddress: "192.0.2.1",
  lanNetwork: "192.0.2.0/24",
  managementPort: 8443,
  managementWanAccess: "knock",
  allow: [],
  maxFlows: 64,
  knock: {
    idleTimeoutSec: 60,
    lifetimeSec: 0,
    windowSec: 15,
    maxFailures: 5,
    failureWindowSec: 600,
    penaltySec: 600,
    maxInProgress: 64,
    maxPenalised: 64,
  },
};

function forward(
  name: string,
  pub: number,
  priv: number,
  o: Partial<PortForwardRule> = {},
): PortForwardRule {
  return {
    name,
    enabled: true,
    protocol: "both",
    publicPorts: { start: pub, end: pub },
    privateAddress: "192.0.2.12",
    privatePorts: { start: priv, end: priv },
    enforceKnock: true,
    users: [],
    ...o,
  };
}

const WEB = forward("web", 52201, 8080);
const BOBS = forward("bobs", 52202, 9090, { users: ["bob"] });

async function setup(settings: Partial<DatapathSettings> = {}, forwards = [WEB, BOBS]) {
  const s = { ...SETTINGS, ...settings };
  const ct = new ConnTable({ capacity: s.maxFlows, hashKey: [1, 2] });
  const counters = newCounters(false);
  const events: ApplianceEvent[] = [];
  const adm = new Admission({
    settings: s,
    forwards,
    openPorts: [],
    ct,
    counters,
    emit: (e) => events.push(...e),
    clock: new ManualClock(T0),
    portSeed: 1,
  });
  await adm.setUsers([
    { user: "alice", secret: ALICE, firstPort: 41001, length: 3, transport: "any" },
    { user: "bob", secret: BOB, firstPort: 42001, length: 3, transport: "any" },
  ]);
  return { adm, ct, counters, events };
}

/** A TCP SYN from `src:sport` to `dst:dport` through `admit`. */
function syn(adm: Admission, src: number, sport: number, dport: number, dst = WAN, now = T0) {
  return adm.admit(PROTO_TCP, src, sport, dst, dport, true, now);
}

/** Knocks `secret`'s sequence from `src` to `dst` through `admit`, as the datapath would see it. */
async function knock(
  adm: Admission,
  src: number,
  secret: string,
  first: number,
  now = T0,
  dst = WAN,
) {
  const seq = await knockSequenceAt(secret, Math.floor(now / 1000), first, 3);
  for (const port of seq) assert.equal(syn(adm, src, 40000, port, dst, now), Drop.Knock);
}

/** Drives flow `id` (a TCP flow admitted with a SYN) through handshake and close to TIME_WAIT. */
function toTimeWait(ct: ConnTable, id: number, sec: number) {
  ct.track(2 * id, 60, sec, S.set(TCP_SYN, 1000, 0, 65535));
  ct.track(2 * id + 1, 60, sec, S.set(TCP_SYN | TCP_ACK, 5000, 1001, 65535));
  ct.track(2 * id, 52, sec, S.set(TCP_ACK, 1001, 5001, 65535));
  ct.track(2 * id, 52, sec, S.set(TCP_FIN | TCP_ACK, 1001, 5001, 65535));
  ct.track(2 * id + 1, 52, sec, S.set(TCP_FIN | TCP_ACK, 5001, 1002, 65535));
  ct.track(2 * id, 52, sec, S.set(TCP_ACK, 1002, 5002, 65535));
  assert.equal(ct.tcpState(id), TCP_TIME_WAIT);
}

Deno.test("WAN: a locked source is refused and creates no flow; a knock admits it with DNAT", async () => {
  const { adm, ct, counters, events } = await setup();
  assert.equal(syn(adm, CLIENT, 5000, 52201), Drop.Locked);
  assert.equal(adm.flowId, -1);
  assert.equal(ct.size, 0);
  await knock(adm, CLIENT, ALICE, 41001);
  assert.equal(syn(adm, CLIENT, 5001, 52201), ADMITTED);
  const id = adm.flowId;
  assert.equal(ct.flags[id], FLAG_DNAT | FLAG_GATED);
  assert.equal(adm.ruleName(ct.ruleId[id]), "web");
  assert.deepEqual(
    [ct.origSrc(id), ct.origSrcPort(id), ct.origDst(id), ct.origDstPort(id)],
    [CLIENT, 5001, WAN, 52201],
  );
  assert.deepEqual(
    [ct.replySrc(id), ct.replySrcPort(id), ct.replyDst(id), ct.replyDstPort(id)],
    [SERVER, 8080, CLIENT, 5001],
  );
  assert.equal(counters[Stat.FlowsCreated], 1);
  assert.equal(counters[Stat.FlowsAdmittedByKnock], 1);
  assert.equal(counters[Stat.Unlocks], 1);
  assert.equal(adm.unlocks.get(CLIENT)?.flows, 1);
  adm.flush();
  assert.ok(events.some((e) => e.type === "knock-success"));
  const admitted = events.find((e) => e.type === "flow-admitted");
  assert.ok(admitted?.type === "flow-admitted" && admitted.rule === "web");
});

Deno.test("flow-admitted events are built on flush, in order among the others, past the log's size", async () => {
  const { adm, events } = await setup({ maxFlows: 2 * ADMITTED_LOG_SIZE });
  await knock(adm, CLIENT, ALICE, 41001);
  const n = ADMITTED_LOG_SIZE + 5;
  for (let i = 0; i < n; i++) assert.equal(syn(adm, CLIENT, 10000 + i, 52201), ADMITTED);
  await knock(adm, CLIENT2, BOB, 42001);
  assert.equal(events.length, 0, "nothing is handed on before flush");
  adm.flush();
  assert.deepEqual(
    events.map((e) => e.type),
    ["knock-success", ...new Array(n).fill("flow-admitted"), "knock-success"],
  );
  const admitted = events.filter((e) => e.type === "flow-admitted");
  assert.deepEqual(admitted.map((e) => e.srcPort), Array.from({ length: n }, (_, i) => 10000 + i));
  assert.deepEqual(admitted[n - 1], {
    type: "flow-admitted",
    time: T0,
    severity: Severity.Notice,
    proto: 6,
    src: "203.0.113.10",
    srcPort: 10000 + n - 1,
    dst: "198.51.100.1",
    dstPort: 52201,
    privateAddr: "192.0.2.12",
    privatePort: 8080,
    rule: "web",
    user: "alice",
  });
  adm.flush();
  assert.equal(events.length, n + 2, "a flush hands each event on once");
});

Deno.test("WAN: allow-listed sources need no knock; non-enforcing rules admit anyone", async () => {
  const { adm, ct, counters } = await setup({ allow: ["203.0.113.0/28"] }, [
    WEB,
    forward("open", 52300, 80, { enforceKnock: false }),
  ]);
  assert.equal(syn(adm, CLIENT, 5000, 52201), ADMITTED);
  assert.equal(ct.flags[adm.flowId], FLAG_DNAT, "not gated: it refreshes no unlock");
  assert.equal(syn(adm, CLIENT2, 5000, 52201), Drop.Locked, "outside the allow-list");
  assert.equal(syn(adm, CLIENT2, 5000, 52300), ADMITTED);
  assert.equal(counters[Stat.FlowsAdmittedByKnock], 0);
  assert.equal(syn(adm, CLIENT2, 5001, 52399), Drop.NoRule);
  assert.equal(syn(adm, CLIENT2, 5001, 52201, ip("198.51.100.7")), Drop.NotForUs);
  assert.equal(adm.admit(PROTO_TCP, CLIENT, 5002, WAN, 52201, false, T0), Drop.NoFlow);
  assert.equal(adm.admit(PROTO_ICMP, CLIENT, 7, WAN, 7, true, T0), Drop.NoRule);
});

Deno.test("WAN: a rule naming users admits only their unlocks", async () => {
  const { adm } = await setup();
  await knock(adm, CLIENT, ALICE, 41001);
  await knock(adm, CLIENT2, BOB, 42001);
  assert.equal(syn(adm, CLIENT, 5000, 52202), Drop.Locked);
  assert.equal(syn(adm, CLIENT2, 5000, 52202), ADMITTED);
  assert.equal(syn(adm, CLIENT, 5001, 52201), ADMITTED, "a rule without users admits alice");
});

Deno.test("management port: from the WAN only unlocked (or allow-listed) and only when enabled", async () => {
  const { adm, ct, counters } = await setup();
  assert.equal(syn(adm, CLIENT, 7000, 8443), Drop.Locked);
  await knock(adm, CLIENT, ALICE, 41001);
  assert.equal(syn(adm, CLIENT, 7001, 8443), ADMITTED);
  const id = adm.flowId;
  assert.equal(ct.flags[id], FLAG_LOCAL | FLAG_GATED);
  assert.equal(ct.replySrc(id), WAN, "delivered unchanged to the appliance");
  assert.equal(ct.ruleId[id], -1);
  assert.equal(adm.ruleName(ct.ruleId[id]), null);
  assert.equal(counters[Stat.FlowsAdmittedByKnock], 0, "the management interface is no forward");
  assert.equal(adm.unlocks.get(CLIENT)?.flows, 1);
  // From the LAN it is always open.
  assert.equal(syn(adm, LAN_HOST, 7002, 8443), ADMITTED);
  assert.equal(ct.flags[adm.flowId], FLAG_LOCAL);
  const never = await setup({ managementWanAccess: "never", allow: ["203.0.113.0/24"] });
  assert.equal(syn(never.adm, CLIENT, 7003, 8443), Drop.Locked);
});

Deno.test("LAN: hairpin to a forward through the WAN address, without knocking", async () => {
  const { adm, ct } = await setup();
  assert.equal(syn(adm, LAN_HOST, 40000, 52201), ADMITTED);
  const id = adm.flowId;
  assert.equal(ct.flags[id], FLAG_DNAT | FLAG_SNAT | FLAG_HAIRPIN);
  assert.equal(adm.ruleName(ct.ruleId[id]), "web");
  // The server answers the WAN address, on the client's own port while it is free.
  assert.deepEqual(
    [ct.replySrc(id), ct.replySrcPort(id), ct.replyDst(id), ct.replyDstPort(id)],
    [SERVER, 8080, WAN, 40000],
  );
  // A client port outside the masquerade range is replaced by one inside it.
  assert.equal(syn(adm, LAN_HOST, 6000, 52201), ADMITTED);
  const p = ct.replyDstPort(adm.flowId);
  assert.ok(p >= 32768 && p <= 60999);
  assert.equal(syn(adm, LAN_HOST, 6001, 52399), Drop.NoRule);
  assert.equal(syn(adm, LAN_HOST, 6001, 80, ip("192.0.2.13")), Drop.LanLocal);
  assert.equal(syn(adm, LAN_HOST, 6001, 80, ip("192.0.2.1")), Drop.LanLocal);
});

Deno.test("LAN: masquerade behind the WAN address, ICMP echo identifiers included", async () => {
  const { adm, ct } = await setup();
  assert.equal(adm.admit(PROTO_UDP, LAN_HOST, 40000, INET, 53, true, T0), ADMITTED);
  let id = adm.flowId;
  assert.equal(ct.flags[id], FLAG_SNAT);
  assert.deepEqual(
    [ct.replySrc(id), ct.replySrcPort(id), ct.replyDst(id), ct.replyDstPort(id)],
    [INET, 53, WAN, 40000],
  );
  // A second LAN host with the same port gets another one.
  assert.equal(adm.admit(PROTO_UDP, SERVER, 40000, INET, 53, true, T0), ADMITTED);
  id = adm.flowId;
  assert.notEqual(ct.replyDstPort(id), 40000);
  assert.ok(ct.replyDstPort(id) >= 32768 && ct.replyDstPort(id) <= 60999);
  assert.equal(adm.admit(PROTO_ICMP, LAN_HOST, 77, INET, 77, true, T0), ADMITTED);
  id = adm.flowId;
  assert.deepEqual(
    [ct.replySrc(id), ct.replySrcPort(id), ct.replyDst(id), ct.replyDstPort(id)],
    [INET, 77, WAN, 77],
  );
  assert.equal(adm.admit(PROTO_ICMP, SERVER, 77, INET, 77, true, T0), ADMITTED);
  id = adm.flowId;
  assert.equal(ct.replySrcPort(id), ct.replyDstPort(id), "the new identifier stands for both");
  assert.notEqual(ct.replyDstPort(id), 77);
  assert.equal(adm.admit(PROTO_TCP, LAN_HOST, 40001, INET, 80, false, T0), Drop.NoFlow);
});

Deno.test("reopen: a TIME_WAIT tuple reused after revoke is refused, and the old flow is gone", async () => {
  const { adm, ct, counters } = await setup();
  await knock(adm, CLIENT, ALICE, 41001);
  assert.equal(syn(adm, CLIENT, 5000, 52201), ADMITTED);
  const id = adm.flowId, sec = Math.floor(T0 / 1000);
  toTimeWait(ct, id, sec);
  assert.ok(adm.revoke("203.0.113.10"));
  // The datapath sees TRACK_REOPEN for the new SYN, then asks admission again.
  assert.equal(ct.track(2 * id, 60, sec + 1, S.set(TCP_SYN, 900_000, 0, 65535)), TRACK_REOPEN);
  assert.equal(adm.reopen(id, PROTO_TCP, CLIENT, 5000, WAN, 52201, T0 + 1000), Drop.Locked);
  assert.equal(ct.lookup(PROTO_TCP, CLIENT, 5000, WAN, 52201), -1);
  ct.expire(sec + 1);
  assert.equal(ct.size, 0);
  assert.equal(counters[Stat.FlowsAdmittedByKnock], 1);
  // A retransmitted SYN, now with no flow at all, is refused as well.
  assert.equal(syn(adm, CLIENT, 5000, 52201, WAN, T0 + 2000), Drop.Locked);
});

Deno.test("reopen: while unlocked the reused tuple is admitted anew and refreshes the unlock", async () => {
  const { adm, ct, counters } = await setup();
  await knock(adm, CLIENT, ALICE, 41001);
  assert.equal(syn(adm, CLIENT, 5000, 52201), ADMITTED);
  const old = adm.flowId, sec = Math.floor(T0 / 1000);
  toTimeWait(ct, old, sec);
  assert.equal(ct.track(2 * old, 60, sec + 30, S.set(TCP_SYN, 900_000, 0, 65535)), TRACK_REOPEN);
  assert.equal(adm.reopen(old, PROTO_TCP, CLIENT, 5000, WAN, 52201, T0 + 30_000), ADMITTED);
  const id = adm.flowId;
  assert.notEqual(id, old);
  assert.equal(ct.lookup(PROTO_TCP, CLIENT, 5000, WAN, 52201), 2 * id);
  assert.equal(ct.replySrcPort(id), 8080);
  assert.equal(counters[Stat.FlowsAdmittedByKnock], 2);
  assert.equal(adm.unlocks.get(CLIENT)?.flows, 2);
  assert.equal(adm.unlocks.get(CLIENT)?.lastSeen, T0 + 30_000);
  // A user restriction added meanwhile applies to the reopened connection too.
  adm.setRules([forward("web", 52201, 8080, { users: ["bob"] })], []);
  assert.equal(adm.reopen(id, PROTO_TCP, CLIENT, 5000, WAN, 52201, T0 + 31_000), Drop.Locked);
});

Deno.test("a NAT tuple clash and a full table are told apart", async () => {
  // Two forwards to the same private port: the second flow's reply tuple is the first's.
  const twin = forward("twin", 52203, 8080);
  const { adm, ct } = await setup({ allow: ["203.0.113.0/24"] }, [WEB, twin]);
  assert.equal(syn(adm, CLIENT, 5000, 52201), ADMITTED);
  assert.equal(syn(adm, CLIENT, 5000, 52203), Drop.NatClash);
  assert.equal(adm.flowId, -1);
  assert.equal(ct.size, 1);
  // A table of one assured flow has no room (early drop evicts only unassured flows).
  const full = await setup({ allow: ["203.0.113.0/24"], maxFlows: 1 });
  assert.equal(syn(full.adm, CLIENT, 5000, 52201), ADMITTED);
  const id = full.adm.flowId, sec = Math.floor(T0 / 1000);
  full.ct.track(2 * id, 60, sec, S.set(TCP_SYN, 1000, 0, 65535));
  full.ct.track(2 * id + 1, 60, sec, S.set(TCP_SYN | TCP_ACK, 5000, 1001, 65535));
  full.ct.track(2 * id, 52, sec, S.set(TCP_ACK, 1001, 5001, 65535));
  assert.equal(syn(full.adm, CLIENT, 5001, 52201), Drop.TableFull);
});

Deno.test("stable rule ids: a flow names its rule through adds, edits and deletes", async () => {
  const { adm, ct } = await setup({ allow: ["203.0.113.0/24"] }, [WEB]);
  assert.equal(syn(adm, CLIENT, 5000, 52201), ADMITTED);
  const id = adm.flowId;
  const mail = forward("mail", 52225, 25);
  // A rule added before it shifts every index the compiled rules use.
  adm.setRules([mail, WEB], []);
  assert.equal(adm.ruleName(ct.ruleId[id]), "web");
  assert.equal(syn(adm, CLIENT, 5001, 52225), ADMITTED);
  const mailFlow = adm.flowId;
  assert.equal(adm.ruleName(ct.ruleId[mailFlow]), "mail");
  // Edited: same name, same id.
  adm.setRules([mail, forward("web", 52210, 8081)], []);
  assert.equal(adm.ruleName(ct.ruleId[id]), "web");
  assert.equal(syn(adm, CLIENT, 5002, 52210), ADMITTED);
  assert.equal(ct.ruleId[adm.flowId], ct.ruleId[id]);
  // Deleted: live flows still name it; a new rule gets a fresh id.
  adm.setRules([forward("www", 52201, 8080)], []);
  assert.equal(adm.ruleName(ct.ruleId[id]), "web");
  assert.equal(adm.ruleName(ct.ruleId[mailFlow]), "mail");
  assert.equal(syn(adm, CLIENT, 5003, 52201), ADMITTED);
  const www = ct.ruleId[adm.flowId];
  assert.equal(adm.ruleName(www), "www");
  assert.ok(www !== ct.ruleId[id] && www !== ct.ruleId[mailFlow]);
  // Once no flow holds a deleted rule's id, its name is forgotten at the next change.
  const others: number[] = [];
  ct.forEach((f) => ct.ruleId[f] !== www && others.push(f));
  for (const f of others) ct.remove(f);
  adm.setRules([forward("www", 52201, 8080)], []);
  assert.equal(adm.knownRuleNames, 1);
  assert.equal(adm.ruleName(www), "www");
});

// ---- several uplinks ---------------------------------------------------------

const A1 = ip("198.51.100.1"), A2 = ip("198.51.100.2"), B = ip("198.51.100.65");
const SERVER2 = ip("192.0.2.13");
const PROBE = { target: "198.51.100.62", intervalMs: 1000, downAfter: 3, upAfter: 2 };

/** Two uplinks: isp-a (two addresses, management) and isp-b (one address). */
const TWO: Partial<DatapathSettings> = {
  uplinks: [
    { name: "isp-a", addresses: ["198.51.100.1", "198.51.100.2"], management: true, probe: PROBE },
    {
      name: "isp-b",
      addresses: ["198.51.100.65"],
      management: false,
      probe: { ...PROBE, target: "198.51.100.126" },
    },
  ],
  masquerade: ["isp-a", "isp-b"],
};

Deno.test("uplinks: a forward bound to uplink A is closed on B; one bound to an address only there", async () => {
  const onA = forward("on-a", 52201, 8080, { uplink: "isp-a" });
  const onA2 = forward("on-a2", 52202, 9090, { uplink: "isp-a", wanAddress: "198.51.100.2" });
  const { adm, ct } = await setup(TWO, [onA, onA2]);
  await knock(adm, CLIENT, ALICE, 41001);
  assert.equal(syn(adm, CLIENT, 5000, 52201, B), Drop.NoRule);
  assert.equal(syn(adm, CLIENT, 5001, 52201, A2), ADMITTED);
  assert.deepEqual([ct.origDst(adm.flowId), ct.replySrc(adm.flowId)], [A2, SERVER]);
  assert.equal(syn(adm, CLIENT, 5002, 52201, A1), ADMITTED);
  assert.equal(syn(adm, CLIENT, 5003, 52202, A1), Drop.NoRule);
  assert.equal(syn(adm, CLIENT, 5004, 52202, B), Drop.NoRule);
  assert.equal(syn(adm, CLIENT, 5005, 52202, A2), ADMITTED);
  assert.equal(syn(adm, CLIENT, 5006, 52201, ip("198.51.100.66")), Drop.NotForUs);
  for (const a of [A1, A2, B, ip("192.0.2.1")]) assert.ok(adm.isOwnAddress(a));
  assert.ok(!adm.isOwnAddress(ip("198.51.100.66")) && !adm.isOwnAddress(SERVER));
});

Deno.test("uplinks: the same public port forwards to two servers on two WAN addresses", async () => {
  const { adm, ct } = await setup({ ...TWO, allow: ["203.0.113.0/24"] }, [
    forward("web-a", 443, 8443, { uplink: "isp-a", wanAddress: "198.51.100.2" }),
    forward("web-b", 443, 8443, { uplink: "isp-b", privateAddress: "192.0.2.13" }),
  ]);
  assert.equal(syn(adm, CLIENT, 5000, 443, A2), ADMITTED);
  assert.deepEqual([ct.origDst(adm.flowId), ct.replySrc(adm.flowId)], [A2, SERVER]);
  assert.equal(adm.ruleName(ct.ruleId[adm.flowId]), "web-a");
  assert.equal(syn(adm, CLIENT, 5000, 443, B), ADMITTED);
  assert.deepEqual([ct.origDst(adm.flowId), ct.replySrc(adm.flowId)], [B, SERVER2]);
  assert.equal(adm.ruleName(ct.ruleId[adm.flowId]), "web-b");
  assert.equal(syn(adm, CLIENT, 5001, 443, A1), Drop.NoRule);
});

Deno.test("uplinks: a knock on A opens a rule on B; the unlock and the event name A's address", async () => {
  const { adm, events } = await setup(TWO, [forward("on-b", 52201, 8080, { uplink: "isp-b" })]);
  assert.equal(syn(adm, CLIENT, 5000, 52201, B), Drop.Locked);
  await knock(adm, CLIENT, ALICE, 41001, T0, A2);
  assert.equal(syn(adm, CLIENT, 5001, 52201, B), ADMITTED);
  assert.equal(adm.unlocks.get(CLIENT)?.wanAddress, "198.51.100.2");
  // Knocks are watched on B's address as well.
  await knock(adm, CLIENT2, BOB, 42001, T0, B);
  assert.equal(adm.unlocks.get(CLIENT2)?.wanAddress, "198.51.100.65");
  adm.flush();
  const wans = events.flatMap((e) => e.type === "knock-success" ? [[e.ip, e.wan]] : []);
  assert.deepEqual(wans, [["203.0.113.10", "198.51.100.2"], ["203.0.113.20", "198.51.100.65"]]);
  const admitted = events.find((e) => e.type === "flow-admitted");
  assert.ok(admitted?.type === "flow-admitted" && admitted.dst === "198.51.100.65");
});

Deno.test("uplinks: the management port answers only on the management uplinks' addresses", async () => {
  const mgmtOnB = forward("mgmt-b", 8443, 443, { uplink: "isp-b", protocol: "tcp" });
  const { adm, ct } = await setup(TWO, [mgmtOnB]);
  await knock(adm, CLIENT, ALICE, 41001);
  assert.equal(syn(adm, CLIENT, 7000, 8443, A2), ADMITTED);
  assert.equal(ct.flags[adm.flowId], FLAG_LOCAL | FLAG_GATED);
  assert.equal(ct.origDst(adm.flowId), A2);
  // On B the port is the rule's.
  assert.equal(syn(adm, CLIENT, 7001, 8443, B), ADMITTED);
  assert.equal(ct.flags[adm.flowId], FLAG_DNAT | FLAG_GATED);
  assert.equal(adm.ruleName(ct.ruleId[adm.flowId]), "mgmt-b");
  // From the LAN likewise: local on A's addresses, the forward (hairpin) on B's.
  assert.equal(syn(adm, LAN_HOST, 7002, 8443, A1), ADMITTED);
  assert.equal(ct.flags[adm.flowId], FLAG_LOCAL);
  assert.equal(syn(adm, LAN_HOST, 7003, 8443, B), ADMITTED);
  assert.equal(ct.flags[adm.flowId], FLAG_DNAT | FLAG_SNAT | FLAG_HAIRPIN);
  const none = await setup(TWO, []);
  await knock(none.adm, CLIENT, ALICE, 41001);
  assert.equal(syn(none.adm, CLIENT, 7004, 8443, B), Drop.NoRule);
});

Deno.test("uplinks: hairpin hides the client behind the WAN address it targeted", async () => {
  const { adm, ct } = await setup(TWO, [WEB]);
  for (const dst of [A1, A2, B]) {
    assert.equal(syn(adm, LAN_HOST, 40000, 52201, dst), ADMITTED);
    const id = adm.flowId;
    assert.equal(ct.flags[id], FLAG_DNAT | FLAG_SNAT | FLAG_HAIRPIN);
    assert.deepEqual([ct.origDst(id), ct.replySrc(id), ct.replyDst(id)], [dst, SERVER, dst]);
  }
});

Deno.test("uplinks: masquerade follows health in the masquerade order", async () => {
  const { adm, ct } = await setup(TWO);
  const masq = (sport: number) => {
    assert.equal(adm.admit(PROTO_UDP, LAN_HOST, sport, INET, 53, true, T0), ADMITTED);
    return ct.replyDst(adm.flowId);
  };
  assert.equal(adm.masqueradeUplink(), 0);
  assert.equal(masq(40000), A1, "isp-a's primary address");
  adm.setUplinkHealth([false, true]);
  assert.equal(adm.masqueradeUplink(), 1);
  assert.equal(masq(40001), B);
  assert.equal(ct.replyDst(ct.lookup(PROTO_UDP, LAN_HOST, 40000, INET, 53) >> 1), A1, "kept");
  adm.setUplinkHealth([false, false]);
  assert.equal(adm.masqueradeUplink(), 0, "all down: the first in order");
  assert.equal(masq(40002), A1);
  adm.setUplinkHealth([true, true]);
  assert.equal(masq(40003), A1);
  // Another order; an uplink left out of it is never used.
  const order = await setup({ ...TWO, masquerade: ["isp-b"] });
  assert.equal(order.adm.masqueradeUplink(), 1);
  order.adm.setUplinkHealth([true, false]);
  assert.equal(order.adm.masqueradeUplink(), 1);
  assert.equal(order.adm.admit(PROTO_TCP, LAN_HOST, 40000, INET, 80, true, T0), ADMITTED);
  assert.equal(order.ct.replyDst(order.adm.flowId), B);
  // No uplink may masquerade: new LAN-to-WAN flows are dropped, forwards still work.
  const none = await setup({ ...TWO, masquerade: [] });
  assert.equal(none.adm.masqueradeUplink(), -1);
  const v = none.adm.admit(PROTO_UDP, LAN_HOST, 40000, INET, 53, true, T0);
  assert.equal(v, Drop.NoUplink);
  assert.equal(dropName(v), "no-uplink");
  assert.equal(syn(none.adm, LAN_HOST, 40001, 52201, B), ADMITTED);
});

Deno.test("uplinks: loose pickup uses the destination, the rule's one address, or the masquerade address", async () => {
  const onB = forward("on-b", 52210, 8090, { uplink: "isp-b", enforceKnock: false });
  const { adm, ct } = await setup({ ...TWO, allow: ["203.0.113.0/24"] }, [WEB, onB]);
  // From the WAN: the packet's destination.
  assert.equal(adm.admit(PROTO_TCP, CLIENT, 5000, A2, 52201, false, T0, true), ADMITTED);
  assert.equal(ct.origDst(adm.flowId), A2);
  // A server's reply from the LAN: the rule's address when it has one...
  assert.equal(adm.admit(PROTO_TCP, SERVER, 8090, CLIENT, 5001, false, T0, true), ADMITTED);
  assert.equal(adm.flowDir, 1);
  assert.deepEqual([ct.origSrc(adm.flowId), ct.origDst(adm.flowId)], [CLIENT, B]);
  assert.equal(ct.origDstPort(adm.flowId), 52210);
  // ...and nothing for a rule on three addresses (the client's next segment tells which).
  assert.equal(adm.admit(PROTO_TCP, SERVER, 8080, CLIENT, 5002, false, T0, true), Drop.NoFlow);
  // ...nor when two rules on two addresses forward to the same server port.
  adm.setRules([
    WEB,
    onB,
    forward("on-a2", 52210, 8090, {
      uplink: "isp-a",
      wanAddress: "198.51.100.2",
      enforceKnock: false,
    }),
  ], []);
  assert.equal(adm.admit(PROTO_TCP, SERVER, 8090, CLIENT, 5003, false, T0, true), Drop.NoFlow);
  // Masquerade: the current masquerade address.
  adm.setUplinkHealth([false, true]);
  assert.equal(adm.admit(PROTO_TCP, LAN_HOST, 40000, INET, 80, false, T0, true), ADMITTED);
  assert.equal(ct.replyDst(adm.flowId), B);
});

Deno.test("uplinks: new uplink addresses bind the rules again", async () => {
  const { adm } = await setup({ ...TWO, allow: ["203.0.113.0/24"] }, [
    forward("on-b", 52210, 8090, { uplink: "isp-b" }),
  ]);
  assert.equal(syn(adm, CLIENT, 5000, 52210, B), ADMITTED);
  const moved = ip("198.51.100.70");
  adm.setSettings({
    ...SETTINGS,
    ...TWO,
    allow: ["203.0.113.0/24"],
    uplinks: [TWO.uplinks![0], { ...TWO.uplinks![1], addresses: ["198.51.100.70"] }],
  });
  assert.equal(syn(adm, CLIENT, 5001, 52210, moved), ADMITTED);
  assert.equal(syn(adm, CLIENT, 5002, 52210, B), Drop.NotForUs);
  assert.throws(
    () => adm.setSettings({ ...SETTINGS, allow: ["203.0.113.0/24"] }),
    /uplink "isp-b" does not exist/,
  );
  assert.equal(syn(adm, CLIENT, 5003, 52210, moved), ADMITTED, "unchanged after the refusal");
});
