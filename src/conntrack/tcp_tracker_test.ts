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
import {
  isTcpOpening,
  STEP_IGNORE,
  STEP_INVALID,
  STEP_OK,
  STEP_REOPEN,
  tcpStep,
  unansweredRun,
} from "./tcp_tracker.ts";

const SYN = TCP_SYN;
const SYNACK = TCP_SYN | TCP_ACK;
const ACK = TCP_ACK;
const FINACK = TCP_FIN | TCP_ACK;
const RST = TCP_RST;

/** A one-flow tracker that runs segments and records each step and state. */
class Flow {
  state = new Uint8Array(1);
  aux = new Uint8Array(1);
  step(dir: number, flags: number): number {
    return tcpStep(this.state, this.aux, 0, dir, flags);
  }
  /** Runs segments, asserting every step is `expectStep`; returns the final state. */
  run(segments: [number, number][], expectStep = STEP_OK): number {
    for (const [dir, flags] of segments) assert.equal(this.step(dir, flags), expectStep);
    return this.state[0];
  }
}

const HANDSHAKE: [number, number][] = [[O, SYN], [R, SYNACK], [O, ACK]];

Deno.test("handshake: SYN, SYN/ACK, ACK", () => {
  const f = new Flow();
  assert.equal(f.run([[O, SYN]]), TCP_SYN_SENT);
  assert.equal(f.run([[R, SYNACK]]), TCP_SYN_RECV);
  assert.equal(f.run([[O, ACK]]), TCP_ESTABLISHED);
  assert.equal(f.run([[O, ACK | TCP_PSH], [R, ACK | TCP_PSH]]), TCP_ESTABLISHED);
});

Deno.test("retransmitted SYN stays SYN_SENT; reply ACK in SYN_SENT is ignored", () => {
  const f = new Flow();
  assert.equal(f.run([[O, SYN], [O, SYN]]), TCP_SYN_SENT);
  assert.equal(f.step(R, ACK), STEP_IGNORE);
  assert.equal(f.state[0], TCP_SYN_SENT);
});

Deno.test("segments that cannot open a flow are invalid in NONE", () => {
  for (const flags of [ACK, FINACK, RST, SYNACK, 0]) {
    const f = new Flow();
    assert.equal(f.step(O, flags), STEP_INVALID, `flags ${flags}`);
    assert.equal(f.state[0], TCP_NONE);
  }
  const f = new Flow();
  assert.equal(f.step(R, SYN), STEP_INVALID);
});

Deno.test("ACK or FIN from the originator before the SYN/ACK is invalid", () => {
  const f = new Flow();
  f.run([[O, SYN]]);
  assert.equal(f.step(O, ACK), STEP_INVALID);
  assert.equal(f.step(O, FINACK), STEP_INVALID);
  assert.equal(f.state[0], TCP_SYN_SENT);
});

Deno.test("SYN with FIN is always invalid", () => {
  const f = new Flow();
  assert.equal(f.step(O, TCP_SYN | TCP_FIN), STEP_INVALID);
});

Deno.test("close initiated by the originator: FIN, ACK, FIN, ACK", () => {
  const f = new Flow();
  f.run(HANDSHAKE);
  assert.equal(f.run([[O, FINACK]]), TCP_FIN_WAIT);
  assert.equal(f.run([[O, ACK]]), TCP_FIN_WAIT, "the FIN sender's own ACK does not half-close");
  assert.equal(f.run([[R, ACK]]), TCP_CLOSE_WAIT);
  assert.equal(f.run([[R, ACK | TCP_PSH]]), TCP_CLOSE_WAIT);
  assert.equal(f.run([[R, FINACK]]), TCP_LAST_ACK);
  assert.equal(f.run([[R, FINACK]]), TCP_LAST_ACK, "retransmitted FIN");
  assert.equal(f.run([[R, ACK]]), TCP_LAST_ACK, "ACK from the last FIN's sender");
  assert.equal(f.run([[O, ACK]]), TCP_TIME_WAIT);
  assert.equal(f.run([[O, ACK]]), TCP_TIME_WAIT);
});

Deno.test("close initiated by the responder, FINs crossing", () => {
  const f = new Flow();
  f.run(HANDSHAKE);
  assert.equal(f.run([[R, FINACK]]), TCP_FIN_WAIT);
  assert.equal(f.run([[O, FINACK]]), TCP_LAST_ACK);
  assert.equal(f.run([[R, ACK]]), TCP_TIME_WAIT);
});

Deno.test("RST closes from any state past NONE", () => {
  for (const prefix of [[[O, SYN]], [[O, SYN], [R, SYNACK]], HANDSHAKE] as [number, number][][]) {
    for (const dir of [O, R]) {
      const f = new Flow();
      f.run(prefix);
      assert.equal(f.run([[dir, RST]]), TCP_CLOSE);
    }
  }
  const f = new Flow();
  f.run(HANDSHAKE);
  assert.equal(f.run([[R, RST | TCP_ACK]]), TCP_CLOSE);
  assert.equal(f.run([[O, ACK]]), TCP_CLOSE);
});

Deno.test("SYN on TIME_WAIT or CLOSE reopens; on ESTABLISHED it is ignored", () => {
  const tw = new Flow();
  tw.run([...HANDSHAKE, [O, FINACK], [R, FINACK], [O, ACK]]);
  assert.equal(tw.state[0], TCP_TIME_WAIT);
  assert.equal(tw.step(O, SYN), STEP_REOPEN);
  assert.equal(tw.state[0], TCP_SYN_SENT);
  assert.equal(tw.run([[R, SYNACK], [O, ACK]]), TCP_ESTABLISHED);
  assert.equal(tw.run([[O, FINACK]]), TCP_FIN_WAIT, "FIN bits were cleared by the reopen");

  const cl = new Flow();
  cl.run([...HANDSHAKE, [O, RST]]);
  assert.equal(cl.step(R, SYN), STEP_INVALID, "only the originator reopens");
  assert.equal(cl.step(O, SYN), STEP_REOPEN);

  const es = new Flow();
  es.run(HANDSHAKE);
  assert.equal(es.step(O, SYN), STEP_IGNORE);
  assert.equal(es.step(R, SYNACK), STEP_IGNORE);
  assert.equal(es.state[0], TCP_ESTABLISHED);
});

Deno.test("the unanswered run counts packets in a row one way", () => {
  const f = new Flow();
  f.run(HANDSHAKE);
  assert.equal(unansweredRun(f.aux[0]), 1);
  f.run([[O, ACK], [O, ACK], [O, ACK]]);
  assert.equal(unansweredRun(f.aux[0]), 4);
  f.run([[R, ACK]]);
  assert.equal(unansweredRun(f.aux[0]), 1);
  for (let i = 0; i < 40; i++) f.run([[R, ACK]]);
  assert.equal(unansweredRun(f.aux[0]), 15, "saturates");
});

Deno.test("isTcpOpening accepts SYN alone (PSH/ECN bits allowed)", () => {
  assert.equal(isTcpOpening(SYN), true);
  assert.equal(isTcpOpening(SYN | 0xc0), true);
  assert.equal(isTcpOpening(SYNACK), false);
  assert.equal(isTcpOpening(SYN | TCP_RST), false);
  assert.equal(isTcpOpening(SYN | TCP_FIN), false);
  assert.equal(isTcpOpening(ACK), false);
});
