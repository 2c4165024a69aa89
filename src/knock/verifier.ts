/**
 * `KnockVerifier`: the appliance side of `portknock/v1` (knock-protocol.md,
 * "Verifying"). The datapath calls `observe` for every new-flow packet from
 * the WAN to the WAN address, before NAT; it is synchronous, never throws and
 * allocates nothing unless a sequence ends, unlocks or is refused. All state
 * lives in bounded tables; `retune` changes the tunables in place, and
 * `drainState` / `restoreState` carry what must survive a restart (replay
 * memory, failure counts, penalties) through the store.
 *
 * In a fleet (several appliances on one store, option `claims`) a step must
 * unlock one IP across every node: a completion is `PENDING` until the
 * control plane has claimed its (user, step) in the store, and
 * `resolveClaim` then unlocks, refuses it as a replay, or refuses it
 * because the store could not be written (fail closed). `mergeState` takes
 * in what the other nodes wrote: their claimed steps, failure buckets and
 * penalties (never shortening one).
 *
 * ## Families
 *
 * IPv4 and IPv6 sources share every table (an IPv6 source is an id
 * `familyOf` tells apart). A step unlocks one source of either family; with
 * `pairFamilies` it may unlock one of *each* (a dual-stack client knocking
 * over both): the IPv6 half is remembered (and claimed) under its own key,
 * so the first IPv4 and the first IPv6 completion of a step unlock and any
 * further one is a replay. The cost: an on-path observer of one family's
 * knock can replay it over the other family within the step.
 *
 * ## Throttling and spoofed sources
 *
 * A knock is never answered (stealth), so a spoofed source cannot be told
 * from a real one: whatever a source can do to its own knocks, a spoofer can
 * do to a victim's. Throttling therefore limits how much *guessing* the gate
 * evaluates, never whether a correct sequence is evaluated, in three layers
 * (RFC 4226 §7.3):
 *
 * - **Per attempt** (an attempt is one sequence started on `F`): up to
 *   `noiseLimit` stray new-flow packets from the IP inside the window are
 *   tolerated (passed on as ordinary traffic); one more ends it. The user's
 *   own `F` never ends it: with nothing matched yet it restarts the window,
 *   later it is a retransmission. So a spoofer flooding the victim's address
 *   with SYNs on `F` cannot break a knock, nor can fewer than `noiseLimit`
 *   strays during the victim's own ~N x 100 ms of knocking.
 * - **Per IP**: failures fill a leaky bucket (`maxFailures` per
 *   `failureWindowMs`); past it the IP is penalised for `penaltyMs`, which
 *   rate-limits it to one new attempt per `penaltyAttemptMs` rather than
 *   ignoring it, so 12 spoofed failures in a victim's name delay the victim by
 *   at most one such interval. When the table is full, failures of untracked
 *   IPs go to one shared overflow bucket (`*`) that is penalised the same way:
 *   spreading failures over more sources than the table holds is throttled,
 *   not forgotten.
 * - **Per user, across all sources**: `userAttemptsPerStep` attempts per 30 s
 *   step (a token bucket). Beyond it an attempt is admitted with probability
 *   budget / attempts-this-step, so a flood can dilute a real user's chances
 *   but never zero them, while what the flood gets evaluated grows only
 *   logarithmically: at most B · (1 + ln(D / B)) attempts per step for D
 *   requests.
 *
 * Success probability of a blind attempt with N derived ports (14 bits each),
 * three candidate steps and k = noiseLimit tolerated strays: the N ports must
 * appear in order among N + k guesses, at most C(N + k, N) · 3 / 16384^N.
 * Defaults (N = 3, k = 8, B = 64): 165 · 3 · 2^-42 = 1.1e-10 per attempt;
 * within the budget 64 · 2880 steps/day = 184,320 attempts, 2.0e-5 per day;
 * under a sustained 1 Mpps flood of starts (more than the slow path carries),
 * 64 · (1 + ln(30e6 / 64)) = 899 attempts per step, 2.9e-4 per day. Each
 * further derived port divides these by 16384 · (N + 1) / (N + k + 1).
 */

import { formatIpv4, parseIpv4 } from "../packet/address.ts";
import { PROTO_TCP, PROTO_UDP } from "../packet/ipv4.ts";
import type { KnockEvent, KnockFailureReason } from "./events.ts";
import { growF64, growI32, growU16, growU8 } from "./_typed.ts";
import { IpSlotMap } from "./ip_slot_map.ts";
import type { KnockProfile } from "./profile.ts";
import type { SequenceCache } from "./sequence_cache.ts";
import { KNOCK_MAX_LENGTH, KNOCK_STEP_S } from "./sequence.ts";

/** What `observe` decided about a packet. */
export const KnockVerdict = {
  /** Not part of knocking (a stray tolerated by a sequence included): process normally. */
  NOT_KNOCK: 0,
  /** Consumed as a knock (start, advance or retransmission): drop silently. */
  KNOCK: 1,
  /** Completed a sequence: read `lastUser`, `lastDrift`, `lastStep`; drop the packet. */
  UNLOCKED: 2,
  /** Ended a sequence in progress as a failure; not a knock itself: process normally. */
  FAILED: 3,
  /** Completed a step already used (another IP, or an unlock since ended): refused; drop. */
  REPLAY: 4,
  /** A knock on some `F` from a penalised IP past its attempt rate: ignored; drop it. */
  PENALISED: 5,
  /** A knock on some `F` refused by the user's attempt budget: ignored; drop it. */
  THROTTLED: 6,
  /**
   * Completed a sequence whose step must first be claimed across the fleet
   * (`claims`): read `lastUser`, `lastDrift`, `lastStep`, drop the packet,
   * claim the step and hand the answer to `resolveClaim`.
   */
  PENDING: 7,
} as const;

/** A `KnockVerdict` value. */
export type KnockVerdict = typeof KnockVerdict[keyof typeof KnockVerdict];

/** Tunables `retune` may change at run time; every field has the protocol's default. */
export interface KnockTunables {
  /** Time from `F` within which the sequence must complete. */
  windowMs?: number;
  /** Failures tolerated per IP within `failureWindowMs`; one more starts a penalty. */
  maxFailures?: number;
  failureWindowMs?: number;
  /** How long a penalty lasts. */
  penaltyMs?: number;
  /** A penalised IP (or the overflow bucket) may start one attempt per this long. */
  penaltyAttemptMs?: number;
  /** Stray new-flow packets a sequence in progress tolerates. */
  noiseLimit?: number;
  /** Attempts per user per 30 s step, across all sources, before admission is sampled. */
  userAttemptsPerStep?: number;
  /** Most sequences in progress (one per IP). */
  maxInProgress?: number;
  /** Most IPs with failures counted or a penalty running (beyond: the overflow bucket). */
  maxPenalised?: number;
  /** Most (user, step) pairs remembered against replay. */
  maxReplay?: number;
}

/** The answer to a claim, for `resolveClaim`. */
export const ClaimResult = {
  /** The step is this IP's across the fleet: unlock. */
  GRANTED: 0,
  /** Another IP holds the step: a replay. */
  TAKEN: 1,
  /** The store could not be written: refused (fail closed), the step stays free. */
  UNREACHABLE: 2,
  /** The claim queue was full: refused, the step stays free. */
  DROPPED: 3,
} as const;

/** A `ClaimResult` value. */
export type ClaimResult = typeof ClaimResult[keyof typeof ClaimResult];

/** Options of the verifier: the tunables plus its hooks. */
export interface KnockVerifierOptions extends KnockTunables {
  /**
   * A completed sequence unlocks only once its (user, step) is claimed
   * across the nodes sharing the store (`PENDING`, then `resolveClaim`);
   * replay memory then travels by the claims, not by `drainState`.
   */
  claims?: boolean;
  /**
   * One step may unlock one source of each family (`ipv6.pairFamilies`);
   * default false: one source of either. `pairFamilies` changes it later.
   */
  pairFamilies?: boolean;
  /** The family of a source (an IPv6 one is an interned id); default: every source is IPv4. */
  familyOf?: (ip: number) => 4 | 6;
  /** Receives every knock event. */
  onEvent?: (event: KnockEvent) => void;
  /**
   * Whether `ip` holds a live unlock for `user` (the unlock table's answer).
   * A step's first IP may repeat it only while this holds; default: never.
   */
  unlockLive?: (ip: number, user: string, nowMs: number) => boolean;
}

/** Counts kept by the verifier since it was created. */
export interface KnockStats {
  /** Packets consumed as knocks (including retransmissions). */
  knocks: number;
  unlocks: number;
  failures: number;
  /** Completions refused as replays (another IP, or after the unlock ended). */
  replays: number;
  /** Penalties started (per IP and overflow). */
  penalties: number;
  /** Knocks on `F` ignored because the IP (or the overflow bucket) is penalised. */
  penalisedKnocks: number;
  /** Knocks on `F` refused by a user's attempt budget. */
  throttledAttempts: number;
  /** Stray packets tolerated by sequences in progress. */
  strays: number;
  /** Failures counted in the overflow bucket (the failure table was full). */
  overflowFailures: number;
  /** Sequences dropped because too many were in progress. */
  evictedSequences: number;
  /** Failure records dropped because `retune` shrank the table. */
  evictedFailureRecords: number;
  /** Knocks on `F` ignored because the cache held no sequence for the step. */
  missingSequences: number;
  /** State records dropped because nobody drained them. */
  droppedStateRecords: number;
  /** Completions that waited on a claim (`PENDING`). */
  claims: number;
  /** Claims refused because the store could not be written (fail closed). */
  claimsUnreachable: number;
  /** Claims refused because the claim queue was full. */
  claimsDropped: number;
}

/** A remembered (user, step) and the IP it unlocked. */
export interface ReplayStateRecord {
  type: "replay";
  user: string;
  step: number;
  ip: string;
  /**
   * 6: the IPv6 half of a step paired by family (`pairFamilies`), stored
   * under its own key; absent for the IPv4 half and for an unpaired step.
   */
  family?: 6;
  /** When the step can no longer match (ms since the epoch). */
  expiresAt: number;
}

/** The failure bucket and penalty of one IP, or of every untracked IP (`ip: "*"`). */
export interface FailureStateRecord {
  type: "failures";
  ip: string;
  /** Failures in the leaky bucket at `lastFailure`. */
  level: number;
  lastFailure: number;
  /** End of the penalty, 0 for none. */
  penaltyUntil: number;
  /** When the record can no longer matter. */
  expiresAt: number;
}

/** What `drainState` emits and `restoreState` takes back. */
export type KnockStateRecord = ReplayStateRecord | FailureStateRecord;

/** The overflow bucket's name in records and events. */
export const OVERFLOW_IP = "*";

const TCP_BIT = 1;
const UDP_BIT = 2;
const STEP_MS = KNOCK_STEP_S * 1000;
/** Candidates per sequence: T-1, T, T+1. */
const CANDIDATES = 3;
/** Ports per candidate: F and up to 8 more. */
const SEQ_STRIDE = KNOCK_MAX_LENGTH + 1;
/** Preference when several candidates complete together: T, then T-1, then T+1. */
const PREFERENCE = [1, 0, 2];

const DEFAULTS: Required<KnockTunables> = {
  windowMs: 15_000,
  maxFailures: 5,
  failureWindowMs: 600_000,
  penaltyMs: 600_000,
  penaltyAttemptMs: STEP_MS,
  noiseLimit: 8,
  userAttemptsPerStep: 64,
  maxInProgress: 65_536,
  maxPenalised: 65_536,
  maxReplay: 65_536,
};

interface ReplayEntry {
  ip: number;
  /** Its claim is on its way: the step is this IP's at this node until the answer. */
  pending: boolean;
  /** (step + 2) steps: the last F that can still pick the step; the window in force follows. */
  lastStartMs: number;
}

/** Verifies knocks per source IP; see the module comment. */
export class KnockVerifier {
  /** User of the last `UNLOCKED` (or `REPLAY`) verdict. */
  lastUser = "";
  /** Drift in steps (-1, 0, +1) of the last `UNLOCKED` verdict. */
  lastDrift = 0;
  /** Step of the sequence of the last `UNLOCKED` verdict. */
  lastStep = 0;
  /** One step may unlock one source of each family (see the module comment). */
  pairFamilies: boolean;
  /** Running counts. */
  readonly stats: KnockStats = {
    knocks: 0,
    unlocks: 0,
    failures: 0,
    replays: 0,
    penalties: 0,
    penalisedKnocks: 0,
    throttledAttempts: 0,
    strays: 0,
    overflowFailures: 0,
    evictedSequences: 0,
    evictedFailureRecords: 0,
    missingSequences: 0,
    droppedStateRecords: 0,
    claims: 0,
    claimsUnreachable: 0,
    claimsDropped: 0,
  };

  readonly #cache: SequenceCache;
  #t: Required<KnockTunables> = { ...DEFAULTS };
  readonly #onEvent: (event: KnockEvent) => void;
  readonly #unlockLive: (ip: number, user: string, nowMs: number) => boolean;
  readonly #claims: boolean;
  readonly #familyOf: (ip: number) => 4 | 6;
  /** xorshift32 state for sampled admission. */
  #rand = (crypto.getRandomValues(new Uint32Array(1))[0] | 1) >>> 0;

  // Users, indexed by position in the last `setProfiles` list.
  #profiles: KnockProfile[] = [];
  #transports = new Uint8Array(0);
  /** First port -> user index, -1 for none. */
  #portUser = new Int32Array(65536).fill(-1);
  // Per-user attempt budget: tokens at `uAt`, and the attempts requested in step `uStep`.
  #uTokens = new Float64Array(0);
  #uAt = new Float64Array(0);
  #uStep = new Float64Array(0);
  #uRequests = new Float64Array(0);

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
  /** Strays tolerated so far. */
  #pNoise = new Uint8Array(0);
  /** Candidate ports, CANDIDATES x SEQ_STRIDE per slot, copied at `F`. */
  #pSeq = new Uint16Array(0);
  /** Candidate lengths (F included), CANDIDATES per slot. */
  #pLen = new Uint8Array(0);

  // Failures per IP: a leaky bucket (level at fLast), the penalty, the next attempt allowed.
  readonly #fail: IpSlotMap;
  #fLevel = new Float64Array(0);
  #fLast = new Float64Array(0);
  #fUntil = new Float64Array(0);
  #fNext = new Float64Array(0);
  /** Failure records changed since the last `drainState`: flag per slot, and the slots. */
  #fDirty = new Uint8Array(0);
  #fDirtyList = new Int32Array(0);
  #fDirtyCount = 0;
  /** The overflow bucket, every IP the full table does not hold: level, last, until, next. */
  readonly #ov = new Float64Array(4);
  #ovDirty = false;

  /** "user\nstep" (its IPv6 half: "user\nstep\n6") -> the IP it unlocked; insertion order is roughly expiry order. */
  readonly #replay = new Map<string, ReplayEntry>();
  #replayDirty: ReplayStateRecord[] = [];

  /** Reads sequences from `cache`; users come from `setProfiles`. */
  constructor(cache: SequenceCache, options: KnockVerifierOptions = {}) {
    this.#cache = cache;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#unlockLive = options.unlockLive ?? (() => false);
    this.#claims = options.claims ?? false;
    this.pairFamilies = options.pairFamilies ?? false;
    this.#familyOf = options.familyOf ?? (() => 4);
    this.#t = tunables(DEFAULTS, options);
    this.#prog = new IpSlotMap(this.#t.maxInProgress);
    this.#fail = new IpSlotMap(this.#t.maxPenalised);
    this.#growProg();
    this.#growFail();
  }

  /** The tunables in force. */
  get tunables(): Readonly<Required<KnockTunables>> {
    return this.#t;
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

  /** Whether `ip` is penalised at `nowMs` (itself, or through the overflow bucket). */
  isPenalised(ip: number, nowMs: number): boolean {
    const f = this.#fail.find(ip >>> 0);
    if (f >= 0) return this.#fUntil[f] > nowMs;
    return this.#fail.full && this.#ov[2] > nowMs;
  }

  /**
   * Applies new tunables keeping every sequence in progress, failure count,
   * penalty and replay entry. Shrunk tables drop their oldest entries.
   * Throws on a value out of range (configuration time).
   */
  retune(next: KnockTunables, nowMs = Date.now()): void {
    const t = tunables(this.#t, next);
    this.#t = t;
    while (this.#prog.size > t.maxInProgress) {
      this.stats.evictedSequences++;
      this.#end(this.#prog.oldest(), "evicted", nowMs, false);
    }
    this.#prog.setMaxSize(t.maxInProgress);
    while (this.#fail.size > t.maxPenalised) {
      this.stats.evictedFailureRecords++;
      this.#fail.delete(this.#fail.oldest());
    }
    this.#fail.setMaxSize(t.maxPenalised);
    for (const key of this.#replay.keys()) {
      if (this.#replay.size <= t.maxReplay) break;
      this.#replay.delete(key);
    }
  }

  /**
   * Replaces the users. Throws on an invalid list (a port out of range, a
   * length out of 1..8, a first port used twice). Sequences in progress for a
   * user whose parameters changed or who is gone end without counting a
   * failure; attempt budgets follow the user by name.
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
    this.#remapBudgets(old);
    this.#remapProgress(old);
  }

  #remapBudgets(old: readonly KnockProfile[]): void {
    const was = new Map(old.map((p, i) => [p.user, i]));
    const n = this.#profiles.length;
    const tokens = new Float64Array(n).fill(this.#t.userAttemptsPerStep);
    const at = new Float64Array(n), step = new Float64Array(n), req = new Float64Array(n);
    this.#profiles.forEach((p, i) => {
      const j = was.get(p.user);
      if (j === undefined) return;
      tokens[i] = this.#uTokens[j];
      at[i] = this.#uAt[j];
      step[i] = this.#uStep[j];
      req[i] = this.#uRequests[j];
    });
    this.#uTokens = tokens;
    this.#uAt = at;
    this.#uStep = step;
    this.#uRequests = req;
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
        if (nowMs - this.#pStart[s] <= this.#t.windowMs) {
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
    const gate = this.#admit(ip, u, nowMs);
    if (gate !== KnockVerdict.KNOCK) return gate;
    return this.#start(ip, u, nowMs, ended);
  }

  /** The throttles in front of a new attempt: per IP (or overflow), then per user. */
  #admit(ip: number, u: number, nowMs: number): KnockVerdict {
    const f = this.#fail.find(ip);
    const ov = f < 0 && this.#fail.full;
    const until = f >= 0 ? this.#fUntil[f] : ov ? this.#ov[2] : 0;
    const rateLimited = until > nowMs && (f >= 0 ? this.#fNext[f] : this.#ov[3]) > nowMs;
    if (rateLimited) {
      this.stats.penalisedKnocks++;
      return KnockVerdict.PENALISED;
    }
    if (!this.#userBudget(u, nowMs)) {
      this.stats.throttledAttempts++;
      return KnockVerdict.THROTTLED;
    }
    if (until > nowMs) {
      if (f >= 0) this.#fNext[f] = nowMs + this.#t.penaltyAttemptMs;
      else this.#ov[3] = nowMs + this.#t.penaltyAttemptMs;
    }
    return KnockVerdict.KNOCK;
  }

  /** Takes one attempt from user `u`'s budget; beyond it, admits with probability B / requests. */
  #userBudget(u: number, nowMs: number): boolean {
    const b = this.#t.userAttemptsPerStep;
    const step = Math.floor(nowMs / STEP_MS);
    if (this.#uStep[u] !== step) {
      this.#uStep[u] = step;
      this.#uRequests[u] = 0;
    }
    const requests = ++this.#uRequests[u];
    const elapsed = Math.max(0, nowMs - this.#uAt[u]);
    const tokens = Math.min(b, this.#uTokens[u] + (elapsed * b) / STEP_MS);
    this.#uAt[u] = nowMs;
    if (tokens >= 1) {
      this.#uTokens[u] = tokens - 1;
      return true;
    }
    this.#uTokens[u] = tokens;
    return this.#random() * requests < b;
  }

  /** A uniform number in [0, 1) (xorshift32: sampling, not secrecy). */
  #random(): number {
    let x = this.#rand;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rand = x >>> 0;
    return this.#rand / 4294967296;
  }

  #start(ip: number, u: number, nowMs: number, ended: boolean): KnockVerdict {
    if (this.#prog.full) {
      this.stats.evictedSequences++;
      this.#prog.delete(this.#prog.oldest());
    }
    const s = this.#prog.insert(ip);
    if (s >= this.#pUser.length) this.#growProg();
    if (!this.#loadCandidates(s, u, nowMs)) {
      // The cache has not been filled for this step: nothing to verify against.
      this.#prog.delete(s);
      this.stats.missingSequences++;
      return ended ? KnockVerdict.FAILED : KnockVerdict.NOT_KNOCK;
    }
    this.#pNoise[s] = 0;
    this.stats.knocks++;
    return KnockVerdict.KNOCK;
  }

  /** Sets slot `s` to user `u`'s candidates around now, at position 1 (F seen). */
  #loadCandidates(s: number, u: number, nowMs: number): boolean {
    const name = this.#profiles[u].user;
    const step = Math.floor(nowMs / STEP_MS);
    let mask = 0;
    for (let c = 0; c < CANDIDATES; c++) {
      const seq = this.#cache.sequence(name, step - 1 + c);
      const len = seq === null ? 0 : seq.length;
      this.#pLen[s * CANDIDATES + c] = len;
      if (len < 2) continue;
      this.#pSeq.set(seq!, (s * CANDIDATES + c) * SEQ_STRIDE);
      mask |= 1 << c;
    }
    if (mask === 0) return false;
    this.#pUser[s] = u;
    this.#pStart[s] = nowMs;
    this.#pStep[s] = step;
    this.#pPos[s] = 1;
    this.#pMask[s] = mask;
    this.#pLast[s] = this.#profiles[u].firstPort;
    return true;
  }

  #advance(s: number, ip: number, proto: number, dstPort: number, nowMs: number): KnockVerdict {
    const u = this.#pUser[s];
    const fitsTransport = (this.#transports[u] & protoBit(proto)) !== 0;
    const pos = this.#pPos[s];
    if (fitsTransport && dstPort === this.#profiles[u].firstPort) {
      // F again: before any match it restarts the window (strays stay counted); later it is
      // a retransmission. Derived ports never equal F, so this guesses nothing.
      if (pos === 1) this.#loadCandidates(s, u, nowMs);
      this.stats.knocks++;
      return KnockVerdict.KNOCK;
    }
    if (fitsTransport && dstPort === this.#pLast[s]) {
      this.stats.knocks++;
      return KnockVerdict.KNOCK; // a retransmission of the last accepted knock
    }
    const mask = this.#fitting(s, pos, dstPort);
    if (mask === 0 || !fitsTransport) {
      if (this.#pNoise[s] < this.#t.noiseLimit) {
        this.#pNoise[s]++;
        this.stats.strays++;
        return KnockVerdict.NOT_KNOCK;
      }
      this.#end(s, mask !== 0 ? "wrong-transport" : "wrong-port", nowMs, true);
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
    const key = this.#replayKey(user, step, ip);
    const seen = this.#replay.get(key);
    this.lastDrift = c - 1;
    this.lastStep = step;
    if (seen !== undefined && seen.pending && seen.ip === ip) {
      this.stats.knocks++;
      return KnockVerdict.KNOCK; // the same sequence again while its claim is out (a browser repeats)
    }
    // RFC 6238 §5.2: a step is accepted once. Its first IP may repeat it only while the
    // unlock it gave is live (a harmless refresh); after a revoke or expiry it is spent.
    if (
      seen !== undefined && (seen.pending || seen.ip !== ip || !this.#unlockLive(ip, user, nowMs))
    ) {
      this.#replayed(ip, user, step, seen.ip, nowMs);
      return KnockVerdict.REPLAY;
    }
    if (seen === undefined && this.#claims) {
      this.#remember(key, user, step, ip, true);
      this.stats.claims++;
      return KnockVerdict.PENDING;
    }
    if (seen === undefined) this.#remember(key, user, step, ip, false);
    this.stats.unlocks++;
    this.#onEvent({ type: "knock-success", ip: formatIpv4(ip), user, drift: c - 1, step });
    return KnockVerdict.UNLOCKED;
  }

  #replayed(ip: number, user: string, step: number, firstIp: number, nowMs: number): void {
    this.stats.replays++;
    this.#onEvent({
      type: "knock-replay",
      ip: formatIpv4(ip),
      user,
      step,
      firstIp: formatIpv4(firstIp),
    });
    this.#countFailure(ip, nowMs);
  }

  /**
   * Takes the answer to the claim a `PENDING` verdict asked for: `ip`
   * completed `user`'s `step` with `drift`; `firstIp` is the IP holding the
   * step when it is `TAKEN`. Emits what a local verdict would have
   * (`knock-success`; `knock-replay` and a failure for a step taken) and
   * returns true when the caller must unlock `ip`. A claim refused
   * (`UNREACHABLE`, `DROPPED`) frees the step again and is only counted.
   */
  resolveClaim(
    ip: number,
    user: string,
    step: number,
    drift: number,
    result: ClaimResult,
    firstIp: number,
    nowMs: number,
  ): boolean {
    ip >>>= 0;
    const key = this.#replayKey(user, step, ip);
    const seen = this.#replay.get(key);
    if (result === ClaimResult.GRANTED) {
      if (seen === undefined) this.#remember(key, user, step, ip, false);
      else if (seen.ip === ip) seen.pending = false;
      else return false; // the step went to another IP meanwhile (merged): that one holds it
      this.lastUser = user;
      this.lastDrift = drift;
      this.lastStep = step;
      this.stats.unlocks++;
      this.#onEvent({ type: "knock-success", ip: formatIpv4(ip), user, drift, step });
      return true;
    }
    if (result === ClaimResult.TAKEN) {
      if (seen !== undefined) {
        seen.ip = firstIp >>> 0;
        seen.pending = false;
      } else this.#remember(key, user, step, firstIp >>> 0, false);
      this.#replayed(ip, user, step, firstIp, nowMs);
      return false;
    }
    if (seen !== undefined && seen.pending && seen.ip === ip) this.#replay.delete(key);
    if (result === ClaimResult.UNREACHABLE) this.stats.claimsUnreachable++;
    else this.stats.claimsDropped++;
    return false;
  }

  /** The replay memory's key of `ip` completing `user`'s `step`: its family's half when paired. */
  #replayKey(user: string, step: number, ip: number): string {
    return this.#ipv6Half(ip) ? `${user}\n${step}\n6` : `${user}\n${step}`;
  }

  #ipv6Half(ip: number): boolean {
    return this.pairFamilies && this.#familyOf(ip) === 6;
  }

  #remember(key: string, user: string, step: number, ip: number, pending: boolean): void {
    if (this.#replay.size >= this.#t.maxReplay) {
      this.#replay.delete(this.#replay.keys().next().value!);
    }
    // Step S is a candidate for an F in steps S-1..S+1, so S can complete until (S + 2)
    // steps plus the window; the sweep adds the window in force, so a retune that widens
    // it cannot free a step early.
    const lastStartMs = (step + 2) * STEP_MS;
    this.#replay.set(key, { ip, pending, lastStartMs });
    // With claims the claim is the stored copy (the fleet's); without, the store gets this.
    if (this.#claims) return;
    const expiresAt = lastStartMs + this.#t.windowMs;
    const r: ReplayStateRecord = { type: "replay", user, step, ip: formatIpv4(ip), expiresAt };
    if (this.#ipv6Half(ip)) r.family = 6;
    this.#pushState(r);
  }

  /** When a step claimed now can no longer match (the claim's expiry in the store). */
  claimExpiry(step: number): number {
    return (step + 2) * STEP_MS + this.#t.windowMs;
  }

  #pushState(r: ReplayStateRecord): void {
    if (this.#replayDirty.length < this.#t.maxReplay) this.#replayDirty.push(r);
    else this.stats.droppedStateRecords++;
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
    if (f < 0 && !this.#fail.full) {
      f = this.#fail.insert(ip);
      if (f >= this.#fLevel.length) this.#growFail();
      this.#fLevel[f] = 0;
      this.#fLast[f] = nowMs;
      this.#fUntil[f] = 0;
      this.#fNext[f] = 0;
    }
    if (f < 0) {
      // The table is full: count it against every untracked source together.
      this.stats.overflowFailures++;
      this.#ovDirty = true;
      const ov = this.#ov;
      ov[0] = this.#leak(ov[0], ov[1], nowMs) + 1;
      ov[1] = nowMs;
      if (ov[0] > this.#t.maxFailures) {
        ov[0] = 0;
        ov[2] = nowMs + this.#t.penaltyMs;
        ov[3] = nowMs + this.#t.penaltyAttemptMs;
        this.#penalty(OVERFLOW_IP, ov[2]);
      }
      return;
    }
    this.#markDirty(f);
    const level = this.#leak(this.#fLevel[f], this.#fLast[f], nowMs) + 1;
    this.#fLast[f] = nowMs;
    if (level > this.#t.maxFailures) {
      this.#fLevel[f] = 0;
      this.#fUntil[f] = nowMs + this.#t.penaltyMs;
      this.#fNext[f] = nowMs + this.#t.penaltyAttemptMs;
      this.#penalty(formatIpv4(ip), this.#fUntil[f]);
    } else {
      this.#fLevel[f] = level;
    }
  }

  #penalty(ip: string, until: number): void {
    this.stats.penalties++;
    this.#onEvent({ type: "knock-penalty", ip, until });
  }

  /** A failure bucket's level at `nowMs`: it drains `maxFailures` per failure window. */
  #leak(level: number, at: number, nowMs: number): number {
    const rate = Math.max(1, this.#t.maxFailures) / this.#t.failureWindowMs;
    return Math.max(0, level - (nowMs - at) * rate);
  }

  #markDirty(f: number): void {
    if (this.#fDirty[f] !== 0) return;
    this.#fDirty[f] = 1;
    this.#fDirtyList[this.#fDirtyCount++] = f;
  }

  /**
   * Housekeeping, every second or so: ends sequences past their window
   * (counted as failures), forgets failure records and replay entries that
   * can no longer matter.
   */
  sweep(nowMs: number): void {
    const t = this.#t;
    // Sequences are in order of their F, so the expired ones are at the front.
    for (let s = this.#prog.oldest(); s !== -1; s = this.#prog.oldest()) {
      if (nowMs - this.#pStart[s] <= t.windowMs) break;
      this.#end(s, "window-expired", nowMs, true);
    }
    for (let f = this.#fail.oldest(); f !== -1;) {
      const next = this.#fail.newer(f);
      if (nowMs - this.#fLast[f] > t.failureWindowMs && this.#fUntil[f] <= nowMs) {
        this.#fail.delete(f);
      }
      f = next;
    }
    for (const [key, entry] of this.#replay) {
      if (entry.lastStartMs + t.windowMs < nowMs) this.#replay.delete(key);
    }
  }

  /**
   * The state records changed since the last call (new replay entries,
   * failure buckets and penalties), for the store. Bounded by the tables.
   */
  drainState(): KnockStateRecord[] {
    const out: KnockStateRecord[] = this.#replayDirty;
    this.#replayDirty = [];
    for (let i = 0; i < this.#fDirtyCount; i++) {
      const f = this.#fDirtyList[i];
      this.#fDirty[f] = 0;
      const ip = this.#fail.keyOf(f);
      if (this.#fail.find(ip) !== f) continue; // deleted since: its stored copy expires
      out.push(
        this.#failureRecord(formatIpv4(ip), this.#fLevel[f], this.#fLast[f], this.#fUntil[f]),
      );
    }
    this.#fDirtyCount = 0;
    if (this.#ovDirty) {
      this.#ovDirty = false;
      out.push(this.#failureRecord(OVERFLOW_IP, this.#ov[0], this.#ov[1], this.#ov[2]));
    }
    return out;
  }

  #failureRecord(ip: string, level: number, last: number, until: number): FailureStateRecord {
    const expiresAt = Math.max(until, last + this.#t.failureWindowMs);
    return { type: "failures", ip, level, lastFailure: last, penaltyUntil: until, expiresAt };
  }

  /**
   * Takes back records saved before a restart (or from `drainState`),
   * leaving out those expired at `nowMs` or malformed; entries already held
   * win. Returns how many were taken.
   */
  restoreState(records: readonly KnockStateRecord[], nowMs: number): number {
    let n = 0;
    for (const r of records) {
      if (!(r?.expiresAt > nowMs)) continue;
      if (r.type === "replay") {
        const ip = parseIpv4(r.ip);
        const bad = ip === null || typeof r.user !== "string" || !Number.isInteger(r.step);
        if (bad) continue;
        // Keyed as this node pairs families: unpaired, the first record of a step wins.
        const key = this.#replayKey(r.user, r.step, ip);
        if (this.#replay.has(key)) continue;
        if (this.#replay.size >= this.#t.maxReplay) continue;
        this.#replay.set(key, { ip, pending: false, lastStartMs: (r.step + 2) * STEP_MS });
        n++;
      } else if (r.type === "failures") {
        if (this.#restoreFailures(r)) n++;
      }
    }
    return n;
  }

  /**
   * Merges records other nodes wrote (a fleet's store feed) into the running
   * state: a step new to this node is remembered as the IP's it names (held
   * ones, a claim on its way included, stay); failure buckets and penalties
   * take the higher level and the later end, so a penalty never shortens.
   * Where this node holds a longer penalty than a record (two nodes wrote
   * the key at once), its own record is written again at the next
   * `drainState`, so the store keeps the longest. Returns how many records
   * changed something.
   */
  mergeState(records: readonly KnockStateRecord[], nowMs: number): number {
    let n = 0;
    for (const r of records) {
      if (!(r?.expiresAt > nowMs)) continue;
      if (r.type === "replay") n += this.restoreState([r], nowMs);
      else if (r.type === "failures" && this.#mergeFailures(r, nowMs)) n++;
    }
    return n;
  }

  #mergeFailures(r: FailureStateRecord, nowMs: number): boolean {
    const level = this.#leak(Number(r.level) || 0, Number(r.lastFailure) || 0, nowMs);
    const until = Number(r.penaltyUntil) || 0;
    if (r.ip === OVERFLOW_IP) {
      const ov = this.#ov, own = this.#leak(ov[0], ov[1], nowMs);
      if (ov[2] > until) this.#ovDirty = true;
      if (level <= own && until <= ov[2]) return false;
      ov[0] = Math.max(level, own);
      ov[1] = nowMs;
      ov[2] = Math.max(ov[2], until);
      return true;
    }
    const ip = parseIpv4(r.ip);
    if (ip === null) return false;
    const f = this.#fail.find(ip);
    if (f < 0) return this.#restoreFailures({ ...r, level, lastFailure: nowMs });
    const own = this.#leak(this.#fLevel[f], this.#fLast[f], nowMs);
    if (this.#fUntil[f] > until) this.#markDirty(f);
    if (level <= own && until <= this.#fUntil[f]) return false;
    this.#fLevel[f] = Math.max(level, own);
    this.#fLast[f] = nowMs;
    this.#fUntil[f] = Math.max(this.#fUntil[f], until);
    return true;
  }

  #restoreFailures(r: FailureStateRecord): boolean {
    const level = Number(r.level) || 0, last = Number(r.lastFailure) || 0;
    const until = Number(r.penaltyUntil) || 0;
    if (r.ip === OVERFLOW_IP) {
      this.#ov.set([level, last, until, 0]);
      return true;
    }
    const ip = parseIpv4(r.ip);
    if (ip === null || this.#fail.find(ip) >= 0 || this.#fail.full) return false;
    const f = this.#fail.insert(ip);
    if (f >= this.#fLevel.length) this.#growFail();
    this.#fLevel[f] = level;
    this.#fLast[f] = last;
    this.#fUntil[f] = until;
    this.#fNext[f] = 0;
    return true;
  }

  #growProg(): void {
    const n = this.#prog.capacity;
    this.#pUser = growI32(this.#pUser, n);
    this.#pStart = growF64(this.#pStart, n);
    this.#pStep = growF64(this.#pStep, n);
    this.#pPos = growU8(this.#pPos, n);
    this.#pMask = growU8(this.#pMask, n);
    this.#pLast = growU16(this.#pLast, n);
    this.#pNoise = growU8(this.#pNoise, n);
    this.#pSeq = growU16(this.#pSeq, n * CANDIDATES * SEQ_STRIDE);
    this.#pLen = growU8(this.#pLen, n * CANDIDATES);
  }

  #growFail(): void {
    const n = this.#fail.capacity;
    this.#fLevel = growF64(this.#fLevel, n);
    this.#fLast = growF64(this.#fLast, n);
    this.#fUntil = growF64(this.#fUntil, n);
    this.#fNext = growF64(this.#fNext, n);
    this.#fDirty = growU8(this.#fDirty, n);
    this.#fDirtyList = growI32(this.#fDirtyList, n);
  }
}

/** `base` with the defined fields of `next`, checked. */
function tunables(
  base: Required<KnockTunables>,
  next: KnockTunables,
): Required<KnockTunables> {
  const t = { ...base };
  for (const k of Object.keys(DEFAULTS) as (keyof KnockTunables)[]) {
    const v = next[k];
    if (v === undefined) continue;
    const count = k === "noiseLimit" || (k.startsWith("max") && k !== "maxFailures");
    const min = k === "failureWindowMs" || k === "userAttemptsPerStep" ||
        (count && k !== "noiseLimit")
      ? 1
      : 0;
    const bad = !Number.isFinite(v) || v < min || (count && !Number.isInteger(v)) ||
      (k === "noiseLimit" && v > 255);
    if (bad) {
      throw new Error(`Cannot tune the knock verifier: ${k} ${v} is out of range`);
    }
    t[k] = v;
  }
  return t;
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
