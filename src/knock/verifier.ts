/**
 * `KnockVerifier`: the appliance side of `portknock/v1` (knock-protocol.md,
 * "Verifying"). The datapath calls `observe` for every new-flow packet from
 * the WAN to the WAN address, before NAT; it is synchronous, never throws and
 * allocates nothing unless a sequence starts, ends or unlocks. All state lives
 * in bounded typed-array tables keyed by source IP; the oldest entries are
 * evicted first when a table is full.
 */

import { formatIpv4 } from "../packet/address.ts";
import { PROTO_TCP, PROTO_UDP } from "../packet/ipv4.ts";
import type { KnockEvent, KnockFailureReason } from "./events.ts";
import { growF64, growI32, growU16, growU8 } from "./_typed.ts";
import { IpSlotMap } from "./ip_slot_map.ts";
import type { KnockProfile } from "./profile.ts";
import type { SequenceCache } from "./sequence_cache.ts";
import { KNOCK_MAX_LENGTH, KNOCK_STEP_S } from "./sequence.ts";

/** What `observe` decided about a packet. */
export const KnockVerdict = {
  /** Not part of knocking; nothing in progress was affected. Process normally. */
  NOT_KNOCK: 0,
  /** Consumed as a knock (start, advance or retransmission): drop silently. */
  KNOCK: 1,
  /** Completed a sequence: read `lastUser`, `lastDrift`, `lastStep`; drop the packet. */
  UNLOCKED: 2,
  /** Ended a sequence in progress as a failure; not a knock itself: process normally. */
  FAILED: 3,
  /** Completed a step already used by another IP: refused; drop the packet. */
  REPLAY: 4,
  /** A knock on some `F` from a penalised IP: ignored; drop it. */
  PENALISED: 5,
} as const;

/** A `KnockVerdict` value. */
export type KnockVerdict = typeof KnockVerdict[keyof typeof KnockVerdict];

/** Tunables of the verifier; every field has the protocol's default. */
export interface KnockVerifierOptions {
  /** Time from `F` within which the sequence must complete. */
  windowMs?: number;
  /** Failures tolerated per IP within `failureWindowMs`; one more starts a penalty. */
  maxFailures?: number;
  failureWindowMs?: number;
  /** How long a penalised IP's knocks are ignored. */
  penaltyMs?: number;
  /** Most sequences in progress (one per IP). */
  maxInProgress?: number;
  /** Most IPs with failures counted or a penalty running. */
  maxPenalised?: number;
  /** Most (user, step) pairs remembered against replay. */
  maxReplay?: number;
  /** Receives every knock event. */
  onEvent?: (event: KnockEvent) => void;
}

/** Counts kept by the verifier since it was created. */
export interface KnockStats {
  /** Packets consumed as knocks (including retransmissions). */
  knocks: number;
  unlocks: number;
  failures: number;
  replays: number;
  penalties: number;
  /** Knocks on `F` ignored because the IP is penalised. */
  penalisedKnocks: number;
  /** Sequences dropped because too many were in progress. */
  evictedSequences: number;
  /** Failure records dropped because too many IPs were tracked. */
  evictedFailureRecords: number;
  /** Knocks on `F` ignored because the cache held no sequence for the step. */
  missingSequences: number;
}

const TCP_BIT = 1;
const UDP_BIT = 2;
/** Candidates per sequence: T-1, T, T+1. */
const CANDIDATES = 3;
/** Ports per candidate: F and up to 8 more. */
const SEQ_STRIDE = KNOCK_MAX_LENGTH + 1;
/** Preference when several candidates complete together: T, then T-1, then T+1. */
const PREFERENCE = [1, 0, 2];

interface ReplayEntry {
  ip: number;
  expiresMs: number;
}

/** Verifies knocks per source IP; see the module comment. */
export class KnockVerifier {
  /** User of the last `UNLOCKED` (or `REPLAY`) verdict. */
  lastUser = "";
  /** Drift in steps (-1, 0, +1) of the last `UNLOCKED` verdict. */
  lastDrift = 0;
  /** Step of the sequence of the last `UNLOCKED` verdict. */
  lastStep = 0;
  /** Running counts. */
  readonly stats: KnockStats = {
    knocks: 0,
    unlocks: 0,
    failures: 0,
    replays: 0,
    penalties: 0,
    penalisedKnocks: 0,
    evictedSequences: 0,
    evictedFailureRecords: 0,
    missingSequences: 0,
  };

  readonly #cache: SequenceCache;
  readonly #windowMs: number;
  readonly #maxFailures: number;
  readonly #failureWindowMs: number;
  readonly #penaltyMs: number;
  readonly #maxReplay: number;
  readonly #onEvent: (event: KnockEvent) => void;

  // Users, indexed by position in the last `setProfiles` list.
  #profiles: KnockProfile[] = [];
  #transports = new Uint8Array(0);
  /** First port -> user index, -1 for none. */
  #portUser = new Int32Array(65536).fill(-1);

  // Sequences in progress, one per IP, fields indexed by slot.
  readonly #prog: IpSlotMap;
  #pUser = new Int32Array(0);
  #pStart = new Float64Array(0);
  /** The step T at the time of `F`; candidate c is step T - 1 + c. */
  #pStep = new Float64Array(0);
  /** Index in the sequences of the next expected port. */
  #pPos = new Uint8Array(0);
  /** Bit c set while candidate c still fits. */
  #pMask = new Uint8Array(0);
  #pLast = new Uint16Array(0);
  /** Candidate ports, CANDIDATES x SEQ_STRIDE per slot, copied at `F`. */
  #pSeq = new Uint16Array(0);
  /** Candidate lengths (F included), CANDIDATES per slot. */
  #pLen = new Uint8Array(0);

  // Failures and penalties per IP: a ring of the last maxFailures + 1 failure times.
  readonly #fail: IpSlotMap;
  readonly #ring: number;
  #fTimes = new Float64Array(0);
  #fHead = new Int32Array(0);
  #fCount = new Int32Array(0);
  #fUntil = new Float64Array(0);

  /** "user\nstep" -> the IP it unlocked; insertion order is roughly expiry order. */
  readonly #replay = new Map<string, ReplayEntry>();

  /** Reads sequences from `cache`; users come from `setProfiles`. */
  constructor(cache: SequenceCache, options: KnockVerifierOptions = {}) {
    this.#cache = cache;
    this.#windowMs = options.windowMs ?? 15_000;
    this.#maxFailures = options.maxFailures ?? 5;
    this.#failureWindowMs = options.failureWindowMs ?? 600_000;
    this.#penaltyMs = options.penaltyMs ?? 600_000;
    this.#maxReplay = options.maxReplay ?? 65_536;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#prog = new IpSlotMap(options.maxInProgress ?? 65_536);
    this.#fail = new IpSlotMap(options.maxPenalised ?? 65_536);
    this.#ring = this.#maxFailures + 1;
    this.#growProg();
    this.#growFail();
  }

  /** Sequences in progress. */
  get inProgress(): number {
    return this.#prog.size;
  }

  /** IPs with failures counted or a penalty. */
  get failureTracked(): number {
    return this.#fail.size;
  }

  /** (user, step) pairs remembered against replay. */
  get replayEntries(): number {
    return this.#replay.size;
  }

  /** Whether `ip`'s knocks are being ignored at `nowMs`. */
  isPenalised(ip: number, nowMs: number): boolean {
    const f = this.#fail.find(ip);
    return f >= 0 && this.#fUntil[f] > nowMs;
  }

  /**
   * Replaces the users. Throws on an invalid list (a port out of range, a
   * length out of 1..8, a first port used twice). Sequences in progress for a
   * user whose parameters changed or who is gone end without counting a failure.
   */
  setProfiles(profiles: readonly KnockProfile[]): void {
    const portUser = new Int32Array(65536).fill(-1);
    const transports = new Uint8Array(profiles.length);
    profiles.forEach((p, i) => {
      checkProfile(p);
      const other = portUser[p.firstPort];
      if (other >= 0) {
        throw new Error(
          `Cannot set knock profiles: first port ${p.firstPort} is used by "${
            profiles[other].user
          }" and "${p.user}"`,
        );
      }
      portUser[p.firstPort] = i;
      transports[i] = p.transport === "tcp" ? TCP_BIT : p.transport === "udp" ? UDP_BIT : 3;
    });
    const old = this.#profiles;
    this.#profiles = profiles.map((p) => ({ ...p }));
    this.#portUser = portUser;
    this.#transports = transports;
    this.#remapProgress(old);
  }

  #remapProgress(old: readonly KnockProfile[]): void {
    const index = new Map(this.#profiles.map((p, i) => [p.user, i]));
    for (let s = this.#prog.oldest(); s !== -1;) {
      const next = this.#prog.newer(s);
      const was = old[this.#pUser[s]];
      const now = index.get(was.user) ?? -1;
      if (now >= 0 && sameProfile(this.#profiles[now], was)) this.#pUser[s] = now;
      else this.#end(s, "profile-changed", 0, false, was.user);
      s = next;
    }
  }

  /**
   * Judges one new-flow packet (TCP SYN without ACK, or UDP datagram of no
   * tracked flow) from `srcIp` to the WAN address on `dstPort`.
   */
  observe(srcIp: number, proto: 6 | 17, dstPort: number, nowMs: number): KnockVerdict {
    const ip = srcIp >>> 0;
    let ended = false;
    if (this.#prog.size > 0) {
      const s = this.#prog.find(ip);
      if (s >= 0) {
        if (nowMs - this.#pStart[s] <= this.#windowMs) {
          const v = this.#advance(s, ip, proto, dstPort, nowMs);
          if (v !== KnockVerdict.FAILED) return v;
        } else {
          this.#end(s, "window-expired", nowMs, true);
        }
        ended = true;
      }
    }
    // With nothing (any more) in progress, a knock on some user's F starts a sequence.
    const u = this.#portUser[dstPort];
    if (u < 0 || (this.#transports[u] & protoBit(proto)) === 0) {
      return ended ? KnockVerdict.FAILED : KnockVerdict.NOT_KNOCK;
    }
    if (this.isPenalised(ip, nowMs)) {
      this.stats.penalisedKnocks++;
      return KnockVerdict.PENALISED;
    }
    return this.#start(ip, u, nowMs, ended);
  }

  #start(ip: number, u: number, nowMs: number, ended: boolean): KnockVerdict {
    const name = this.#profiles[u].user;
    const step = Math.floor(nowMs / (KNOCK_STEP_S * 1000));
    if (this.#prog.full) {
      this.stats.evictedSequences++;
      this.#prog.delete(this.#prog.oldest());
    }
    const s = this.#prog.insert(ip);
    if (s >= this.#pUser.length) this.#growProg();
    let mask = 0;
    for (let c = 0; c < CANDIDATES; c++) {
      const seq = this.#cache.sequence(name, step - 1 + c);
      const len = seq === null ? 0 : seq.length;
      this.#pLen[s * CANDIDATES + c] = len;
      if (len < 2) continue;
      this.#pSeq.set(seq!, (s * CANDIDATES + c) * SEQ_STRIDE);
      mask |= 1 << c;
    }
    if (mask === 0) {
      // The cache has not been filled for this step: nothing to verify against.
      this.#prog.delete(s);
      this.stats.missingSequences++;
      return ended ? KnockVerdict.FAILED : KnockVerdict.NOT_KNOCK;
    }
    this.#pUser[s] = u;
    this.#pStart[s] = nowMs;
    this.#pStep[s] = step;
    this.#pPos[s] = 1;
    this.#pMask[s] = mask;
    this.#pLast[s] = this.#profiles[u].firstPort;
    this.stats.knocks++;
    return KnockVerdict.KNOCK;
  }

  #advance(s: number, ip: number, proto: number, dstPort: number, nowMs: number): KnockVerdict {
    const u = this.#pUser[s];
    const fitsTransport = (this.#transports[u] & protoBit(proto)) !== 0;
    if (fitsTransport && dstPort === this.#pLast[s]) {
      this.stats.knocks++;
      return KnockVerdict.KNOCK; // a retransmission of the last accepted knock
    }
    const pos = this.#pPos[s];
    const mask = this.#fitting(s, pos, dstPort);
    if (mask === 0 || !fitsTransport) {
      const sequencePort = mask !== 0 || dstPort === this.#pLast[s];
      this.#end(s, sequencePort ? "wrong-transport" : "wrong-port", nowMs, true);
      return KnockVerdict.FAILED;
    }
    this.stats.knocks++;
    this.#pMask[s] = mask;
    this.#pPos[s] = pos + 1;
    this.#pLast[s] = dstPort;
    for (const c of PREFERENCE) {
      if ((mask & (1 << c)) !== 0 && this.#pLen[s * CANDIDATES + c] === pos + 1) {
        return this.#complete(s, ip, c, nowMs);
      }
    }
    return KnockVerdict.KNOCK;
  }

  /** The candidates of slot `s` whose port at `pos` is `port`. */
  #fitting(s: number, pos: number, port: number): number {
    const live = this.#pMask[s];
    let mask = 0;
    for (let c = 0; c < CANDIDATES; c++) {
      const i = s * CANDIDATES + c;
      if (
        (live & (1 << c)) !== 0 && pos < this.#pLen[i] && this.#pSeq[i * SEQ_STRIDE + pos] === port
      ) {
        mask |= 1 << c;
      }
    }
    return mask;
  }

  #complete(s: number, ip: number, c: number, nowMs: number): KnockVerdict {
    const user = this.#profiles[this.#pUser[s]].user;
    const step = this.#pStep[s] - 1 + c;
    this.#prog.delete(s);
    this.lastUser = user;
    const key = `${user}\n${step}`;
    const seen = this.#replay.get(key);
    if (seen !== undefined && seen.ip !== ip) {
      // RFC 6238 §5.2: a step is accepted once; only its first IP may use it again.
      this.stats.replays++;
      this.#onEvent({
        type: "knock-replay",
        ip: formatIpv4(ip),
        user,
        step,
        firstIp: formatIpv4(seen.ip),
      });
      this.#countFailure(ip, nowMs);
      return KnockVerdict.REPLAY;
    }
    if (seen === undefined) this.#remember(key, ip, step);
    this.lastDrift = c - 1;
    this.lastStep = step;
    this.stats.unlocks++;
    this.#onEvent({ type: "knock-success", ip: formatIpv4(ip), user, drift: c - 1, step });
    return KnockVerdict.UNLOCKED;
  }

  #remember(key: string, ip: number, step: number): void {
    if (this.#replay.size >= this.#maxReplay) {
      this.#replay.delete(this.#replay.keys().next().value!);
    }
    // Step S is a candidate for F in steps S-1..S+1, completing up to windowMs later.
    const expiresMs = (step + 2) * KNOCK_STEP_S * 1000 + this.#windowMs;
    this.#replay.set(key, { ip, expiresMs });
  }

  /** Ends the sequence in slot `s` as a failure; `count` it against the IP or not. */
  #end(
    s: number,
    reason: KnockFailureReason,
    nowMs: number,
    count: boolean,
    user = this.#profiles[this.#pUser[s]].user,
  ): void {
    const ip = this.#prog.keyOf(s);
    this.#prog.delete(s);
    this.stats.failures++;
    this.#onEvent({ type: "knock-failure", ip: formatIpv4(ip), user, reason });
    if (count) this.#countFailure(ip, nowMs);
  }

  #countFailure(ip: number, nowMs: number): void {
    let f = this.#fail.find(ip);
    if (f < 0) {
      if (this.#fail.full) {
        this.stats.evictedFailureRecords++;
        this.#fail.delete(this.#fail.oldest());
      }
      f = this.#fail.insert(ip);
      if (f >= this.#fHead.length) this.#growFail();
      this.#fHead[f] = 0;
      this.#fCount[f] = 0;
      this.#fUntil[f] = 0;
    }
    const k = this.#ring;
    const head = this.#fHead[f];
    this.#fTimes[f * k + head] = nowMs;
    this.#fHead[f] = (head + 1) % k;
    this.#fCount[f] = Math.min(this.#fCount[f] + 1, k);
    // Past the limit: maxFailures + 1 failures, the oldest of them within the window.
    const oldest = this.#fTimes[f * k + this.#fHead[f]];
    if (this.#fCount[f] === k && nowMs - oldest <= this.#failureWindowMs) {
      this.#fCount[f] = 0;
      this.#fUntil[f] = nowMs + this.#penaltyMs;
      this.stats.penalties++;
      this.#onEvent({ type: "knock-penalty", ip: formatIpv4(ip), until: nowMs + this.#penaltyMs });
    }
  }

  /**
   * Housekeeping, every second or so: ends sequences past their window
   * (counted as failures), forgets failure records and replay entries that
   * can no longer matter.
   */
  sweep(nowMs: number): void {
    // Sequences are in order of their F, so the expired ones are at the front.
    for (let s = this.#prog.oldest(); s !== -1; s = this.#prog.oldest()) {
      if (nowMs - this.#pStart[s] <= this.#windowMs) break;
      this.#end(s, "window-expired", nowMs, true);
    }
    const k = this.#ring;
    for (let f = this.#fail.oldest(); f !== -1;) {
      const next = this.#fail.newer(f);
      const latest = this.#fTimes[f * k + (this.#fHead[f] + k - 1) % k];
      const stale = this.#fCount[f] === 0 || nowMs - latest > this.#failureWindowMs;
      if (stale && this.#fUntil[f] <= nowMs) this.#fail.delete(f);
      f = next;
    }
    for (const [key, entry] of this.#replay) {
      if (entry.expiresMs < nowMs) this.#replay.delete(key);
    }
  }

  #growProg(): void {
    const n = this.#prog.capacity;
    this.#pUser = growI32(this.#pUser, n);
    this.#pStart = growF64(this.#pStart, n);
    this.#pStep = growF64(this.#pStep, n);
    this.#pPos = growU8(this.#pPos, n);
    this.#pMask = growU8(this.#pMask, n);
    this.#pLast = growU16(this.#pLast, n);
    this.#pSeq = growU16(this.#pSeq, n * CANDIDATES * SEQ_STRIDE);
    this.#pLen = growU8(this.#pLen, n * CANDIDATES);
  }

  #growFail(): void {
    const n = this.#fail.capacity;
    this.#fTimes = growF64(this.#fTimes, n * this.#ring);
    this.#fHead = growI32(this.#fHead, n);
    this.#fCount = growI32(this.#fCount, n);
    this.#fUntil = growF64(this.#fUntil, n);
  }
}

function protoBit(proto: number): number {
  return proto === PROTO_TCP ? TCP_BIT : proto === PROTO_UDP ? UDP_BIT : 0;
}

function checkProfile(p: KnockProfile): void {
  if (!Number.isInteger(p.firstPort) || p.firstPort < 1 || p.firstPort > 65535) {
    throw new Error(
      `Cannot set knock profile "${p.user}": first port ${p.firstPort} is out of range`,
    );
  }
  if (!Number.isInteger(p.length) || p.length < 1 || p.length > KNOCK_MAX_LENGTH) {
    throw new Error(
      `Cannot set knock profile "${p.user}": length ${p.length} is out of range 1..8`,
    );
  }
  if (p.transport !== "tcp" && p.transport !== "udp" && p.transport !== "any") {
    throw new Error(`Cannot set knock profile "${p.user}": transport "${p.transport}" is unknown`);
  }
}

function sameProfile(a: KnockProfile, b: KnockProfile): boolean {
  return a.firstPort === b.firstPort && a.length === b.length && a.transport === b.transport;
}
