/**
 * Linux's TCP connection tracker (nf_conntrack_proto_tcp): a state machine
 * over SYN, SYN/ACK, FIN, ACK and RST per direction, and `tcp_in_window`'s
 * sequence and acknowledgment windows per direction (td_end, td_maxend,
 * td_maxwin, td_scale, td_maxack), in flat typed arrays: per flow `state`
 * and `aux`, per handle (`id * 2 + dir`) the window of that direction's
 * sender.
 *
 * The four window bounds (sender s, receiver r; sack is the highest SACK
 * right edge, or the ack; a segment without data is checked by its ack only):
 *   I.   seq <= s.maxEnd                         (not past what r allowed)
 *   II.  end >= s.end - r.maxWin                  (not older than a window)
 *   III. sack <= r.end                            (acks nothing unseen)
 *   IV.  sack >= r.end - max(s.maxWin, 66000)     (not an ancient ack)
 * Linux's leniency is kept: the first SYN and SYN/ACK initialise their
 * direction; a direction first seen without SYN is picked up from its
 * packet (td_maxwin == 0); window scaling applies only when both SYNs
 * carried the option (RFC 7323); a SYN with a higher sequence number in
 * SYN_SENT/SYN_RECV re-initialises its side; retransmissions within a window
 * pass by II; a segment that fails only IV (an overly delayed ACK), or only
 * I by less than a window (a sender overshooting the advertised window),
 * passes without moving anything (the latter records its end, as Linux does).
 *
 * Choices of our own, where a middlebox in front of a knock gate should be
 * stricter than Linux's defaults:
 * - Any segment outside the window is dropped (STEP_OUT_OF_WINDOW), as
 *   Linux's INVALID is under the usual `ct state invalid drop`; it never
 *   moves state or windows.
 * - RST (RFC 5961 §3): an in-window RST closes the flow only when its
 *   sequence number is exactly what the receiver expects next: the sender's
 *   td_end (its SND.NXT) or the receiver's highest ack (the RCV.NXT it last
 *   announced; covers a reset from a peer that lost its state). Any other
 *   in-window RST is passed (STEP_CHALLENGE) so the endpoint answers it with
 *   a challenge ACK, and our state stays. In SYN_SENT a reply RST must
 *   acknowledge the SYN (RFC 9293 §3.10.7.3); the original side's must match
 *   its td_end.
 * - SYN on a synchronized flow (RFC 5961 §4): in the window it is passed
 *   unchanged (STEP_CHALLENGE; the endpoint sends a challenge ACK, and a
 *   client that really restarted then resets the old connection with an
 *   exact RST); outside the window it is dropped. A SYN on TIME_WAIT or CLOSE
 *   from the originator still reopens the flow, windows and all.
 * - Simultaneous open (a reply SYN in SYN_SENT) is ignored rather than
 *   tracked, and only an original-direction SYN reopens a flow.
 * - Liberal checks (Linux's be_liberal) only for flows whose history was
 *   lost: a picked-up flow for its life (`pickUp`: the window scale was never
 *   seen), a flow restored from a checkpoint until each side fits its window
 *   again (`loosen`). A RST or SYN is never passed liberally.
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
import { TCP_URG } from "../packet/tcp.ts";
import type { Arena } from "./arena.ts";
import type { TcpSegment } from "./segment.ts";

/** Step result: state updated (or unchanged), packet accepted. */
export const STEP_OK = 0;
/** Step result: accepted, but the packet does not move the state nor refresh the timer. */
export const STEP_IGNORE = 1;
/** Step result: the packet does not fit the state; state untouched. */
export const STEP_INVALID = 2;
/** Step result: a SYN restarted a TIME_WAIT/CLOSE flow as a new connection. */
export const STEP_REOPEN = 3;
/** Step result: outside the sequence or ack window; drop, nothing changed. */
export const STEP_OUT_OF_WINDOW = 4;
/** Step result: an in-window RST that is not exact, or an in-window SYN on a synchronized flow: pass it, nothing changed. */
export const STEP_CHALLENGE = 5;

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

// transition() results besides a state.
const NEXT_INVALID = -1;
const NEXT_IGNORE = -2;
const NEXT_REOPEN = -3;

// Per-direction window flags (`wflags`): the window shift in the low nibble.
const WF_SCALE = 0x0f;
const WF_WSCALE_SEEN = 0x10;
const WF_SACK_PERM = 0x20;
const WF_MAXACK_SET = 0x40;

// `liberal` bits per flow (Linux IP_CT_TCP_FLAG_BE_LIBERAL, for senders whose
// history we lost): bit `dir` makes that sender's segments outside the window
// pass and move the window to them; it clears once one of its segments fits by
// itself, unless LIBERAL_STICKY (a picked-up flow: the window scale is unknown).
const LIBERAL_BOTH = 0x03;
const LIBERAL_STICKY = 0x04;

/** Linux MAXACKWINCONST: the least slack for acks below the receiver's end. */
const MAX_ACK_WINDOW = 66000;

const WIN_OK = 0;
const WIN_IGNORE = 1;
const WIN_BAD = 2;

/**
 * Flag combinations that may appear at all (Linux tcp_valid_flags), indexed by
 * FIN|SYN|RST|PSH-less|ACK|URG bits; PSH, ECE and CWR are always allowed.
 */
const VALID_FLAGS = (() => {
  const t = new Uint8Array(64);
  for (
    const f of [
      TCP_SYN,
      TCP_SYN | TCP_URG,
      TCP_SYN | TCP_ACK,
      TCP_RST,
      TCP_RST | TCP_ACK,
      TCP_FIN | TCP_ACK,
      TCP_FIN | TCP_ACK | TCP_URG,
      TCP_ACK,
      TCP_ACK | TCP_URG,
    ]
  ) t[f] = 1;
  return t;
})();
const VALID_MASK = TCP_FIN | TCP_SYN | TCP_RST | TCP_ACK | TCP_URG;

/** True for a packet that may open a TCP flow: SYN without ACK, RST or FIN. */
export function isTcpOpening(flags: number): boolean {
  return (flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN;
}

/** Bytes `TcpTracker.save` writes per flow. */
export const TCP_RECORD_BYTES = 37;

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
 * TCP state and windows of `capacity` flows. Sequence numbers are kept as
 * signed 32-bit words so that `((a - b) | 0) < 0` (a before b, RFC 9293
 * §3.4: modulo 2^32, within half the space) stays integer arithmetic.
 */
export class TcpTracker {
  /** TCP_* state per flow. */
  readonly state: Uint8Array;
  /** Side state per flow (FINs seen, unanswered run). */
  readonly aux: Uint8Array;
  /** Per handle: td_end, the sender's highest seq + len seen (`| 0`). */
  readonly end: Int32Array;
  /** Per handle: td_maxend, the highest ack + window the receiver announced to this sender (`| 0`). */
  readonly maxEnd: Int32Array;
  /** Per handle: td_maxwin, the largest (scaled) window this sender announced, at least 1. */
  readonly maxWin: Uint32Array;
  /** Per handle: td_maxack, the highest ack this sender sent (`| 0`). */
  readonly maxAck: Int32Array;
  /** Per handle: window shift and option bits. */
  readonly wflags: Uint8Array;
  /** Per flow: LIBERAL_* bits. */
  readonly liberal: Uint8Array;

  /** Allocates the arrays of `capacity` flows, from `arena` when given (zeroed: every flow NONE). */
  constructor(capacity: number, arena?: Arena) {
    const a = arena;
    this.state = a ? a.u8(capacity) : new Uint8Array(capacity);
    this.aux = a ? a.u8(capacity) : new Uint8Array(capacity);
    this.liberal = a ? a.u8(capacity) : new Uint8Array(capacity);
    this.wflags = a ? a.u8(2 * capacity) : new Uint8Array(2 * capacity);
    this.end = a ? a.i32(2 * capacity) : new Int32Array(2 * capacity);
    this.maxEnd = a ? a.i32(2 * capacity) : new Int32Array(2 * capacity);
    this.maxWin = a ? a.u32(2 * capacity) : new Uint32Array(2 * capacity);
    this.maxAck = a ? a.i32(2 * capacity) : new Int32Array(2 * capacity);
  }

  /** Bytes of the arrays. */
  get byteLength(): number {
    return this.state.byteLength + this.aux.byteLength + this.end.byteLength +
      this.maxEnd.byteLength + this.maxWin.byteLength + this.maxAck.byteLength +
      this.wflags.byteLength + this.liberal.byteLength;
  }

  /** Forgets flow `id`: state NONE, both windows empty. */
  clear(id: number): void {
    this.state[id] = TCP_NONE;
    this.aux[id] = 0;
    this.liberal[id] = 0;
    this.#clearWindows(id);
  }

  /** The window shift in force for the sender of handle `h` (0..14). */
  scale(h: number): number {
    return this.wflags[h] & WF_SCALE;
  }

  /**
   * Linux nf_conntrack_tcp_loose: flow `id` (state NONE), first seen in mid
   * stream, is taken as ESTABLISHED with both windows unknown (td_maxwin 0:
   * each side is picked up from its first segment), SACK assumed and liberal
   * window checks, as Linux's tcp_new does. The scale is unknown (the SYNs
   * were not seen), so windows count unscaled until the checks catch up.
   */
  pickUp(id: number): void {
    this.state[id] = TCP_ESTABLISHED;
    this.aux[id] = 0;
    this.#clearWindows(id);
    this.wflags[2 * id] = this.wflags[2 * id + 1] = WF_SACK_PERM;
    this.liberal[id] = LIBERAL_BOTH | LIBERAL_STICKY;
  }

  /** Makes both senders of flow `id` liberal until each fits its window (stale windows: a checkpoint). */
  loosen(id: number): void {
    this.liberal[id] |= LIBERAL_BOTH;
  }

  /** True while the sender of handle `h` is checked liberally. */
  isLiberal(h: number): boolean {
    return (this.liberal[h >> 1] & (1 << (h & 1))) !== 0;
  }

  /** Writes flow `id`'s state and both windows at `off` (TCP_RECORD_BYTES, little-endian). */
  save(id: number, v: DataView, off: number): void {
    v.setUint8(off, this.state[id]);
    v.setUint8(off + 1, this.aux[id]);
    v.setUint8(off + 36, this.liberal[id]);
    for (let d = 0; d < 2; d++) {
      const h = 2 * id + d, o = off + 2 + 17 * d;
      v.setInt32(o, this.end[h], true);
      v.setInt32(o + 4, this.maxEnd[h], true);
      v.setUint32(o + 8, this.maxWin[h], true);
      v.setInt32(o + 12, this.maxAck[h], true);
      v.setUint8(o + 16, this.wflags[h]);
    }
  }

  /** Reads what `save` wrote into flow `id`; false (nothing set) for an unknown state. */
  load(id: number, v: DataView, off: number): boolean {
    const state = v.getUint8(off);
    if (state > TCP_CLOSE) return false;
    this.state[id] = state;
    this.aux[id] = v.getUint8(off + 1);
    this.liberal[id] = v.getUint8(off + 36) & (LIBERAL_BOTH | LIBERAL_STICKY);
    for (let d = 0; d < 2; d++) {
      const h = 2 * id + d, o = off + 2 + 17 * d;
      this.end[h] = v.getInt32(o, true);
      this.maxEnd[h] = v.getInt32(o + 4, true);
      this.maxWin[h] = v.getUint32(o + 8, true);
      this.maxAck[h] = v.getInt32(o + 12, true);
      this.wflags[h] = v.getUint8(o + 16);
    }
    return true;
  }

  #clearWindows(id: number): void {
    for (let h = 2 * id; h <= 2 * id + 1; h++) {
      this.end[h] =
        this.maxEnd[h] =
        this.maxWin[h] =
        this.maxAck[h] =
          0;
      this.wflags[h] = 0;
    }
  }

  /**
   * True when `seg` would restart flow `id` (a SYN on TIME_WAIT or CLOSE:
   * what `step` answers STEP_REOPEN), without changing anything: a tracker
   * Worker leaves that decision, and the state, to the admitting Worker.
   */
  wouldReopen(id: number, dir: number, seg: TcpSegment): boolean {
    const flags = seg.flags;
    if (VALID_FLAGS[flags & VALID_MASK] === 0) return false;
    return transition(this.state[id], this.aux[id], dir, flagIndex(flags)) === NEXT_REOPEN;
  }

  /**
   * Applies segment `seg` seen in direction `dir` to flow `id`. Returns a
   * STEP_* code; on STEP_INVALID and STEP_OUT_OF_WINDOW nothing changed.
   * This body is the common case (a state change or none, checked against
   * the window); it stays under V8's inlining limit, the rest is `#special`.
   */
  step(id: number, dir: number, seg: TcpSegment): number {
    const flags = seg.flags;
    if (VALID_FLAGS[flags & VALID_MASK] === 0) return STEP_INVALID;
    const old = this.state[id];
    const a = this.aux[id];
    const idx = flagIndex(flags);
    // An ACK keeps an established flow established: the bulk of all segments skips transition().
    const next = old === TCP_ESTABLISHED && idx === IDX_ACK ? old : transition(old, a, dir, idx);
    if (next < 0 || old === TCP_NONE || idx === IDX_RST) {
      return this.#special(id, dir, seg, old, a, idx, next);
    }
    const w = this.#inWindow(2 * id + dir, old, seg, true);
    if (w === WIN_OK) return this.#commit(id, a, dir, idx, next);
    return w === WIN_BAD ? STEP_OUT_OF_WINDOW : STEP_IGNORE;
  }

  /** `step` for a transition that is not a plain state (NEXT_*), the flow's first SYN, and RSTs. */
  #special(
    id: number,
    dir: number,
    seg: TcpSegment,
    old: number,
    a: number,
    idx: number,
    next: number,
  ): number {
    if (next === NEXT_INVALID) return STEP_INVALID;
    const h = 2 * id + dir;
    if (next === NEXT_REOPEN) {
      this.#clearWindows(id);
      this.liberal[id] = 0;
      this.#initSender(h, seg);
      this.state[id] = TCP_SYN_SENT;
      this.aux[id] = 1 << AUX_RUN_SHIFT; // a fresh run: this SYN, original direction
      return STEP_REOPEN;
    }
    if (old === TCP_NONE) {
      this.#initSender(h, seg); // the flow's first SYN (transition() allows nothing else)
      return this.#commit(id, a, dir, idx, next);
    }
    if (next === NEXT_IGNORE && (old < TCP_SYN_RECV || (idx !== IDX_SYN && idx !== IDX_SYNACK))) {
      // Linux passes these unchecked: a reply ACK or SYN in SYN_SENT (half-open, simultaneous open).
      this.aux[id] = runAux(a, dir);
      return STEP_IGNORE;
    }
    if (idx === IDX_RST && old === TCP_SYN_SENT) {
      const ok = dir === DIR_REPLY
        ? (seg.flags & TCP_ACK) !== 0 && (seg.ack | 0) === this.end[h ^ 1]
        : (seg.seq | 0) === this.end[h];
      return ok ? this.#commit(id, a, dir, idx, next) : STEP_OUT_OF_WINDOW;
    }
    // A RST or an ignored SYN is only checked: a challenge must not move the windows.
    const w = this.#inWindow(h, old, seg, false);
    if (w === WIN_BAD) return STEP_OUT_OF_WINDOW;
    if (idx === IDX_RST) {
      if (!this.#exactReset(h, seg.seq | 0)) return STEP_CHALLENGE;
      return this.#commit(id, a, dir, idx, next);
    }
    // An in-window SYN or SYN/ACK on a synchronized flow (NEXT_IGNORE): nothing moves.
    if (idx === IDX_SYN && old >= TCP_ESTABLISHED) return STEP_CHALLENGE;
    this.aux[id] = runAux(a, dir);
    return STEP_IGNORE;
  }

  #commit(id: number, a: number, dir: number, idx: number, next: number): number {
    this.aux[id] = runAux(idx === IDX_FIN ? finAux(a, dir) : a, dir);
    this.state[id] = next;
    return STEP_OK;
  }

  /** RFC 5961 §3.2: the RST's sequence number is exactly the next one the receiver expects. */
  #exactReset(h: number, seq: number): boolean {
    const r = h ^ 1;
    return seq === this.end[h] ||
      ((this.wflags[r] & WF_MAXACK_SET) !== 0 && seq === this.maxAck[r]);
  }

  /**
   * Initialises the sender of handle `h` from its SYN (Linux
   * tcp_init_sender). Once the other side has sent its SYN, scaling stays
   * on only if both offered it (RFC 7323 §1.3).
   */
  #initSender(h: number, seg: TcpSegment): void {
    const r = h ^ 1;
    const end = (seg.seq + seg.payloadLen + 1 + (seg.flags & TCP_FIN ? 1 : 0)) | 0;
    this.end[h] = this.maxEnd[h] = end;
    this.maxWin[h] = seg.window === 0 ? 1 : seg.window;
    let f = this.wflags[h] & WF_MAXACK_SET;
    if (seg.wscale >= 0) f |= WF_WSCALE_SEEN | seg.wscale;
    if (seg.sackPerm) f |= WF_SACK_PERM;
    this.wflags[h] = f;
    if (this.maxWin[r] !== 0 && (f & this.wflags[r] & WF_WSCALE_SEEN) === 0) {
      this.wflags[h] &= ~WF_SCALE;
      this.wflags[r] &= ~WF_SCALE;
    }
  }

  /**
   * tcp_in_window for sender `h`: WIN_OK (and, when `apply`, the sender's
   * and receiver's windows updated), WIN_IGNORE (passes, updates nothing)
   * or WIN_BAD. Initialises or picks up the sender first, as Linux does.
   */
  #inWindow(h: number, old: number, seg: TcpSegment, apply: boolean): number {
    const r = h ^ 1;
    const flags = seg.flags;
    const syn = (flags & TCP_SYN) !== 0;
    const hasAck = (flags & TCP_ACK) !== 0;
    let seq = seg.seq | 0;
    let end = (seq + seg.payloadLen + (syn ? 1 : 0) + (flags & TCP_FIN ? 1 : 0)) | 0;
    let ack = seg.ack | 0;
    let sack = hasAck && (this.wflags[r] & WF_SACK_PERM) !== 0 ? seg.sackRightEdge() | 0 : ack;
    if (syn || this.maxWin[h] === 0) this.#prepareSender(h, old, seg, end, sack);
    const rst = (flags & TCP_RST) !== 0;
    if (!hasAck || (rst && ack === 0)) ack = sack = this.end[r]; // no ack (or a broken stack's RST|ACK 0)
    // A segment without data is checked by its ack only; a RST always by its seq.
    if (seq === end && !rst) seq = end = this.end[h];

    const sEnd = this.end[h], sMaxEnd = this.maxEnd[h], rEnd = this.end[r];
    const rMaxWin = this.maxWin[r], sMaxWin = this.maxWin[h];
    const seqOk = ((sMaxEnd - seq) | 0) >= 0; // I
    const inRecvWin = rMaxWin === 0 || ((end - (sEnd - rMaxWin - 1)) | 0) > 0; // II
    const ackUpperOk = ((rEnd - sack) | 0) >= 0; // III
    const ackWin = sMaxWin > MAX_ACK_WINDOW ? sMaxWin : MAX_ACK_WINDOW;
    const ackLowerOk = ((sack - (rEnd - ackWin - 1)) | 0) > 0; // IV
    if (seqOk && inRecvWin && ackUpperOk) {
      if (!ackLowerOk) return WIN_IGNORE;
      if (apply) {
        this.#update(h, flags, end, ack, sack, seg.window);
        const lib = this.liberal[h >> 1];
        if (lib !== 0 && (lib & LIBERAL_STICKY) === 0) this.liberal[h >> 1] = lib & ~(1 << (h & 1));
      }
      return WIN_OK;
    }
    if (this.isLiberal(h) && !rst && !syn) {
      if (apply) {
        this.#resync(h, end, sack);
        this.#update(h, flags, end, ack, sack, seg.window);
      }
      return WIN_OK;
    }
    if (!seqOk && !rst && !syn && inRecvWin && ackUpperOk && ackLowerOk) {
      return this.#overshoot(h, end);
    }
    return WIN_BAD;
  }

  /** A liberal sender's segment outside the window: the window moves to take it (its history was lost). */
  #resync(h: number, end: number, sack: number): void {
    const r = h ^ 1;
    if (((end - this.end[h]) | 0) > 0) this.end[h] = end;
    if (((end - this.maxEnd[h]) | 0) > 0) this.maxEnd[h] = end;
    if (((sack - this.end[r]) | 0) > 0) this.end[r] = sack;
    if (((sack - this.maxEnd[r]) | 0) > 0) this.maxEnd[r] = sack;
  }

  /**
   * Before the checks, as Linux: a sender first seen without SYN is picked
   * up from this packet (its history is lost to us); a SYN initialises its
   * side, or re-initialises it in SYN_SENT/SYN_RECV when it moved forward
   * (RFC 9293 §3.4: a restarted side uses higher sequence numbers).
   */
  #prepareSender(h: number, old: number, seg: TcpSegment, end: number, sack: number): void {
    const r = h ^ 1;
    if (this.maxWin[h] === 0) {
      if ((seg.flags & TCP_SYN) !== 0) {
        this.#initSender(h, seg);
        return;
      }
      const swin = (seg.window << (this.wflags[h] & WF_SCALE)) >>> 0;
      this.end[h] = end;
      this.maxWin[h] = swin === 0 ? 1 : swin;
      this.maxEnd[h] = (end + this.maxWin[h]) | 0;
      if (this.maxWin[r] === 0) this.end[r] = this.maxEnd[r] = sack;
    } else if (
      ((this.end[h] - end) | 0) < 0 && (old === TCP_SYN_SENT || old === TCP_SYN_RECV)
    ) {
      this.#initSender(h, seg);
    }
  }

  /**
   * A segment that fails only bound I: by less than the receiver's largest
   * window it passes (some stacks send more than the window allowed) and its
   * end is recorded, so that the ACK for it fits bound III.
   */
  #overshoot(h: number, end: number): number {
    if (((end - this.maxEnd[h] + 1) >>> 0) > this.maxWin[h ^ 1]) return WIN_BAD;
    this.end[h] = end;
    return WIN_IGNORE;
  }

  /** Linux's "update sender data" and "update receiver data" for an accepted segment. */
  #update(h: number, flags: number, end: number, ack: number, sack: number, window: number): void {
    const r = h ^ 1;
    // RFC 7323 §2.2: the window of a SYN is never scaled.
    const win = (flags & TCP_SYN) === 0 ? (window << (this.wflags[h] & WF_SCALE)) >>> 0 : window;
    const swin = (win + sack - ack) >>> 0;
    if (this.maxWin[h] < swin) this.maxWin[h] = swin;
    if (((this.end[h] - end) | 0) < 0) this.end[h] = end;
    if ((flags & TCP_ACK) !== 0) {
      if ((this.wflags[h] & WF_MAXACK_SET) === 0 || ((this.maxAck[h] - ack) | 0) < 0) {
        this.maxAck[h] = ack;
        this.wflags[h] |= WF_MAXACK_SET;
      }
    }
    const sMaxEnd = this.maxEnd[h];
    if (this.maxWin[r] !== 0 && ((sMaxEnd - end) | 0) < 0) {
      this.maxWin[r] = (this.maxWin[r] + end - sMaxEnd) >>> 0;
    }
    const right = (sack + win) | 0;
    if (((right - this.maxEnd[r]) | 0) >= 0) this.maxEnd[r] = win === 0 ? (right + 1) | 0 : right;
  }
}

/** New state for a segment of class `idx`; NEXT_* or a TCP state. */
function transition(old: number, a: number, dir: number, idx: number): number {
  if (idx === IDX_FIN) return finState(old, a, dir);
  if (idx === IDX_ACK) return ackState(old, a, dir);
  if (idx === IDX_RST) return old === TCP_NONE ? NEXT_INVALID : TCP_CLOSE;
  if (idx === IDX_SYN) return synState(old, dir);
  if (idx === IDX_SYNACK) return synAckState(old, dir);
  return NEXT_INVALID;
}

function synState(old: number, dir: number): number {
  if (dir === DIR_REPLY) return old === TCP_SYN_SENT ? NEXT_IGNORE : NEXT_INVALID;
  if (old === TCP_NONE || old === TCP_SYN_SENT) return TCP_SYN_SENT;
  if (old === TCP_TIME_WAIT || old === TCP_CLOSE) return NEXT_REOPEN;
  return NEXT_IGNORE;
}

function synAckState(old: number, dir: number): number {
  if (dir !== DIR_REPLY) return old === TCP_SYN_RECV ? TCP_SYN_RECV : NEXT_INVALID;
  if (old === TCP_SYN_SENT) return TCP_SYN_RECV;
  return old === TCP_NONE ? NEXT_INVALID : NEXT_IGNORE;
}

function finState(old: number, a: number, dir: number): number {
  if (old === TCP_NONE || old === TCP_SYN_SENT) return NEXT_INVALID;
  if (old === TCP_TIME_WAIT || old === TCP_CLOSE) return old;
  const fins = finAux(a, dir) & 0x03;
  if (fins === 0x03) return TCP_LAST_ACK;
  return old === TCP_SYN_RECV || old === TCP_ESTABLISHED ? TCP_FIN_WAIT : old;
}

function ackState(old: number, a: number, dir: number): number {
  switch (old) {
    case TCP_NONE:
      return NEXT_INVALID;
    case TCP_SYN_SENT:
      return dir === DIR_REPLY ? NEXT_IGNORE : NEXT_INVALID;
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
