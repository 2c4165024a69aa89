/**
 * The gateway health probe: which uplinks are up, for masquerade failover.
 *
 * How it works: every `intervalMs` (from the pipeline's housekeeping tick) one
 * ICMP echo request per probed uplink leaves from the uplink's primary
 * address to its target (the gateway unless configured), through a raw
 * socket (`device/icmp_socket.ts`) that the source-address rule routes out of
 * that uplink. The echo carries a random 16-bit identifier chosen per start,
 * a sequence number, and 8 random bytes (a new cookie per probe) as its
 * payload. The reply comes back on the WAN interface, which is steered into
 * the TUN, so the pipeline sees it: an echo reply of no flow, from the
 * target, to the uplink's primary address, whose identifier, sequence and
 * cookie are the outstanding probe's, is consumed here (counted, not
 * forwarded, not a drop). An off-path sender cannot bring a dead uplink back
 * without guessing 80 bits.
 *
 * A probe not answered when the next one is due counts as lost. `downAfter`
 * consecutive losses take the uplink down, `upAfter` consecutive answers
 * bring it back; every change goes to `onHealth` (admission picks the
 * masquerade uplink from it) and out as an `uplink-down` / `uplink-up`
 * event. Uplinks start up (no event), and uplinks without a probe are always up.
 *
 * A LAN host's masqueraded ping to the same gateway could be given the
 * probe's identifier as its NAT identifier: its flow then takes the reply
 * first (one chance in 65536 per such flow), and that probe counts as lost.
 */
import { DEFAULT_SEVERITY } from "../log/events.ts";
import type { ApplianceEvent } from "../log/events.ts";
import {
  formatIpv4,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_SEQ,
  internetChecksum,
  parseIpv4,
  read16,
  write16,
} from "../packet/mod.ts";
import type { DatapathUplink, UplinkStatus } from "./messages.ts";

/** Bytes of a probe: the 8-byte echo header and the 8-byte cookie. */
export const PROBE_LEN = 16;
const COOKIE_OFF = 8, COOKIE_LEN = 8;

/** Sends a probe; implemented over one raw ICMP socket per probed uplink. */
export interface ProbeSender {
  /**
   * Sends the ICMP message `msg[0..len)` from uplink `uplink`'s primary
   * address to `target` (host order): bytes sent, or `-errno`. Never throws.
   */
  send(uplink: number, msg: Uint8Array, len: number, target: number): number;
}

/** What a monitor is built from. */
export interface UplinkMonitorInit {
  uplinks: readonly DatapathUplink[];
  /** Null: nothing is probed (every uplink stays up). */
  sender: ProbeSender | null;
  /** Receives the events of health changes. */
  emit: (events: ApplianceEvent[]) => void;
  /** Receives every uplink's health (index = uplink order) on each change. */
  onHealth: (up: readonly boolean[]) => void;
  /** Fills a buffer with random bytes (identifiers, cookies); `crypto.getRandomValues` by default. */
  random?: (bytes: Uint8Array) => void;
  /** A fine clock for round trips, ms; `performance.now` by default. */
  hrNow?: () => number;
}

/** Probes each uplink's gateway and keeps its health with hysteresis. */
export class UplinkMonitor {
  readonly #names: string[];
  readonly #sender: ProbeSender | null;
  readonly #emit: (events: ApplianceEvent[]) => void;
  readonly #onHealth: (up: readonly boolean[]) => void;
  readonly #random: (bytes: Uint8Array) => void;
  readonly #hrNow: () => number;
  readonly #n: number;
  // Per uplink, flat.
  readonly #probed: Uint8Array;
  readonly #target: Uint32Array;
  readonly #source: Uint32Array;
  readonly #interval: Float64Array;
  readonly #downAfter: Uint32Array;
  readonly #upAfter: Uint32Array;
  readonly #ident: Uint16Array;
  readonly #seq: Uint16Array;
  readonly #outstanding: Uint8Array;
  readonly #sentAt: Float64Array;
  readonly #nextAt: Float64Array;
  readonly #lost: Uint32Array;
  readonly #answered: Uint32Array;
  readonly #up: Uint8Array;
  readonly #sent: Float64Array;
  readonly #received: Float64Array;
  readonly #rtt: Float64Array;
  readonly #changedAt: Float64Array;
  readonly #cookies: Uint8Array;
  /** Uplink i's cookie, a view of `#cookies`. */
  readonly #cookieViews: Uint8Array[];
  readonly #msg = new Uint8Array(PROBE_LEN);

  /** Sets up the uplinks of `init`, all up; the first tick sends the first probes. */
  constructor(init: UplinkMonitorInit) {
    const n = this.#n = init.uplinks.length;
    this.#names = init.uplinks.map((u) => u.name);
    this.#sender = init.sender;
    this.#emit = init.emit;
    this.#onHealth = init.onHealth;
    this.#random = init.random ?? ((b) => crypto.getRandomValues(b));
    this.#hrNow = init.hrNow ?? (() => performance.now());
    this.#probed = new Uint8Array(n);
    this.#target = new Uint32Array(n);
    this.#source = new Uint32Array(n);
    this.#interval = new Float64Array(n);
    this.#downAfter = new Uint32Array(n);
    this.#upAfter = new Uint32Array(n);
    this.#ident = new Uint16Array(n);
    this.#seq = new Uint16Array(n);
    this.#outstanding = new Uint8Array(n);
    this.#sentAt = new Float64Array(n);
    this.#nextAt = new Float64Array(n);
    this.#lost = new Uint32Array(n);
    this.#answered = new Uint32Array(n);
    this.#up = new Uint8Array(n).fill(1);
    this.#sent = new Float64Array(n);
    this.#received = new Float64Array(n);
    this.#rtt = new Float64Array(n).fill(NaN);
    this.#changedAt = new Float64Array(n);
    this.#cookies = new Uint8Array(COOKIE_LEN * n);
    this.#cookieViews = Array.from(
      { length: n },
      (_, i) => this.#cookies.subarray(COOKIE_LEN * i, COOKIE_LEN * (i + 1)),
    );
    this.#random(new Uint8Array(this.#ident.buffer));
    init.uplinks.forEach((u, i) => {
      const target = u.probe ? parseIpv4(u.probe.target) : null;
      const source = parseIpv4(u.addresses[0] ?? "");
      if (!u.probe || target === null || source === null || init.sender === null) return;
      this.#probed[i] = 1;
      this.#target[i] = target;
      this.#source[i] = source;
      this.#interval[i] = Math.max(1, u.probe.intervalMs);
      this.#downAfter[i] = Math.max(1, u.probe.downAfter);
      this.#upAfter[i] = Math.max(1, u.probe.upAfter);
    });
  }

  /** Every uplink's health, index = uplink order. */
  health(): boolean[] {
    return Array.from(this.#up, (u) => u === 1);
  }

  /** Sends the probes that are due and counts the ones not answered in time as lost. */
  tick(nowMs: number): void {
    for (let i = 0; i < this.#n; i++) {
      if (this.#probed[i] === 0 || nowMs < this.#nextAt[i]) continue;
      if (this.#outstanding[i] === 1) this.#lose(i, nowMs);
      this.#probe(i);
      // From now, not from the due time: a stalled loop does not send a burst to catch up.
      this.#nextAt[i] = nowMs + this.#interval[i];
    }
  }

  #lose(i: number, nowMs: number): void {
    this.#outstanding[i] = 0;
    this.#answered[i] = 0;
    this.#lost[i]++;
    if (this.#up[i] === 1 && this.#lost[i] >= this.#downAfter[i]) {
      this.#up[i] = 0;
      this.#changed(i, nowMs, {
        type: "uplink-down",
        time: nowMs,
        severity: DEFAULT_SEVERITY["uplink-down"],
        uplink: this.#names[i],
        target: formatIpv4(this.#target[i]),
        lost: this.#lost[i],
      });
    }
  }

  #probe(i: number): void {
    const m = this.#msg, seq = (this.#seq[i] + 1) & 0xffff;
    this.#seq[i] = seq;
    const cookie = this.#cookieViews[i];
    this.#random(cookie);
    m.fill(0);
    m[0] = ICMP_ECHO_REQUEST;
    write16(m, 4, this.#ident[i]);
    write16(m, ICMP_SEQ, seq);
    m.set(cookie, COOKIE_OFF);
    write16(m, 2, internetChecksum(m, 0, PROBE_LEN));
    this.#outstanding[i] = 1;
    this.#sent[i]++;
    this.#sentAt[i] = this.#hrNow();
    // A failed send (the link is down: ENETUNREACH) is a probe that will not be answered.
    this.#sender!.send(i, m, PROBE_LEN, this.#target[i]);
  }

  /**
   * An ICMP echo reply of no flow, `icmpLen` bytes at `buf[icmpOff]`, from
   * `src` to `dst` (host order): true when it answers an outstanding probe
   * (consumed), false otherwise (the caller goes on as for any packet).
   * Never allocates, never throws.
   */
  onReply(
    buf: Uint8Array,
    icmpOff: number,
    icmpLen: number,
    src: number,
    dst: number,
    nowMs: number,
  ): boolean {
    if (icmpLen < PROBE_LEN || buf[icmpOff] !== ICMP_ECHO_REPLY || buf[icmpOff + 1] !== 0) {
      return false;
    }
    for (let i = 0; i < this.#n; i++) {
      if (this.#outstanding[i] === 0 || this.#target[i] !== src || this.#source[i] !== dst) {
        continue;
      }
      if (read16(buf, icmpOff + 4) !== this.#ident[i]) continue;
      if (read16(buf, icmpOff + ICMP_SEQ) !== this.#seq[i]) continue;
      if (!this.#cookieMatches(i, buf, icmpOff + COOKIE_OFF)) continue;
      this.#answer(i, nowMs);
      return true;
    }
    return false;
  }

  #cookieMatches(i: number, buf: Uint8Array, at: number): boolean {
    const c = this.#cookies, base = COOKIE_LEN * i;
    for (let k = 0; k < COOKIE_LEN; k++) if (buf[at + k] !== c[base + k]) return false;
    return true;
  }

  #answer(i: number, nowMs: number): void {
    this.#outstanding[i] = 0;
    this.#received[i]++;
    this.#rtt[i] = Math.max(0, this.#hrNow() - this.#sentAt[i]);
    this.#lost[i] = 0;
    this.#answered[i]++;
    if (this.#up[i] === 0 && this.#answered[i] >= this.#upAfter[i]) {
      this.#up[i] = 1;
      this.#changed(i, nowMs, {
        type: "uplink-up",
        time: nowMs,
        severity: DEFAULT_SEVERITY["uplink-up"],
        uplink: this.#names[i],
        target: formatIpv4(this.#target[i]),
        rttMs: Math.round(this.#rtt[i] * 1000) / 1000,
      });
    }
  }

  #changed(i: number, nowMs: number, e: ApplianceEvent): void {
    this.#changedAt[i] = nowMs;
    this.#onHealth(this.health());
    this.#emit([e]);
  }

  /** Every uplink's health and probe counts, for the status table and the API. */
  status(masquerade: number): UplinkStatus[] {
    return this.#names.map((name, i) => ({
      name,
      up: this.#up[i] === 1,
      probing: this.#probed[i] === 1,
      target: this.#probed[i] === 1 ? formatIpv4(this.#target[i]) : null,
      sent: this.#sent[i],
      received: this.#received[i],
      lastRttMs: Number.isNaN(this.#rtt[i]) ? null : Math.round(this.#rtt[i] * 1000) / 1000,
      changedAt: this.#changedAt[i],
      masquerade: i === masquerade,
    }));
  }
}
