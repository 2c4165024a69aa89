/**
 * The IPv6 gateway health probe: which uplinks' IPv6 next hops answer, for
 * the LAN's IPv6 egress (`host/routing.ts` `lanEgress6Uplink`, moved by the
 * control plane on the events here).
 *
 * Every `intervalMs` (from the pipeline's housekeeping tick) one ICMPv6 echo
 * request per probed uplink leaves its first `addresses6` address for the
 * target (the gateway6 unless configured) through a raw ICMPv6 socket of its
 * own (`device/icmp6_socket.ts`), which the rule by source routes out of
 * that uplink. The echo carries a random 16-bit identifier chosen per start,
 * a sequence number and 8 random bytes (a new cookie per probe). Unlike the
 * IPv4 probe (`uplink_monitor.ts`), whose replies cross the TUN, the reply
 * stays with the kernel (ICMPv6 to a WAN address is the kernel's: neighbour
 * discovery), and the socket, connected to the target, queues it; each tick
 * reads the queue without blocking before it sends. A reply answers the
 * outstanding probe only with its identifier, sequence and cookie: an
 * off-path sender cannot bring a dead uplink back without guessing 80 bits.
 *
 * A probe not answered when the next one is due counts as lost; `downAfter`
 * consecutive losses take the uplink's IPv6 down, `upAfter` consecutive
 * answers bring it back, each change out as an `uplink-down` / `uplink-up`
 * event with `family: "ipv6"`. Uplinks start up (no event). The round trip
 * ends when the kernel received the reply (the socket's receive time stamp,
 * `SIOCGSTAMP`), not when the tick read it, up to a housekeeping period
 * (100 ms) later.
 *
 * Nothing here runs per packet: the data plane's packet path is untouched.
 */
import { DEFAULT_SEVERITY } from "../log/events.ts";
import type { ApplianceEvent } from "../log/events.ts";
import { read16, write16 } from "../packet/mod.ts";
import type { DatapathUplink, Uplink6Status } from "./messages.ts";

/** ICMPv6 echo request and reply (RFC 4443 §4). */
const ECHO_REQUEST = 128, ECHO_REPLY = 129;
/** Bytes of a probe: the 8-byte echo header and the 8-byte cookie. */
export const PROBE6_LEN = 16;
const SEQ_OFF = 6, IDENT_OFF = 4, COOKIE_OFF = 8, COOKIE_LEN = 8;
/** Replies read per uplink per tick at most (a flood of stale ones cannot stall the loop). */
const READS_PER_TICK = 8;

/** One uplink's probe socket: sends to its target, reads the target's echo replies. */
export interface Probe6Socket {
  /** Sends the ICMPv6 message `msg[0..len)` (checksum left to the kernel): bytes, or `-errno`. */
  send(msg: Uint8Array, len: number): number;
  /** Reads one queued reply into `buf`: its length, or `-errno` (`-EAGAIN`: none). Never blocks. */
  receive(buf: Uint8Array): number;
  /** When the kernel received the last reply read, ms since the epoch; NaN: unknown (then the read time). */
  receivedAt?(): number;
}

/** What a monitor is built from. */
export interface Uplink6MonitorInit {
  uplinks: readonly DatapathUplink[];
  /**
   * Each uplink's socket (index = uplink order; null: it did not open, so
   * that uplink's probes are lost); null: nothing is probed.
   */
  sockets: readonly (Probe6Socket | null)[] | null;
  /** Receives the events of health changes. */
  emit: (events: ApplianceEvent[]) => void;
  /** Told every uplink's IPv6 health (null: not probed) when one changes. */
  onHealth?: (up6: readonly (boolean | null)[]) => void;
  /** Fills a buffer with random bytes; `crypto.getRandomValues` by default. */
  random?: (bytes: Uint8Array) => void;
  /**
   * A fine wall clock for round trips, ms since the epoch (the socket's
   * receive stamps are on the wall clock); `performance.timeOrigin +
   * performance.now()` by default.
   */
  hrNow?: () => number;
}

/** Per probed uplink. */
interface Probe6 {
  index: number;
  name: string;
  target: string;
  socket: Probe6Socket | null;
  intervalMs: number;
  downAfter: number;
  upAfter: number;
  ident: number;
  seq: number;
  cookie: Uint8Array;
  outstanding: boolean;
  sentAt: number;
  nextAt: number;
  lost: number;
  answered: number;
  up: boolean;
  sent: number;
  received: number;
  rttMs: number;
  changedAt: number;
}

/** Probes each uplink's IPv6 gateway and keeps its health with hysteresis. */
export class Uplink6Monitor {
  readonly #n: number;
  readonly #probes: Probe6[] = [];
  /** Index = uplink order; undefined: not probed. */
  readonly #byUplink: (Probe6 | undefined)[];
  readonly #emit: (events: ApplianceEvent[]) => void;
  readonly #onHealth: (up6: readonly (boolean | null)[]) => void;
  readonly #random: (bytes: Uint8Array) => void;
  readonly #hrNow: () => number;
  readonly #msg = new Uint8Array(PROBE6_LEN);
  readonly #rx = new Uint8Array(256);

  /** Sets up the probed uplinks of `init`, all up; the first tick sends the first probes. */
  constructor(init: Uplink6MonitorInit) {
    this.#n = init.uplinks.length;
    this.#emit = init.emit;
    this.#onHealth = init.onHealth ?? (() => {});
    this.#random = init.random ?? ((b) => crypto.getRandomValues(b));
    this.#hrNow = init.hrNow ?? (() => performance.timeOrigin + performance.now());
    this.#byUplink = new Array(this.#n);
    const ident = new Uint16Array(1);
    init.uplinks.forEach((u, i) => {
      const p = u.probe6;
      if (!p || init.sockets === null || (u.addresses6 ?? []).length === 0) return;
      this.#random(new Uint8Array(ident.buffer));
      const probe: Probe6 = {
        index: i,
        name: u.name,
        target: p.target,
        socket: init.sockets[i] ?? null,
        intervalMs: Math.max(1, p.intervalMs),
        downAfter: Math.max(1, p.downAfter),
        upAfter: Math.max(1, p.upAfter),
        ident: ident[0],
        seq: 0,
        cookie: new Uint8Array(COOKIE_LEN),
        outstanding: false,
        sentAt: 0,
        nextAt: 0,
        lost: 0,
        answered: 0,
        up: true,
        sent: 0,
        received: 0,
        rttMs: NaN,
        changedAt: 0,
      };
      this.#probes.push(probe);
      this.#byUplink[i] = probe;
    });
  }

  #changed(): void {
    this.#onHealth(Array.from({ length: this.#n }, (_, i) => this.#byUplink[i]?.up ?? null));
  }

  /** Every uplink's IPv6 health, index = uplink order (an unprobed uplink is up). */
  health(): boolean[] {
    return Array.from({ length: this.#n }, (_, i) => this.#byUplink[i]?.up ?? true);
  }

  /** Reads the replies that came, then sends the probes that are due, counting unanswered ones lost. */
  tick(nowMs: number): void {
    for (const p of this.#probes) {
      this.#read(p, nowMs);
      if (nowMs < p.nextAt) continue;
      if (p.outstanding) this.#lose(p, nowMs);
      this.#probe(p);
      // From now, not from the due time: a stalled loop does not send a burst to catch up.
      p.nextAt = nowMs + p.intervalMs;
    }
  }

  #read(p: Probe6, nowMs: number): void {
    if (p.socket === null) return;
    for (let k = 0; k < READS_PER_TICK; k++) {
      const n = p.socket.receive(this.#rx);
      if (n < 0) return;
      if (p.outstanding && this.#answers(p, this.#rx, n)) {
        const at = p.socket.receivedAt?.() ?? NaN;
        this.#answer(p, nowMs, Number.isNaN(at) ? this.#hrNow() : at);
      }
    }
  }

  /** True when `buf[0..len)` is the echo reply to `p`'s outstanding probe. */
  #answers(p: Probe6, buf: Uint8Array, len: number): boolean {
    if (len < PROBE6_LEN || buf[0] !== ECHO_REPLY || buf[1] !== 0) return false;
    if (read16(buf, IDENT_OFF) !== p.ident || read16(buf, SEQ_OFF) !== p.seq) return false;
    for (let k = 0; k < COOKIE_LEN; k++) if (buf[COOKIE_OFF + k] !== p.cookie[k]) return false;
    return true;
  }

  #probe(p: Probe6): void {
    const m = this.#msg;
    p.seq = (p.seq + 1) & 0xffff;
    this.#random(p.cookie);
    m.fill(0);
    m[0] = ECHO_REQUEST;
    write16(m, IDENT_OFF, p.ident);
    write16(m, SEQ_OFF, p.seq);
    m.set(p.cookie, COOKIE_OFF);
    p.outstanding = true;
    p.sent++;
    p.sentAt = this.#hrNow();
    // A failed send (no route, the address still tentative) is a probe that will not be answered.
    p.socket?.send(m, PROBE6_LEN);
  }

  #lose(p: Probe6, nowMs: number): void {
    p.outstanding = false;
    p.answered = 0;
    p.lost++;
    if (p.up && p.lost >= p.downAfter) {
      p.up = false;
      p.changedAt = nowMs;
      this.#emit([{
        type: "uplink-down",
        time: nowMs,
        severity: DEFAULT_SEVERITY["uplink-down"],
        uplink: p.name,
        family: "ipv6",
        target: p.target,
        lost: p.lost,
      }]);
      this.#changed();
    }
  }

  #answer(p: Probe6, nowMs: number, receivedAt: number): void {
    p.outstanding = false;
    p.received++;
    p.rttMs = Math.max(0, receivedAt - p.sentAt);
    p.lost = 0;
    p.answered++;
    if (!p.up && p.answered >= p.upAfter) {
      p.up = true;
      p.changedAt = nowMs;
      this.#emit([{
        type: "uplink-up",
        time: nowMs,
        severity: DEFAULT_SEVERITY["uplink-up"],
        uplink: p.name,
        family: "ipv6",
        target: p.target,
        rttMs: Math.round(p.rttMs * 1000) / 1000,
      }]);
      this.#changed();
    }
  }

  /** Uplink `i`'s IPv6 probe status, or null when its IPv6 gateway is not probed. */
  status(i: number): Uplink6Status | null {
    const p = this.#byUplink[i];
    if (p === undefined) return null;
    return {
      up: p.up,
      target: p.target,
      sent: p.sent,
      received: p.received,
      lastRttMs: Number.isNaN(p.rttMs) ? null : Math.round(p.rttMs * 1000) / 1000,
      changedAt: p.changedAt,
    };
  }
}
