import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import {
  CREATE_CLASH,
  CREATE_FULL,
  FLAG_GATED,
  GONE_EVICTED,
  GONE_KILLED,
  GONE_TIMEOUT,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  STATUS_ASSURED,
  STATUS_DYING,
  STATUS_SEEN_REPLY,
  TCP_ACK,
  TCP_CLOSE,
  TCP_ESTABLISHED,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  TCP_SYN_SENT,
  TCP_TIME_WAIT,
  TRACK_ACCEPT,
  TRACK_INVALID,
  TRACK_OUT_OF_WINDOW,
  TRACK_REOPEN,
} from "./constants.ts";
import { FlowSpec } from "./flow_spec.ts";
import { TcpSegment } from "./segment.ts";
import { ConnTable, type ConnTableOptions, FLOW_RECORD_BYTES } from "./table.ts";
import { TCP_RECORD_BYTES } from "./tcp_tracker.ts";

/** Dotted quad to unsigned 32-bit. */
function ip(s: string): number {
  return s.split(".").reduce((a, o) => a * 256 + Number(o), 0);
}

const CLIENT = ip("203.0.113.7");
const WAN = ip("198.51.100.2");
const LAN_WAN = ip("192.0.2.1");
const SERVER = ip("192.0.2.10");
const T0 = 1_700_000_000;

/** A flow spec from its original (proto, src, sport, dst, dport) and reply (src, sport, dst, dport). */
function spec(
  proto: number,
  os: number,
  osp: number,
  od: number,
  odp: number,
  rs: number,
  rsp: number,
  rd: number,
  rdp: number,
): FlowSpec {
  return new FlowSpec().original(proto, os, osp, od, odp).reply(rs, rsp, rd, rdp);
}

/** Initial sequence numbers of the client and the server. */
const ISN_C = 1000, ISN_S = 5000;
const S = new TcpSegment();

/** A hand-filled segment (the one shared instance, as the pipeline has). */
function seg(flags: number, seq: number, ack = 0, win = 65535, len = 0): TcpSegment {
  return S.set(flags, seq, ack, win, len);
}
/** Client segments after the handshake, without data. */
const cAck = () => seg(TCP_ACK, ISN_C + 1, ISN_S + 1);
const sAck = () => seg(TCP_ACK, ISN_S + 1, ISN_C + 1);

/** A plain (un-NATed) TCP flow client:40000 -> server:80. */
function plainTcp(t: ConnTable, now = T0, sport = 40000): number {
  return t.create(spec(PROTO_TCP, CLIENT, sport, SERVER, 80, SERVER, 80, CLIENT, sport), now);
}

/** Runs a full handshake on flow `id`. */
function handshake(t: ConnTable, id: number, now = T0): void {
  assert.equal(t.track(2 * id, 60, now, seg(TCP_SYN, ISN_C)), TRACK_ACCEPT);
  assert.equal(
    t.track(2 * id + 1, 60, now, seg(TCP_SYN | TCP_ACK, ISN_S, ISN_C + 1)),
    TRACK_ACCEPT,
  );
  assert.equal(t.track(2 * id, 52, now, cAck()), TRACK_ACCEPT);
}

function table(options: ConnTableOptions = {}): ConnTable {
  return new ConnTable({ capacity: 64, hashKey: [1, 2], ...options });
}

Deno.test("a flow is found by both tuples, with its direction", () => {
  const t = table();
  const id = plainTcp(t);
  assert.equal(t.lookup(PROTO_TCP, CLIENT, 40000, SERVER, 80), 2 * id);
  assert.equal(t.lookup(PROTO_TCP, SERVER, 80, CLIENT, 40000), 2 * id + 1);
  assert.equal(t.lookup(PROTO_UDP, CLIENT, 40000, SERVER, 80), -1, "protocol is part of the tuple");
  assert.equal(t.lookup(PROTO_TCP, CLIENT, 40001, SERVER, 80), -1);
  assert.equal(t.size, 1);
});

Deno.test("DNAT tuples and translated addresses", () => {
  const t = table();
  // orig = client:51000 -> wan:52201, reply = server:8080 -> client:51000
  const id = t.create(spec(PROTO_TCP, CLIENT, 51000, WAN, 52201, SERVER, 8080, CLIENT, 51000), T0);
  const fwd = t.lookup(PROTO_TCP, CLIENT, 51000, WAN, 52201);
  assert.equal(fwd, 2 * id);
  // client -> wan:52201 leaves as client -> server:8080
  assert.deepEqual(
    [
      t.translatedSrc(fwd),
      t.translatedSrcPort(fwd),
      t.translatedDst(fwd),
      t.translatedDstPort(fwd),
    ],
    [CLIENT, 51000, SERVER, 8080],
  );
  const back = t.lookup(PROTO_TCP, SERVER, 8080, CLIENT, 51000);
  assert.equal(back, 2 * id + 1);
  // server:8080 -> client leaves as wan:52201 -> client
  assert.deepEqual(
    [
      t.translatedSrc(back),
      t.translatedSrcPort(back),
      t.translatedDst(back),
      t.translatedDstPort(back),
    ],
    [WAN, 52201, CLIENT, 51000],
  );
  assert.deepEqual(
    [t.origSrc(id), t.origSrcPort(id), t.origDst(id), t.origDstPort(id)],
    [CLIENT, 51000, WAN, 52201],
  );
  assert.deepEqual(
    [t.replySrc(id), t.replySrcPort(id), t.replyDst(id), t.replyDstPort(id)],
    [SERVER, 8080, CLIENT, 51000],
  );
});

Deno.test("hairpin SNAT+DNAT", () => {
  const t = table();
  const lanClient = ip("192.0.2.20");
  // LAN client reaches the forwarded WAN port; source masqueraded to the LAN address.
  const port = 43000;
  assert.equal(t.isTupleTaken(PROTO_TCP, SERVER, 8080, LAN_WAN, port), false);
  const id = t.create(
    spec(PROTO_TCP, lanClient, 43000, WAN, 52201, SERVER, 8080, LAN_WAN, port),
    T0,
  );
  assert.equal(t.translatedSrc(2 * id), LAN_WAN);
  assert.equal(t.translatedDst(2 * id), SERVER);
  assert.equal(t.isTupleTaken(PROTO_TCP, SERVER, 8080, LAN_WAN, 43000), true);
  assert.equal(t.isTupleTaken(PROTO_TCP, lanClient, 43000, WAN, 52201), true);
});

Deno.test("ICMP echo: identifier as both ports; masqueraded identifiers", () => {
  const t = table();
  const inet = ip("203.0.113.99");
  const id = t.create(spec(PROTO_ICMP, SERVER, 777, inet, 777, inet, 777, WAN, 777), T0);
  const h = t.lookup(PROTO_ICMP, inet, 777, WAN, 777);
  assert.equal(h, 2 * id + 1);
  assert.equal(t.track(2 * id, 84, T0, null), TRACK_ACCEPT);
  assert.equal(t.track(h, 84, T0 + 1, null), TRACK_ACCEPT);
  assert.equal(t.status(id) & STATUS_SEEN_REPLY, STATUS_SEEN_REPLY);
  assert.equal(t.status(id) & STATUS_ASSURED, 0, "ICMP is never assured");
  assert.equal(t.expiresAt(id), T0 + 1 + 30);
});

Deno.test("UDP: 30 s unreplied, 120 s and assured once answered", () => {
  const t = table();
  const id = t.create(spec(PROTO_UDP, CLIENT, 5353, SERVER, 53, SERVER, 53, CLIENT, 5353), T0);
  assert.equal(t.expiresAt(id), T0 + 30);
  t.track(2 * id, 70, T0 + 5, null);
  assert.equal(t.expiresAt(id), T0 + 35);
  assert.equal(t.status(id), 0);
  t.track(2 * id + 1, 200, T0 + 6, null);
  assert.equal(t.status(id), STATUS_SEEN_REPLY | STATUS_ASSURED);
  assert.equal(t.expiresAt(id), T0 + 126);
  assert.deepEqual([t.packets(2 * id), t.packets(2 * id + 1)], [1, 1]);
  assert.deepEqual([t.bytes(2 * id), t.bytes(2 * id + 1)], [70, 200]);
  assert.equal(t.lastSeen(id), T0 + 6);
});

Deno.test("packet and byte counters carry past 2^32 a direction, through a saved record too", () => {
  const t = table();
  const id = t.create(spec(PROTO_UDP, CLIENT, 5353, SERVER, 53, SERVER, 53, CLIENT, 5353), T0);
  t.track(2 * id, 70, T0, null);
  const v = new DataView(new ArrayBuffer(FLOW_RECORD_BYTES));
  t.saveFlow(id, v, 0);
  v.setFloat64(48, 2 ** 32 - 1, true); // the original direction's packets
  v.setFloat64(56, 2 ** 33 + 5, true);
  v.setFloat64(64, 2 ** 32 - 10, true); // bytes
  v.setFloat64(72, 2 ** 50 + 3, true);
  const u = table();
  const back = u.restoreFlow(v, 0, T0, false);
  assert.deepEqual([u.packets(2 * back), u.packets(2 * back + 1)], [2 ** 32 - 1, 2 ** 33 + 5]);
  u.track(2 * back, 70, T0 + 1, null);
  u.track(2 * back + 1, 70, T0 + 1, null);
  assert.deepEqual([u.packets(2 * back), u.packets(2 * back + 1)], [2 ** 32, 2 ** 33 + 6]);
  assert.deepEqual(u.info(back).packets, [2 ** 32, 2 ** 33 + 6]);
  assert.deepEqual(u.info(back).bytes, [2 ** 32 + 60, 2 ** 50 + 73]);
  u.saveFlow(back, v, 0);
  assert.deepEqual([v.getFloat64(64, true), v.getFloat64(72, true)], [2 ** 32 + 60, 2 ** 50 + 73]);
  u.remove(back);
  const again = u.create(spec(PROTO_UDP, CLIENT, 5353, SERVER, 53, SERVER, 53, CLIENT, 5353), T0);
  assert.deepEqual(
    [u.packets(2 * again), u.packets(2 * again + 1), u.bytes(2 * again), u.bytes(2 * again + 1)],
    [0, 0, 0, 0],
    "freed slots start at 0",
  );
});

Deno.test("TCP through the table: assured after the handshake, timeouts per state", () => {
  const t = table();
  const id = plainTcp(t);
  assert.equal(t.expiresAt(id), T0 + 120);
  t.track(2 * id, 60, T0, seg(TCP_SYN, ISN_C));
  assert.equal(t.tcpState(id), TCP_SYN_SENT);
  t.track(2 * id + 1, 60, T0, seg(TCP_SYN | TCP_ACK, ISN_S, ISN_C + 1));
  assert.equal(t.status(id), STATUS_SEEN_REPLY);
  assert.equal(t.expiresAt(id), T0 + 60);
  t.track(2 * id, 52, T0 + 1, cAck());
  assert.equal(t.tcpState(id), TCP_ESTABLISHED);
  assert.equal(t.status(id), STATUS_SEEN_REPLY | STATUS_ASSURED);
  assert.equal(t.expiresAt(id), T0 + 1 + 432000);
  t.track(2 * id, 52, T0 + 2, seg(TCP_FIN | TCP_ACK, ISN_C + 1, ISN_S + 1));
  assert.equal(t.expiresAt(id), T0 + 2 + 120);
  t.track(2 * id + 1, 52, T0 + 2, seg(TCP_FIN | TCP_ACK, ISN_S + 1, ISN_C + 2));
  assert.equal(t.expiresAt(id), T0 + 2 + 30);
  t.track(2 * id, 52, T0 + 3, seg(TCP_ACK, ISN_C + 2, ISN_S + 2));
  assert.equal(t.tcpState(id), TCP_TIME_WAIT);
  assert.equal(t.expiresAt(id), T0 + 3 + 120);
  assert.equal(t.info(id).tcpState, "TIME_WAIT");
});

Deno.test("TCP: invalid segments are counted and change nothing", () => {
  const t = table();
  const id = plainTcp(t);
  assert.equal(t.track(2 * id, 52, T0, cAck()), TRACK_INVALID);
  assert.equal(t.packets(2 * id), 0);
  assert.equal(t.track(2 * id, 52, T0, null), TRACK_INVALID, "a TCP flow needs its segment");
  assert.equal(t.track(-1, 52, T0, seg(TCP_SYN, 1)), TRACK_INVALID);
  assert.equal(t.track(2 * 63, 52, T0, seg(TCP_SYN, 1)), TRACK_INVALID, "free slot");
  assert.equal(t.track(1e9, 52, T0, seg(TCP_SYN, 1)), TRACK_INVALID, "out of range");
  assert.equal(t.stats().invalid, 5);
});

Deno.test("TCP: RST closes with the 10 s timeout; a SYN reopens", () => {
  const t = table();
  const id = plainTcp(t);
  handshake(t, id);
  t.flags[id] = FLAG_GATED;
  t.track(2 * id + 1, 40, T0 + 5, seg(TCP_RST, ISN_S + 1));
  assert.equal(t.tcpState(id), TCP_CLOSE);
  assert.equal(t.expiresAt(id), T0 + 15);
  assert.equal(t.track(2 * id, 60, T0 + 6, seg(TCP_SYN, 777_777)), TRACK_REOPEN);
  assert.equal(t.tcpState(id), TCP_SYN_SENT);
  assert.equal(t.status(id), 0, "a new connection: not yet seen-reply nor assured");
  assert.deepEqual([t.packets(2 * id), t.packets(2 * id + 1)], [1, 0], "counters start over");
  assert.equal(t.flags[id], FLAG_GATED, "datapath flags survive");
  assert.equal(t.expiresAt(id), T0 + 6 + 120);
  assert.equal(t.stats().reopened, 1);
  assert.deepEqual(t.tcpWindow(2 * id), { end: 777_778, maxEnd: 777_778, maxWin: 65535, scale: 0 });
  assert.equal(t.tcpWindow(2 * id + 1).maxWin, 0, "the reply side starts over");
});

Deno.test("TCP: a blind RST or SYN is dropped and counted; an inexact RST passes, state kept", () => {
  const t = table();
  const id = plainTcp(t);
  handshake(t, id);
  const expires = t.expiresAt(id);
  assert.equal(t.track(2 * id + 1, 40, T0 + 1, seg(TCP_RST, ISN_S + 1 + 2e9)), TRACK_OUT_OF_WINDOW);
  assert.equal(t.track(2 * id, 40, T0 + 1, seg(TCP_SYN, 123_456_789)), TRACK_OUT_OF_WINDOW);
  assert.equal(t.track(2 * id, 40, T0 + 1, seg(TCP_RST, ISN_C + 100)), TRACK_ACCEPT);
  assert.equal(t.tcpState(id), TCP_ESTABLISHED);
  assert.equal(t.expiresAt(id), expires, "neither refreshes the timer");
  assert.equal(t.packets(2 * id + 1), 1, "dropped segments are not counted as the flow's");
  assert.deepEqual([t.stats().outOfWindow, t.stats().challenged], [2, 1]);
});

Deno.test("TCP: a peer that stops answering gets the unacknowledged cap", () => {
  const t = table();
  const id = plainTcp(t);
  handshake(t, id);
  t.track(2 * id + 1, 52, T0 + 1, sAck());
  assert.equal(t.expiresAt(id), T0 + 1 + 432000);
  t.track(2 * id, 1500, T0 + 2, seg(TCP_ACK, ISN_C + 1, ISN_S + 1, 65535, 1448));
  t.track(2 * id, 1500, T0 + 2, seg(TCP_ACK, ISN_C + 1, ISN_S + 1, 65535, 1448));
  assert.equal(t.expiresAt(id), T0 + 2 + 432000);
  // third in a row, unanswered (a retransmission)
  t.track(2 * id, 1500, T0 + 3, seg(TCP_ACK, ISN_C + 1, ISN_S + 1, 65535, 1448));
  assert.equal(t.expiresAt(id), T0 + 3 + 300);
  t.track(2 * id + 1, 52, T0 + 4, seg(TCP_ACK, ISN_S + 1, ISN_C + 1449));
  assert.equal(t.expiresAt(id), T0 + 4 + 432000);
});

Deno.test("clashing tuples are refused", () => {
  const t = table();
  plainTcp(t);
  assert.equal(plainTcp(t), CREATE_CLASH);
  // A different flow whose reply tuple equals the first one's reply tuple.
  assert.equal(
    t.create(spec(PROTO_TCP, ip("203.0.113.8"), 1, WAN, 2, SERVER, 80, CLIENT, 40000), T0),
    CREATE_CLASH,
  );
  assert.equal(t.stats().clashes, 2);
  assert.equal(t.size, 1);
});

Deno.test("remove frees both entries and the slot", () => {
  const t = table();
  const id = plainTcp(t);
  t.flags[id] = 7;
  t.ruleId[id] = 3;
  assert.equal(t.remove(id), true);
  assert.equal(t.remove(id), false);
  assert.equal(t.lookup(PROTO_TCP, CLIENT, 40000, SERVER, 80), -1);
  assert.equal(t.lookup(PROTO_TCP, SERVER, 80, CLIENT, 40000), -1);
  assert.equal(t.size, 0);
  const again = plainTcp(t);
  assert.equal(again, id, "slot reused");
  assert.equal(t.flags[again], 0);
  assert.equal(t.ruleId[again], -1);
  assert.equal(t.packets(2 * again), 0);
});

Deno.test("a crowded index (600 tuples in 170 lines of 4): spilled entries still resolve", () => {
  const t = table({ capacity: 300, buckets: 170, tcpShare: 1 });
  const ids: number[] = [];
  for (let p = 0; p < 300; p++) ids.push(plainTcp(t, T0, 10000 + p));
  assert.ok(ids.every((id) => id >= 0), "every flow found room within the probe bound");
  for (let p = 0; p < 300; p += 7) assert.equal(t.remove(ids[p]), true);
  for (let p = 0; p < 300; p++) {
    const want = p % 7 === 0 ? -1 : 2 * ids[p];
    assert.equal(t.lookup(PROTO_TCP, CLIENT, 10000 + p, SERVER, 80), want);
    assert.equal(t.lookup(PROTO_TCP, SERVER, 80, CLIENT, 10000 + p), want === -1 ? -1 : want + 1);
  }
});

Deno.test("full table: unassured flows are evicted first, assured never", () => {
  const gone: [number, number][] = [];
  const t = table({ capacity: 8, tcpShare: 1, onExpire: (id, why) => gone.push([id, why]) });
  for (let i = 0; i < 8; i++) {
    const id = plainTcp(t, T0, 1000 + i);
    if (i !== 5) handshake(t, id); // all but flow 5 are assured
  }
  const id = plainTcp(t, T0 + 1, 2000);
  assert.equal(id, 5, "the one unassured flow made room");
  assert.deepEqual(gone, [[5, GONE_EVICTED]]);
  assert.equal(t.lookup(PROTO_TCP, CLIENT, 1005, SERVER, 80), -1);
  handshake(t, id, T0 + 1);
  assert.equal(plainTcp(t, T0 + 2, 3000), CREATE_FULL, "only assured flows: refused");
  assert.deepEqual(t.stats(), {
    size: 8,
    capacity: 8,
    inserted: 9,
    expired: 0,
    evicted: 1,
    refused: 1,
    killed: 0,
    removed: 0,
    clashes: 0,
    invalid: 0,
    reopened: 0,
    outOfWindow: 0,
    challenged: 0,
    limbo: 0,
    refreshOverflows: 0,
    refreshed: 0,
    lockSpins: 0,
    lockTimeouts: 0,
  });
});

Deno.test("full table: a timed-out flow is reclaimed before any eviction", () => {
  const gone: [number, number][] = [];
  const t = table({ capacity: 4, onExpire: (id, why) => gone.push([id, why]) });
  for (let i = 0; i < 4; i++) {
    const id = t.create(
      spec(PROTO_UDP, CLIENT, 1000 + i, SERVER, 53, SERVER, 53, CLIENT, 1000 + i),
      T0 + i,
    );
    if (i < 3) t.track(2 * id + 1, 10, T0 + i, null); // assured, 120 s
  }
  const id = t.create(spec(PROTO_UDP, CLIENT, 9, SERVER, 53, SERVER, 53, CLIENT, 9), T0 + 124);
  assert.ok(id >= 0);
  assert.equal(gone.length, 1);
  assert.equal(gone[0][1], GONE_TIMEOUT);
  assert.equal(t.stats().expired, 1);
  assert.equal(t.stats().evicted, 0);
});

Deno.test("expiry through the wheel with a manual clock", () => {
  const clock = new ManualClock(T0 * 1000);
  const sec = () => clock.now() / 1000;
  const gone: number[] = [];
  const t = table({ onExpire: (id, why) => gone.push(id * 10 + why) });
  const udp = t.create(spec(PROTO_UDP, CLIENT, 1, SERVER, 53, SERVER, 53, CLIENT, 1), sec());
  const tcp = plainTcp(t, sec());
  handshake(t, tcp, sec()); // established: 5 days, far past one revolution
  clock.advance(29_500);
  assert.equal(t.expire(sec()), 0);
  clock.advance(1_000);
  assert.equal(t.expire(sec()), 1);
  assert.deepEqual(gone, [udp * 10 + GONE_TIMEOUT]);
  // Refresh the TCP flow every day for a week: it survives.
  for (let day = 1; day <= 7; day++) {
    for (let h = 0; h < 24; h++) {
      clock.advance(3600_000);
      t.expire(sec());
    }
    t.track(2 * tcp, 52, sec(), cAck()); // a keepalive and its answer
    t.track(2 * tcp + 1, 52, sec(), sAck());
  }
  assert.equal(t.isLive(tcp), true);
  clock.advance(432_000_000 - 1000);
  t.expire(sec());
  assert.equal(t.isLive(tcp), true);
  clock.advance(1000);
  t.expire(sec());
  assert.equal(t.isLive(tcp), false);
  assert.equal(t.stats().expired, 2);
  assert.equal(t.size, 0);
});

Deno.test("state changes that shorten the timeout take effect", () => {
  const t = table();
  const id = plainTcp(t);
  handshake(t, id);
  t.track(2 * id, 40, T0 + 1, seg(TCP_RST, ISN_C + 1));
  assert.equal(t.expire(T0 + 10), 0);
  assert.equal(t.expire(T0 + 11), 1);
});

Deno.test("kill: lookups stop at once, tuples are freed, expire reports GONE_KILLED", () => {
  const gone: [number, number][] = [];
  const t = table({ onExpire: (id, why) => gone.push([id, why]) });
  const id = plainTcp(t);
  handshake(t, id);
  assert.equal(t.kill(id, T0 + 1), true);
  assert.equal(t.kill(id, T0 + 1), false);
  assert.equal(t.status(id) & STATUS_DYING, STATUS_DYING);
  assert.equal(t.lookup(PROTO_TCP, CLIENT, 40000, SERVER, 80), -1);
  assert.equal(
    t.isTupleTaken(PROTO_TCP, CLIENT, 40000, SERVER, 80),
    false,
    "its tuples are free again",
  );
  assert.ok(plainTcp(t, T0 + 1) >= 0, "so a new flow may take them");
  assert.equal(t.track(2 * id, 52, T0 + 1, cAck()), TRACK_INVALID);
  assert.equal(t.expire(T0 + 1), 1);
  assert.deepEqual(gone, [[id, GONE_KILLED]]);
  assert.equal(t.stats().killed, 1);
});

Deno.test("onExpire sees the flow, marked dying, before it is freed", () => {
  let seen = "";
  const t = table({
    onExpire: (id) => {
      seen = `${t.origSrcPort(id)} ${t.status(id) & STATUS_DYING} ${t.flags[id]}`;
    },
  });
  const id = t.create(spec(PROTO_UDP, CLIENT, 4242, SERVER, 53, SERVER, 53, CLIENT, 4242), T0);
  t.flags[id] = FLAG_GATED;
  t.expire(T0 + 30);
  assert.equal(seen, `4242 ${STATUS_DYING} ${FLAG_GATED}`);
});

Deno.test("snapshot and forEach list live flows", () => {
  const t = table();
  const a = plainTcp(t, T0, 1);
  const b = t.create(spec(PROTO_UDP, CLIENT, 2, SERVER, 53, SERVER, 53, CLIENT, 2), T0);
  t.remove(a);
  const ids: number[] = [];
  t.forEach((id) => ids.push(id));
  assert.deepEqual(ids, [b]);
  const [info] = t.snapshot(10);
  assert.deepEqual(info.orig, { src: CLIENT, srcPort: 2, dst: SERVER, dstPort: 53 });
  assert.equal(info.tcpState, null);
  assert.equal(info.expiresAt, T0 + 30);
  assert.equal(t.snapshot(0).length, 0);
});

Deno.test("bad options throw with a clear message", () => {
  assert.throws(() => new ConnTable({ capacity: 0 }), /capacity 0 is out of range/);
  assert.throws(() => new ConnTable({ capacity: 60, buckets: 7 }), /7 buckets cannot hold 120/);
  assert.throws(() => new ConnTable({ timeouts: { icmp: -1 } }), /timeout "icmp"/);
});

Deno.test("signed addresses are normalised", () => {
  const t = table();
  const hi = ip("203.0.113.200") | 0; // negative as int32
  const id = t.create(spec(PROTO_UDP, hi, 1, SERVER, 53, SERVER, 53, hi, 1), T0);
  assert.equal(t.lookup(PROTO_UDP, hi >>> 0, 1, SERVER, 53), 2 * id);
  assert.equal(t.lookup(PROTO_UDP, hi, 1, SERVER, 53), 2 * id);
  assert.equal(t.origSrc(id), hi >>> 0);
});

Deno.test("touch counts and sets the expiry without state checks", () => {
  const t = table();
  const id = plainTcp(t);
  assert.equal(t.touch(2 * id, 100, T0 + 1, 3600), true);
  assert.equal(t.tcpState(id), 0, "no TCP state change");
  assert.equal(t.expiresAt(id), T0 + 1 + 3600);
  assert.equal(t.touch(2 * id, 40, T0 + 2, 10), true);
  assert.equal(t.packets(2 * id), 2);
  assert.equal(t.expire(T0 + 11), 0);
  assert.equal(t.expire(T0 + 12), 1, "a shorter timeout takes effect");
  assert.equal(t.touch(2 * id, 40, T0 + 13, 10), false);
  assert.equal(t.touch(-1, 40, T0 + 13, 10), false);
});

Deno.test("an onExpire that throws during early drop leaves no index line locked", () => {
  let calls = 0;
  const t = table({
    capacity: 1,
    onExpire: () => {
      if (calls++ === 0) throw new Error("callback failed");
    },
  });
  const a = t.create(spec(PROTO_UDP, CLIENT, 1, SERVER, 53, SERVER, 53, CLIENT, 1), T0);
  assert.ok(a >= 0);
  const b = spec(PROTO_UDP, CLIENT, 2, SERVER, 53, SERVER, 53, CLIENT, 2);
  assert.throws(() => t.create(b, T0), /callback failed/);
  // Were a line still locked, this create would spin for ever.
  assert.ok(t.create(spec(PROTO_UDP, CLIENT, 3, SERVER, 53, SERVER, 53, CLIENT, 3), T0) >= 0);
});

// ---- TCP slots (tcpShare) ---------------------------------------------------

/** A UDP flow CLIENT:sport -> SERVER:53. */
function udp(t: ConnTable, sport: number, now = T0): number {
  return t.create(spec(PROTO_UDP, CLIENT, sport, SERVER, 53, SERVER, 53, CLIENT, sport), now);
}

Deno.test("TCP slots: a TCP flow takes a TCP slot, UDP the others first; a full pool refuses TCP only", () => {
  const t = table({ capacity: 8, tcpShare: 0.5 }); // ids 0-3 hold TCP state
  assert.equal(t.tcpCapacity, 4);
  const tcp = [0, 1, 2, 3].map((i) => plainTcp(t, T0, 1000 + i));
  assert.deepEqual(tcp, [0, 1, 2, 3]);
  for (const id of tcp) handshake(t, id); // assured: early drop leaves them
  assert.equal(udp(t, 1), 4, "UDP takes an id without TCP state");
  assert.equal(plainTcp(t, T0 + 1, 2000), CREATE_FULL, "no TCP slot, although the table has room");
  assert.deepEqual([t.stats().refused, t.stats().evicted, t.size], [1, 0, 5]);
  for (let p = 2; p <= 4; p++) assert.ok(udp(t, p) >= 4);
  // A TCP flow ended: its slot goes back to the TCP pool, and is reused by TCP.
  assert.equal(t.remove(2), true);
  assert.equal(plainTcp(t, T0 + 2, 2001), 2);
  assert.equal(t.tcpState(2), 0, "a reused slot starts with no TCP state");
  assert.deepEqual(t.tcpWindow(2 * 4), { end: 0, maxEnd: 0, maxWin: 0, scale: 0 }, "a UDP id");
});

Deno.test("TCP slots: UDP spills into TCP slots once its own are gone; a TCP create evicts among the TCP slots only", () => {
  const gone: [number, number][] = [];
  const t = table({ capacity: 8, tcpShare: 0.5, onExpire: (id, why) => gone.push([id, why]) });
  // Ids 4-7 first, oldest; then the TCP slots 0 and 1.
  const ids = [0, 1, 2, 3, 4, 5].map((i) => udp(t, 100 + i, T0 + i));
  assert.deepEqual(ids, [4, 5, 6, 7, 0, 1]);
  assert.equal(t.tcpState(0), 0);
  const a = plainTcp(t, T0 + 10, 3000), b = plainTcp(t, T0 + 11, 3001);
  assert.deepEqual([a, b], [2, 3]);
  handshake(t, b, T0 + 11); // assured
  // No TCP slot free: the least recently seen unassured flow among ids 0-3
  // is the UDP flow on id 0 (T0 + 4), not the older ones on ids 4-7.
  const c = plainTcp(t, T0 + 12, 3002);
  assert.equal(c, 0);
  assert.deepEqual(gone, [[0, GONE_EVICTED]]);
  assert.equal(t.lookup(PROTO_UDP, CLIENT, 104, SERVER, 53), -1);
  assert.equal(t.lookup(PROTO_UDP, CLIENT, 100, SERVER, 53), 2 * 4, "the older UDP flows stay");
  // Only assured flows on TCP slots: a TCP create is refused, a UDP one evicts from the whole table.
  handshake(t, a, T0 + 12);
  handshake(t, c, T0 + 12);
  t.track(2 * 1 + 1, 10, T0 + 12, null); // the UDP flow on id 1 answered: assured
  assert.equal(plainTcp(t, T0 + 13, 3003), CREATE_FULL);
  assert.equal(gone.length, 1);
  assert.equal(udp(t, 200, T0 + 13), 4, "UDP evicts its stalest unassured flow, on id 4");
  assert.deepEqual(gone[1], [4, GONE_EVICTED]);
});

Deno.test("TCP slots: a UDP flow saves an empty TCP record; a TCP record restores into a TCP slot, or not at all", () => {
  const t = table({ capacity: 8, tcpShare: 0.5 });
  const u = udp(t, 7);
  assert.ok(u >= 4);
  t.track(2 * u + 1, 99, T0, null);
  const id = plainTcp(t);
  handshake(t, id);
  const v = new DataView(new ArrayBuffer(2 * FLOW_RECORD_BYTES));
  new Uint8Array(v.buffer).fill(0xee);
  t.saveFlow(u, v, 0);
  t.saveFlow(id, v, FLOW_RECORD_BYTES);
  for (let k = 80; k < 80 + TCP_RECORD_BYTES; k++) assert.equal(v.getUint8(k), 0, `UDP byte ${k}`);

  const back = table({ capacity: 4, tcpShare: 0.5 }); // 2 TCP slots
  assert.equal(back.tcpCapacity, 2);
  const r = back.restoreFlow(v, FLOW_RECORD_BYTES, T0 + 1, false);
  assert.ok(r >= 0 && r < 2, "a TCP slot");
  assert.equal(back.tcpState(r), TCP_ESTABLISHED);
  assert.deepEqual(back.tcpWindow(2 * r), t.tcpWindow(2 * id));
  assert.equal(back.restoreFlow(v, 0, T0 + 1, false) >= 2, true, "UDP: one of the others");
  // Both TCP slots taken by assured flows: the record does not fit.
  handshake(back, plainTcp(back, T0 + 1, 41000), T0 + 1);
  back.remove(r);
  handshake(back, plainTcp(back, T0 + 1, 41001), T0 + 1);
  assert.equal(back.restoreFlow(v, FLOW_RECORD_BYTES, T0 + 1, false), CREATE_FULL);
});

Deno.test("TCP slots: tcpShare 0 holds no TCP flow, 1 a TCP flow in every slot; the share is the buffer's", () => {
  const none = table({ capacity: 8, tcpShare: 0 });
  assert.equal(none.tcpCapacity, 0);
  assert.equal(plainTcp(none), CREATE_FULL);
  assert.ok(udp(none, 1) >= 0);
  const all = table({ capacity: 8, tcpShare: 1 });
  for (let i = 0; i < 8; i++) assert.equal(plainTcp(all, T0, 1000 + i), i);
  assert.equal(table({ capacity: 5, tcpShare: 0.5 }).tcpCapacity, 3, "rounded up");
  for (const bad of [-0.1, 1.5, NaN]) {
    assert.throws(() => table({ tcpShare: bad }), /tcpShare .* is out of range/);
  }
  const view = new ConnTable({ buffer: all.buffer });
  assert.equal(view.tcpCapacity, 8);
  assert.equal(
    ConnTable.bufferBytes({ capacity: 1024, tcpShare: 1 }) -
      ConnTable.bufferBytes({ capacity: 1024, tcpShare: 0.5 }),
    512 * TCP_RECORD_BYTES,
    "the TCP columns of half the ids",
  );
});

Deno.test("a new flow's flags, rule and pickup are in place when create publishes it", () => {
  const t = table({ capacity: 16 });
  const s = spec(PROTO_TCP, 1, 40000, 2, 80, 3, 8080, 1, 40000);
  s.flags = FLAG_GATED;
  s.ruleId = 7;
  s.pickUp = true;
  const id = t.create(s, 100);
  assert.ok(id >= 0);
  assert.equal(t.flags[id], FLAG_GATED);
  assert.equal(t.ruleId[id], 7);
  assert.equal(t.tcpState(id), TCP_ESTABLISHED, "picked up in mid stream");
  // `original` clears them for the next flow.
  const u = t.create(s.original(PROTO_UDP, 1, 5000, 2, 53), 100);
  assert.equal(t.flags[u], 0);
  assert.equal(t.ruleId[u], -1);
});
