/**
 * What the TCP tracker reads of one segment. The datapath owns one and fills
 * it from the packet view it already parsed (`read`), so tracking allocates
 * nothing; tests and benchmarks fill it by hand (`set`).
 */
import { TCP_SYN, type TcpPacket } from "../packet/tcp.ts";

/** One TCP segment's flags, sequence space and window, reused per packet. */
export class TcpSegment {
  /** TCP header flags. */
  flags = 0;
  /** A SYN's window scale option (0..14), or -1 without one. */
  wscale = -1;
  /** True when a SYN offered SACK (RFC 2018). */
  sackPerm = false;
  /**
   * seq, ack, window, payloadLen. A typed array, not four fields: a random
   * 32-bit sequence number is no V8 small integer, and a field that held
   * small integers is generalized to double by the first one (a map change
   * that deoptimizes code depending on it); an Int32Array slot stays int32.
   */
  readonly #w = new Int32Array(4);
  #view: TcpPacket | null = null;
  #sackEdge = -1;

  /** Sequence number as a signed 32-bit word (the tracker compares modulo 2^32; `>>> 0` for the unsigned value). */
  get seq(): number {
    return this.#w[0];
  }

  /** Acknowledgment number, a signed 32-bit word like `seq`. */
  get ack(): number {
    return this.#w[1];
  }

  /** Window field, unscaled. */
  get window(): number {
    return this.#w[2];
  }

  /** Data bytes after the header (a GSO super-packet counts them all). */
  get payloadLen(): number {
    return this.#w[3];
  }

  /** Fills the fields from a checked view; options are read for SYNs only. */
  read(t: TcpPacket): this {
    const b = t.buf, o = t.off;
    const flags = b[o + 13];
    this.flags = flags;
    const w = this.#w;
    w[0] = (b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7];
    w[1] = (b[o + 8] << 24) | (b[o + 9] << 16) | (b[o + 10] << 8) | b[o + 11];
    w[2] = (b[o + 14] << 8) | b[o + 15];
    w[3] = t.len - ((b[o + 12] >>> 4) << 2); // check() made the header fit
    if (this.#view !== t) this.#view = t; // the datapath passes the same view: no store, no write barrier
    if ((flags & TCP_SYN) === 0) {
      this.wscale = -1;
      this.sackPerm = false;
    } else {
      this.#readSynOptions(t);
    }
    return this;
  }

  // Out of line: `read` stays small enough for V8 to inline it into the datapath.
  #readSynOptions(t: TcpPacket): void {
    this.wscale = t.windowScale();
    this.sackPerm = t.sackPermitted();
  }

  /** Fills the fields by hand: no options, no SACK blocks. */
  set(flags: number, seq: number, ack: number, window: number, payloadLen = 0): this {
    this.flags = flags;
    const w = this.#w;
    w[0] = seq;
    w[1] = ack;
    w[2] = window;
    w[3] = payloadLen;
    this.wscale = -1;
    this.sackPerm = false;
    this.#view = null;
    this.#sackEdge = -1;
    return this;
  }

  /** Adds a SYN's options to a hand-filled segment. */
  synOptions(wscale: number, sackPerm: boolean): this {
    this.wscale = wscale;
    this.sackPerm = sackPerm;
    return this;
  }

  /** Adds one SACK block's right edge to a hand-filled segment. */
  sackBlock(rightEdge: number): this {
    this.#sackEdge = rightEdge >>> 0;
    return this;
  }

  /** The highest SACK right edge after `ack`, or `ack` (read on demand: most flows never ask). */
  sackRightEdge(): number {
    if (this.#view !== null) return this.#view.sackRightEdge(this.ack);
    return this.#sackEdge >= 0 && ((this.#sackEdge - this.ack) | 0) > 0 ? this.#sackEdge : this.ack;
  }
}
