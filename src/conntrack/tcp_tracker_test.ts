import assert from "node:assert/strict";
import {
  DIR_ORIGINAL as O,
  DIR_REPLY as R,
  TCP_ACK,
  TCP_CLOSE,
  TCP_CLOSE_WAIT,
  TCP_ESTABLISHED,
  TCP_FIN,
  TCP_FIN_WAIT,
  TCP_LAST_ACK,
  TCP_NONE,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  TCP_TIME_WAIT,
} from "./constants.ts";
import { TcpSegment } from "./segment.ts";
import {
  isTcpOpening,
  STEP_CHALLENGE,
  STEP_IGNORE,
  STEP_INVALID,
  STEP_OK,
  STEP_OUT_OF_WINDOW,
  STEP_REOPEN,
  TCP_RECORD_BYTES,
  TcpTracker,
  unansweredRun,
} from "./tcp_tracker.ts";
import { buildTcp, Ipv4Packet, TcpPacket } from "../packet/mod.ts";

const SYN = TCP_SYN;
const SYNACK = TCP_SYN | TCP_ACK;
const ACK = TCP_ACK;
const PSHACK = TCP_PSH | TCP_ACK;
const FINACK = TCP_FIN | TCP_ACK;
const RST = TCP_RST;
const RSTACK = TCP_RST | TCP_ACK;

/**
 * One tracked connection driven by hand-built segments. `nxt[dir]` is the
 * next sequence number side `dir` sends, as its TCP would keep it.
 */
class Conn {
  readonly t = new TcpTracker(1);
  readonly seg = new TcpSegment();
  readonly nxt = [0, 0];

  get state(): number {
    return this.t.state[0];
  }

  /** Tracks one raw segment; returns the STEP_* code. */
  raw(dir: number, flags: number, seq: number, ack = 0, win = 65535, len = 0): number {
    return this.t.step(0, dir, this.seg.set(flags, seq, ack, win, len));
  }

  /** A segment at side `dir`'s next sequence number acking all the other side sent; advances nxt. */
  send(dir: number, flags: number, len = 0, win = 65535): number {
    const seq = this.nxt[dir];
    const step = this.raw(dir, flags, seq, this.nxt[dir ^ 1], win, len);
    this.nxt[dir] = (seq + len + (flags & (TCP_SYN | TCP_FIN) ? 1 : 0)) >>> 0;
    return step;
  }

  /** SYN, SYN/ACK, ACK from initial sequence numbers `isnO`, `isnR`, with optional window scales. */
  handshake(isnO: number, isnR: number, wsO = -1, wsR = -1, winO = 65535, winR = 65535): void {
    this.nxt[O] = isnO >>> 0;
    this.nxt[R] = isnR >>> 0;
    assert.equal(
      this.t.step(0, O, this.seg.set(SYN, isnO, 0, winO).synOptions(wsO, true)),
      STEP_OK,
    );
    this.nxt[O] = (isnO + 1) >>> 0;
    const sa = this.seg.set(SYNACK, isnR, this.nxt[O], winR).synOptions(wsR, true);
    assert.equal(this.t.step(0, R, sa), STEP_OK);
    this.nxt[R] = (isnR + 1) >>> 0;
    assert.equal(this.send(O, ACK, 0, wsO >= 0 && wsR >= 0 ? winO >>> wsO : winO), STEP_OK);
    assert.equal(this.state, TCP_ESTABLISHED);
  }
}

/** A case of the table: a connection after a handshake, then steps with their expected results. */
interface Case {
  name: string;
  isn?: [number, number];
  run: (c: Conn) => [step: number, want: number, what: string][];
  state: number;
}

const CASES: Case[] = [
  {
    name: "data both ways, each acknowledged",
    run: (c) => [
      [c.send(O, PSHACK, 1000), STEP_OK, "client data"],
      [c.send(R, ACK), STEP_OK, "server acks"],
      [c.send(R, PSHACK, 30000), STEP_OK, "server data"],
      [c.send(O, ACK), STEP_OK, "client acks"],
    ],
    state: TCP_ESTABLISHED,
  },
  {
    name: "an exact RST from the server (its td_end) closes",
    run: (c) => [
      [c.send(O, PSHACK, 100), STEP_OK, "client data"],
      [c.raw(R, RST, c.nxt[R]), STEP_OK, "exact RST"],
    ],
    state: TCP_CLOSE,
  },
  {
    name: "an exact RST at the receiver's last ack (a peer that lost its state) closes",
    run: (c) => {
      const acked = c.nxt[R];
      const r: [number, number, string][] = [
        [c.send(R, PSHACK, 500), STEP_OK, "server data, not yet acked"],
        [c.send(O, PSHACK, 10), STEP_OK, "client data"],
      ];
      // The server's data was acked up to `acked` + 500 by the client's segment.
      r.push([c.raw(R, RSTACK, (acked + 500) >>> 0, c.nxt[O]), STEP_OK, "RST seq = client's ack"]);
      return r;
    },
    state: TCP_CLOSE,
  },
  {
    name: "an in-window RST that is not exact passes without closing",
    run: (c) => [
      [c.raw(R, RST, c.nxt[R] + 100), STEP_CHALLENGE, "RST 100 past RCV.NXT"],
      [c.raw(O, RSTACK, c.nxt[O] + 40000, c.nxt[R]), STEP_CHALLENGE, "RST|ACK 40000 past"],
      [c.send(O, PSHACK, 10), STEP_OK, "the flow keeps passing data"],
    ],
    state: TCP_ESTABLISHED,
  },
  {
    name: "RSTs outside the window are dropped",
    run: (c) => [
      [c.raw(R, RST, c.nxt[R] + 0x80000000), STEP_OUT_OF_WINDOW, "half the space away"],
      [c.raw(R, RST, c.nxt[R] + 200000), STEP_OUT_OF_WINDOW, "past the window"],
      [c.raw(O, RST, c.nxt[O] - 200000), STEP_OUT_OF_WINDOW, "before the window"],
      [c.raw(O, RSTACK, c.nxt[O], c.nxt[R] + 5000), STEP_OUT_OF_WINDOW, "acks unseen data"],
      [c.send(R, PSHACK, 10), STEP_OK, "the flow keeps passing data"],
    ],
    state: TCP_ESTABLISHED,
  },
  {
    name: "a SYN on an established flow: dropped outside the window, passed inside, state kept",
    run: (c) => [
      [c.raw(O, SYN, 0x12345678), STEP_OUT_OF_WINDOW, "a blind SYN"],
      [c.raw(O, SYN, c.nxt[O] - 1), STEP_CHALLENGE, "a SYN in the window"],
      [c.raw(R, SYNACK, 0x22345678, c.nxt[O]), STEP_OUT_OF_WINDOW, "a blind SYN/ACK"],
      [c.raw(R, SYNACK, c.nxt[R] - 1, c.nxt[O]), STEP_IGNORE, "a late SYN/ACK retransmission"],
      [c.send(O, PSHACK, 10), STEP_OK, "the flow keeps passing data"],
    ],
    state: TCP_ESTABLISHED,
  },
  {
    name: "retransmissions (no SACK) are accepted",
    run: (c) => {
      const seq = c.nxt[O];
      return [
        [c.send(O, PSHACK, 1448), STEP_OK, "segment"],
        [c.send(O, PSHACK, 1448), STEP_OK, "next segment"],
        [c.send(R, ACK), STEP_OK, "both acked"],
        [c.raw(O, PSHACK, seq, c.nxt[R], 65535, 1448), STEP_OK, "first one again"],
        [c.raw(O, PSHACK, seq, c.nxt[R], 65535, 2896), STEP_OK, "both again, coalesced"],
        [c.raw(R, ACK, c.nxt[R], c.nxt[O]), STEP_OK, "a duplicate ACK"],
      ];
    },
    state: TCP_ESTABLISHED,
  },
  {
    name: "data beyond the receiver's window is dropped; a small overshoot passes",
    run: (c) => [
      [c.raw(O, PSHACK, c.nxt[O] + 65535 + 70000, c.nxt[R], 65535, 100), STEP_OUT_OF_WINDOW, "far"],
      [c.raw(O, PSHACK, c.nxt[O] + 65000, c.nxt[R], 65535, 1000), STEP_OK, "ends past, starts in"],
      [c.raw(O, PSHACK, c.nxt[O] + 65535 + 100, c.nxt[R], 65535, 1000), STEP_IGNORE, "1101 over"],
      [c.raw(O, PSHACK, c.nxt[O] - 70000, c.nxt[R], 65535, 100), STEP_OUT_OF_WINDOW, "stale"],
    ],
    state: TCP_ESTABLISHED,
  },
  {
    name: "an ancient ACK passes without moving anything",
    run: (c) => {
      const old = c.nxt[R];
      const r: [number, number, string][] = [];
      for (let i = 0; i < 4; i++) {
        r.push([c.send(R, PSHACK, 30000), STEP_OK, "server data"]);
        r.push([c.send(O, ACK), STEP_OK, "client acks"]);
      }
      r.push([c.raw(O, ACK, c.nxt[O], old), STEP_IGNORE, "an ack 120000 bytes old"]);
      return r;
    },
    state: TCP_ESTABLISHED,
  },
  {
    name: "close: FIN, ACK, FIN, ACK with sequence numbers",
    run: (c) => [
      [c.send(O, FINACK), STEP_OK, "client FIN"],
      [c.send(R, ACK), STEP_OK, "server acks the FIN"],
      [c.send(R, PSHACK, 100), STEP_OK, "server still sends"],
      [c.send(O, ACK), STEP_OK, "client acks"],
      [c.send(R, FINACK), STEP_OK, "server FIN"],
      [c.send(O, ACK), STEP_OK, "last ACK"],
    ],
    state: TCP_TIME_WAIT,
  },
  {
    name: "sequence numbers wrap at 2^32",
    isn: [0xffffff00, 0xfffffff0],
    run: (c) => [
      [c.send(O, PSHACK, 1000), STEP_OK, "client data across 2^32"],
      [c.send(R, PSHACK, 1000), STEP_OK, "server data across 2^32, acking it"],
      [c.send(O, ACK), STEP_OK, "client acks"],
      [c.raw(R, RST, (c.nxt[R] + 0x80000000) >>> 0), STEP_OUT_OF_WINDOW, "a blind RST"],
      [c.raw(R, RST, (c.nxt[R] - 100) >>> 0), STEP_CHALLENGE, "inexact, in window"],
      [c.raw(R, RST, c.nxt[R]), STEP_OK, "exact, wrapped"],
    ],
    state: TCP_CLOSE,
  },
];

for (const k of CASES) {
  Deno.test(`window: ${k.name}`, () => {
    const c = new Conn();
    const [a, b] = k.isn ?? [1_000_000, 3_000_000_000];
    c.handshake(a, b);
    for (const [got, want, what] of k.run(c)) assert.equal(got, want, what);
    assert.equal(c.state, k.state);
  });
}

Deno.test("window scaling applies only when both SYNs carried the option", () => {
  const both = new Conn();
  both.handshake(100, 900, 7, 9, 64240, 65160);
  assert.deepEqual([both.t.scale(0), both.t.scale(1)], [7, 9]);
  // The client's ACK announced 64240 >> 7 = 501 units: 64128 bytes.
  assert.equal(both.t.maxEnd[1], 901 + (501 << 7));
  assert.equal(both.send(R, PSHACK, 60000), STEP_OK);
  // A window of 20000 units is 2.56 MB: a 1 MB burst fits.
  assert.equal(both.send(O, ACK, 0, 20000), STEP_OK);
  assert.equal(both.raw(R, PSHACK, both.nxt[R] + 2_000_000, both.nxt[O], 65535, 1000), STEP_OK);

  const one = new Conn();
  one.handshake(100, 900, 7, -1, 64240, 65160);
  assert.deepEqual([one.t.scale(0), one.t.scale(1)], [0, 0]);
  assert.equal(one.t.maxEnd[1], 901 + 64240, "the ACK's window is taken unscaled");
  assert.equal(one.raw(R, PSHACK, 901 + 200_000, one.nxt[O], 65535, 1000), STEP_OUT_OF_WINDOW);
});

Deno.test("SACK blocks raise the ack checked against the receiver's end", () => {
  const c = new Conn();
  c.handshake(10, 20);
  assert.equal(c.send(R, PSHACK, 3000), STEP_OK);
  const sack = (edge: number) =>
    c.t.step(0, O, c.seg.set(ACK, c.nxt[O], 21 + 1000, 65535).sackBlock(edge));
  assert.equal(sack(21 + 3000), STEP_OK, "SACK of data seen");
  assert.equal(sack(21 + 9000), STEP_OUT_OF_WINDOW, "SACK of data never sent");
});

Deno.test("SYN_SENT: a reply RST must acknowledge the SYN", () => {
  const c = new Conn();
  assert.equal(c.raw(O, SYN, 5000), STEP_OK);
  assert.equal(c.raw(R, RST, 0), STEP_OUT_OF_WINDOW, "no ACK");
  assert.equal(c.raw(R, RSTACK, 0, 4000), STEP_OUT_OF_WINDOW, "acks something else");
  assert.equal(c.raw(O, RST, 77), STEP_OUT_OF_WINDOW, "the client's own RST must match its SYN");
  assert.equal(c.state, TCP_SYN_SENT);
  assert.equal(c.raw(R, RSTACK, 0, 5001), STEP_OK, "connection refused");
  assert.equal(c.state, TCP_CLOSE);
});

Deno.test("the SYN/ACK must acknowledge the SYN (within Linux's slack)", () => {
  const c = new Conn();
  assert.equal(c.raw(O, SYN, 5000), STEP_OK);
  assert.equal(c.raw(R, SYNACK, 9000, 5002), STEP_OUT_OF_WINDOW, "acks past the SYN");
  assert.equal(c.state, TCP_SYN_SENT);
});

Deno.test("a retransmitted SYN with a new ISN re-initialises the originator", () => {
  const c = new Conn();
  assert.equal(c.raw(O, SYN, 5000), STEP_OK);
  assert.equal(c.raw(O, SYN, 9000), STEP_OK);
  assert.equal(c.t.end[0], 9001);
  assert.equal(c.raw(R, SYNACK, 100, 9001), STEP_OK);
  assert.equal(c.state, TCP_SYN_RECV);
});

Deno.test("a SYN on TIME_WAIT or CLOSE reopens with fresh windows", () => {
  const c = new Conn();
  c.handshake(1, 2);
  for (const [d, f] of [[O, FINACK], [R, FINACK], [O, ACK]]) c.send(d, f);
  assert.equal(c.state, TCP_TIME_WAIT);
  assert.equal(c.raw(O, SYN, 0x7000_0000), STEP_REOPEN);
  assert.equal(c.state, TCP_SYN_SENT);
  assert.deepEqual([c.t.end[0], c.t.maxWin[1]], [0x7000_0001, 0]);
  assert.equal(c.raw(R, SYNACK, 44, 0x7000_0001), STEP_OK);
  assert.equal(c.raw(O, ACK, 0x7000_0001, 45), STEP_OK);
  assert.equal(c.state, TCP_ESTABLISHED);
  assert.equal(c.raw(O, FINACK, 0x7000_0001, 45), STEP_OK);
  assert.equal(c.state, TCP_FIN_WAIT, "FIN bits were cleared by the reopen");

  const cl = new Conn();
  cl.handshake(1, 2);
  assert.equal(cl.raw(O, RST, 2), STEP_OK);
  assert.equal(cl.raw(R, SYN, 99), STEP_INVALID, "only the originator reopens");
  assert.equal(cl.raw(O, SYN, 99), STEP_REOPEN);
});

Deno.test("flag state machine: handshake steps and retransmitted SYN", () => {
  const c = new Conn();
  assert.equal(c.raw(O, SYN, 10), STEP_OK);
  assert.equal(c.raw(O, SYN, 10), STEP_OK);
  assert.equal(c.state, TCP_SYN_SENT);
  assert.equal(c.raw(R, ACK, 0, 11), STEP_IGNORE, "a reply ACK in SYN_SENT (half open)");
  assert.equal(c.raw(O, ACK, 11, 0), STEP_INVALID, "ACK before the SYN/ACK");
  assert.equal(c.raw(O, FINACK, 11, 0), STEP_INVALID, "FIN before the SYN/ACK");
  assert.equal(c.raw(R, SYNACK, 20, 11), STEP_OK);
  assert.equal(c.state, TCP_SYN_RECV);
  assert.equal(c.raw(R, SYNACK, 20, 11), STEP_IGNORE, "retransmitted SYN/ACK");
  assert.equal(c.raw(O, ACK, 11, 21), STEP_OK);
  assert.equal(c.state, TCP_ESTABLISHED);
});

Deno.test("segments that cannot open a flow are invalid in NONE; bad flag sets always", () => {
  for (const flags of [ACK, FINACK, RST, SYNACK, 0]) {
    const c = new Conn();
    assert.equal(c.raw(O, flags, 1), STEP_INVALID, `flags ${flags}`);
    assert.equal(c.state, TCP_NONE);
  }
  assert.equal(new Conn().raw(R, SYN, 1), STEP_INVALID);
  const c = new Conn();
  c.handshake(1, 2);
  for (const flags of [SYN | TCP_FIN, SYN | RST, TCP_FIN, 0, TCP_FIN | TCP_PSH]) {
    assert.equal(c.raw(O, flags, 2, 3), STEP_INVALID, `flags ${flags}`);
  }
  assert.equal(c.state, TCP_ESTABLISHED);
});

Deno.test("close initiated by the responder, FINs crossing", () => {
  const c = new Conn();
  c.handshake(1, 2);
  const fo = c.nxt[O];
  assert.equal(c.send(R, FINACK), STEP_OK);
  assert.equal(c.state, TCP_FIN_WAIT);
  assert.equal(
    c.raw(O, FINACK, fo, 2),
    STEP_OK,
    "the client's FIN, sent before the server's arrived",
  );
  assert.equal(c.state, TCP_LAST_ACK);
  assert.equal(c.raw(R, ACK, c.nxt[R], fo + 1), STEP_OK);
  assert.equal(c.state, TCP_TIME_WAIT);
});

Deno.test("half close: the FIN sender's own ACK does not half-close", () => {
  const c = new Conn();
  c.handshake(1, 2);
  assert.equal(c.send(O, FINACK), STEP_OK);
  assert.equal(c.send(O, ACK), STEP_OK);
  assert.equal(c.state, TCP_FIN_WAIT);
  assert.equal(c.send(R, ACK), STEP_OK);
  assert.equal(c.state, TCP_CLOSE_WAIT);
});

Deno.test("the unanswered run counts packets in a row one way", () => {
  const c = new Conn();
  c.handshake(1, 2);
  assert.equal(unansweredRun(c.t.aux[0]), 1);
  for (let i = 0; i < 3; i++) c.send(O, ACK);
  assert.equal(unansweredRun(c.t.aux[0]), 4);
  c.send(R, ACK);
  assert.equal(unansweredRun(c.t.aux[0]), 1);
  for (let i = 0; i < 40; i++) c.send(R, ACK);
  assert.equal(unansweredRun(c.t.aux[0]), 15, "saturates");
});

Deno.test("TcpSegment.read takes the window scale and SACK-permitted options of a SYN", () => {
  // MSS 1460, SACK permitted, NOP, window scale 7 (what Linux sends, minus timestamps).
  const options = new Uint8Array([2, 4, 5, 180, 4, 2, 1, 3, 3, 7]);
  const pkt = buildTcp({
    src: "203.0.113.7",
    dst: "198.51.100.2",
    srcPort: 40000,
    dstPort: 80,
    flags: SYN,
    seq: 42,
    window: 64240,
    options,
  });
  const ip = new Ipv4Packet().bind(pkt);
  const tcp = new TcpPacket().bind(pkt, ip.payloadOffset(), ip.payloadLen());
  const s = new TcpSegment().read(tcp);
  assert.deepEqual([s.flags, s.seq, s.window, s.payloadLen, s.wscale, s.sackPerm], [
    SYN,
    42,
    64240,
    0,
    7,
    true,
  ]);
  const c = new Conn();
  assert.equal(c.t.step(0, O, s), STEP_OK);
  assert.equal(c.t.scale(0), 7);
});

Deno.test("isTcpOpening accepts SYN alone (PSH/ECN bits allowed)", () => {
  assert.equal(isTcpOpening(SYN), true);
  assert.equal(isTcpOpening(SYN | 0xc0), true);
  assert.equal(isTcpOpening(SYNACK), false);
  assert.equal(isTcpOpening(SYN | TCP_RST), false);
  assert.equal(isTcpOpening(SYN | TCP_FIN), false);
  assert.equal(isTcpOpening(ACK), false);
});

Deno.test("pickup and save/load: a mid-stream flow passes liberally; a saved flow loads as it was", () => {
  const t = new TcpTracker(2);
  t.pickUp(0);
  const seg = (flags: number, seq: number, ack: number, len = 0, window = 500) =>
    new TcpSegment().set(flags, seq, ack, window, len);
  assert.equal(t.step(0, 0, seg(TCP_ACK, 1_000_000, 5_000, 100)), STEP_OK);
  assert.equal(t.step(0, 1, seg(TCP_ACK, 5_000, 1_000_100, 100)), STEP_OK);
  // Far beyond the unscaled window: a scaled window we never saw negotiated.
  assert.equal(t.step(0, 0, seg(TCP_ACK, 1_400_000, 5_100, 1000)), STEP_OK);
  assert.equal(t.isLiberal(0), true, "a picked-up flow stays liberal");
  assert.equal(t.step(0, 0, seg(TCP_RST, 900_000_000, 0)), STEP_OUT_OF_WINDOW, "never a RST");
  const v = new DataView(new ArrayBuffer(TCP_RECORD_BYTES));
  t.save(0, v, 0);
  assert.equal(t.load(1, v, 0), true);
  for (const a of [t.end, t.maxEnd, t.maxWin, t.maxAck, t.wflags]) {
    assert.deepEqual([a[2], a[3]], [a[0], a[1]]);
  }
  assert.equal(t.state[1], TCP_ESTABLISHED);
  assert.equal(t.isLiberal(2) && t.isLiberal(3), true);
});
