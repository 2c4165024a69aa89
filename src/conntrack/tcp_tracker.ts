/**
 * A simplified Linux TCP connection tracker (nf_conntrack_proto_tcp): the
 * state follows SYN, SYN/ACK, ACK, FIN and RST per direction; sequence
 * windows are not checked. Differences from Linux: simultaneous open (a
 * reply-direction SYN in SYN_SENT) is ignored rather than tracked, and only
 * an original-direction SYN reopens a TIME_WAIT/CLOSE flow.
 *
 * Per-flow side state lives in one byte (`aux`): which sides sent FIN, the
 * direction of the last FIN, the direction of the last packet and how many
 * packets in a row went that way unanswered.
 */
import {
  DIR_REPLY,
  TCP_ACK,
  TCP_CLOSE,
  TCP_CLOSE_WAIT,
  TCP_ESTABLISHED,
  TCP_FIN,
  TCP_FIN_WAIT,
  TCP_LAST_ACK,
  TCP_NONE,
  TCP_RST,
  TCP_SYN,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  TCP_TIME_WAIT,
} from "./constants.ts";

/** Step result: state updated (or unchanged), packet accepted. */
export const STEP_OK = 0;
/** Step result: accepted, but the packet does not move the state nor refresh the timer. */
export const STEP_IGNORE = 1;
/** Step result: the packet does not fit the state; state untouched. */
export const STEP_INVALID = 2;
/** Step result: a SYN restarted a TIME_WAIT/CLOSE flow as a new connection. */
export const STEP_REOPEN = 3;

const AUX_FIN_ORIG = 0x01;
const AUX_LAST_FIN_REPLY = 0x04;
const AUX_LAST_DIR_REPLY = 0x08;
const AUX_RUN_SHIFT = 4;
const AUX_RUN_MAX = 15;

const IDX_SYN = 0;
const IDX_SYNACK = 1;
const IDX_FIN = 2;
const IDX_ACK = 3;
const IDX_RST = 4;
const IDX_NONE = 5;

/** True for a packet that may open a TCP flow: SYN without ACK, RST or FIN. */
export function isTcpOpening(flags: number): boolean {
  return (flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN;
}

/** Packets in a row that went the flow's last direction without an answer (0..15). */
export function unansweredRun(aux: number): number {
  return aux >>> AUX_RUN_SHIFT;
}

/** The flag class of a segment, in Linux's precedence (RST, SYN, FIN, ACK). */
function flagIndex(flags: number): number {
  if (flags & TCP_RST) return IDX_RST;
  if (flags & TCP_SYN) return flags & TCP_ACK ? IDX_SYNACK : IDX_SYN;
  if (flags & TCP_FIN) return IDX_FIN;
  return flags & TCP_ACK ? IDX_ACK : IDX_NONE;
}

/**
 * Applies one segment with `flags` seen in direction `dir` to flow `id`,
 * updating `state[id]` and `aux[id]`. Returns a STEP_* code.
 */
export function tcpStep(
  state: Uint8Array,
  aux: Uint8Array,
  id: number,
  dir: number,
  flags: number,
): number {
  // SYN with FIN is never valid (Linux tcp_valid_flags).
  if ((flags & (TCP_SYN | TCP_FIN)) === (TCP_SYN | TCP_FIN)) return STEP_INVALID;
  const old = state[id];
  const a = aux[id];
  const idx = flagIndex(flags);
  let next: number;
  if (idx === IDX_FIN) next = finState(old, a, dir);
  else if (idx === IDX_ACK) next = ackState(old, a, dir);
  else if (idx === IDX_RST) next = old === TCP_NONE ? -1 : TCP_CLOSE;
  else if (idx === IDX_SYN) next = synState(old, dir);
  else if (idx === IDX_SYNACK) next = synAckState(old, dir);
  else next = -1;
  if (next === -1) return STEP_INVALID;
  if (next === -3) {
    state[id] = TCP_SYN_SENT;
    aux[id] = 1 << AUX_RUN_SHIFT; // a fresh run: this SYN, original direction
    return STEP_REOPEN;
  }
  aux[id] = runAux(idx === IDX_FIN ? finAux(a, dir) : a, dir);
  if (next === -2) return STEP_IGNORE;
  state[id] = next;
  return STEP_OK;
}

/** New state for a SYN; -1 invalid, -2 ignore, -3 reopen. */
function synState(old: number, dir: number): number {
  if (dir === DIR_REPLY) return old === TCP_SYN_SENT ? -2 : -1;
  if (old === TCP_NONE || old === TCP_SYN_SENT) return TCP_SYN_SENT;
  if (old === TCP_TIME_WAIT || old === TCP_CLOSE) return -3;
  return -2;
}

/** New state for a SYN/ACK; -1 invalid, -2 ignore. */
function synAckState(old: number, dir: number): number {
  if (dir !== DIR_REPLY) return old === TCP_SYN_RECV ? TCP_SYN_RECV : -1;
  if (old === TCP_SYN_SENT) return TCP_SYN_RECV;
  return old === TCP_NONE ? -1 : -2;
}

/** New state for a FIN (with or without ACK); -1 invalid. */
function finState(old: number, a: number, dir: number): number {
  if (old === TCP_NONE || old === TCP_SYN_SENT) return -1;
  if (old === TCP_TIME_WAIT || old === TCP_CLOSE) return old;
  const fins = finAux(a, dir) & 0x03;
  if (fins === 0x03) return TCP_LAST_ACK;
  return old === TCP_SYN_RECV || old === TCP_ESTABLISHED ? TCP_FIN_WAIT : old;
}

/** New state for a segment with ACK only; -1 invalid, -2 ignore. */
function ackState(old: number, a: number, dir: number): number {
  switch (old) {
    case TCP_NONE:
      return -1;
    case TCP_SYN_SENT:
      return dir === DIR_REPLY ? -2 : -1;
    case TCP_SYN_RECV:
      return dir === DIR_REPLY ? TCP_SYN_RECV : TCP_ESTABLISHED;
    case TCP_FIN_WAIT:
      // The side that has not sent FIN acknowledges the other's FIN: half closed.
      return a & (AUX_FIN_ORIG << dir) ? TCP_FIN_WAIT : TCP_CLOSE_WAIT;
    case TCP_LAST_ACK:
      // The ACK must come from the side opposite the last FIN.
      return ((a & AUX_LAST_FIN_REPLY) !== 0) !== (dir === DIR_REPLY)
        ? TCP_TIME_WAIT
        : TCP_LAST_ACK;
    default:
      return old;
  }
}

/** `a` with direction `dir`'s FIN recorded as seen and the last one. */
function finAux(a: number, dir: number): number {
  const seen = a | (AUX_FIN_ORIG << dir);
  return dir === DIR_REPLY ? seen | AUX_LAST_FIN_REPLY : seen & ~AUX_LAST_FIN_REPLY;
}

/** `a` with the unanswered run extended (same direction) or restarted. */
function runAux(a: number, dir: number): number {
  const lastReply = (a & AUX_LAST_DIR_REPLY) !== 0;
  let run = a >>> AUX_RUN_SHIFT;
  if (run > 0 && lastReply === (dir === DIR_REPLY)) run = Math.min(run + 1, AUX_RUN_MAX);
  else run = 1;
  const low = (a & 0x07) | (dir === DIR_REPLY ? AUX_LAST_DIR_REPLY : 0);
  return low | (run << AUX_RUN_SHIFT);
}
