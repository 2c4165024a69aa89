import assert from "node:assert/strict";
import type { KnockEvent } from "./events.ts";
import type { KnockProfile, KnockTransport } from "./profile.ts";
import { loadVectors } from "./_vectors.ts";
import { SequenceCache } from "./sequence_cache.ts";
import { ClaimResult, KnockVerdict, KnockVerifier, type KnockVerifierOptions } from "./verifier.ts";

const { NOT_KNOCK, KNOCK, UNLOCKED, FAILED, REPLAY, PENALISED, PENDING } = KnockVerdict;
const STEP_MS = 30_000;
const SECRET_A = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const SECRET_B = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const T = 37037036;
/** 5 s into step T. */
const NOW = T * STEP_MS + 5_000;
const IP1 = 0xcb007107; // 203.0.113.7
const IP2 = 0xcb007108; // 203.0.113.8
const TCP = 6;
const UDP = 17;

interface Rig {
  v: KnockVerifier;
  cache: SequenceCache;
  events: KnockEvent[];
  /** The sequence of `user` at step `step`, F included. */
  seq(user: string, step: number): number[];
}

async function rig(
  options: KnockVerifierOptions = {},
  transport: KnockTransport = "any",
  nowMs = NOW,
): Promise<Rig> {
  const cache = new SequenceCache();
  const profiles: KnockProfile[] = [
    { user: "alice", firstPort: 41001, length: 3, transport },
    { user: "bob", firstPort: 52201, length: 3, transport },
  ];
  await cache.setUser(profiles[0], SECRET_A, nowMs);
  await cache.setUser(profiles[1], SECRET_B, nowMs);
  const events: KnockEvent[] = [];
  // The protocol's strict reading (no stray tolerated) unless a test asks for tolerance.
  const v = new KnockVerifier(cache, {
    noiseLimit: 0,
    ...options,
    onEvent: (e) => events.push(e),
  });
  v.setProfiles(profiles);
  return { v, cache, events, seq: (u, s) => [...cache.sequence(u, s)!] };
}

/** Sends `ports` from `ip` 100 ms apart from `t0`; returns the verdicts. */
function knock(v: KnockVerifier, ip: number, ports: number[], t0 = NOW, proto: 6 | 17 = TCP) {
  return ports.map((p, i) => v.observe(ip, proto, p, t0 + 100 * i));
}

Deno.test("every vector unlocks at its own time with drift 0", async () => {
  for (const vec of await loadVectors()) {
    const cache = new SequenceCache();
    const profile = {
      user: "u",
      firstPort: vec.firstPort,
      length: vec.length,
      transport: "any" as const,
    };
    const now = vec.unixTime * 1000;
    await cache.setUser(profile, vec.secret, now);
    const v = new KnockVerifier(cache);
    v.setProfiles([profile]);
    const verdicts = vec.sequence.map((p) => v.observe(IP1, TCP, p, now));
    assert.deepEqual(verdicts, [...Array(vec.length).fill(KNOCK), UNLOCKED]);
    assert.equal(v.lastUser, "u");
    assert.equal(v.lastDrift, 0);
    assert.equal(v.lastStep, vec.step);
  }
});

Deno.test("a success reports user, drift and step as an event", async () => {
  const r = await rig();
  assert.deepEqual(knock(r.v, IP1, r.seq("alice", T)), [KNOCK, KNOCK, KNOCK, UNLOCKED]);
  assert.deepEqual(r.events, [
    { type: "knock-success", ip: "203.0.113.7", user: "alice", drift: 0, step: T },
  ]);
  assert.equal(r.v.inProgress, 0);
});

Deno.test("clock skew of one step either way is accepted and recorded", async () => {
  for (const drift of [-1, 1]) {
    const r = await rig();
    assert.equal(knock(r.v, IP1, r.seq("alice", T + drift)).at(-1), UNLOCKED);
    assert.equal(r.v.lastDrift, drift);
    assert.equal(r.v.lastStep, T + drift);
  }
});

Deno.test("clock skew of two steps is refused", async () => {
  for (const drift of [-2, 2]) {
    const r = await rig({}, "any", NOW + drift * STEP_MS);
    const ports = r.seq("alice", T + drift);
    // F starts a sequence; the first derived port fits no candidate and fails it.
    assert.deepEqual(knock(r.v, IP1, ports).slice(0, 2), [KNOCK, FAILED]);
    assert.equal(r.events[0].type, "knock-failure");
    assert.equal(r.events.some((e) => e.type === "knock-success"), false);
  }
});

Deno.test("the verifier keeps working for a step after the clock moves, before refresh", async () => {
  const r = await rig();
  // The cache was filled at step T; F now arrives in step T+1 and the client is at T+2.
  const later = (T + 1) * STEP_MS + 1_000;
  assert.equal(knock(r.v, IP1, r.seq("alice", T + 2), later).at(-1), UNLOCKED);
  assert.equal(r.v.lastDrift, 1);
});

Deno.test("out-of-order ports fail the sequence", async () => {
  const r = await rig();
  const [f, p1, p2, p3] = r.seq("alice", T);
  assert.deepEqual(knock(r.v, IP1, [f, p2, p1, p3]), [KNOCK, FAILED, NOT_KNOCK, NOT_KNOCK]);
  assert.deepEqual(r.events, [
    { type: "knock-failure", ip: "203.0.113.7", user: "alice", reason: "wrong-port" },
  ]);
});

Deno.test("a stray new flow on any port fails the sequence; before F it is no knock", async () => {
  const r = await rig();
  const [f, p1, p2, p3] = r.seq("alice", T);
  assert.equal(r.v.observe(IP1, TCP, 443, NOW), NOT_KNOCK);
  assert.deepEqual(knock(r.v, IP1, [f, p1, 443, p2, p3]), [
    KNOCK,
    KNOCK,
    FAILED,
    NOT_KNOCK,
    NOT_KNOCK,
  ]);
  assert.equal(r.v.inProgress, 0);
});

Deno.test("an ascending sweep does not complete an ascending sequence", async () => {
  const r = await rig();
  const ports = r.seq("alice", T);
  const sorted = [...ports.slice(1)].sort((a, b) => a - b);
  let unlocked = 0;
  r.v.observe(IP1, TCP, ports[0], NOW);
  for (let p = sorted[0]; p <= sorted.at(-1)!; p++) {
    if (r.v.observe(IP1, TCP, p, NOW + 1) === UNLOCKED) unlocked++;
  }
  assert.equal(unlocked, 0);
});

Deno.test("retransmissions of the last accepted port are ignored", async () => {
  const r = await rig();
  const [f, p1, p2, p3] = r.seq("alice", T);
  assert.deepEqual(
    knock(r.v, IP1, [f, f, p1, p1, p1, p2, p2, p3]),
    [KNOCK, KNOCK, KNOCK, KNOCK, KNOCK, KNOCK, KNOCK, UNLOCKED],
  );
});

Deno.test("a repeat of an earlier (not the last) port fails", async () => {
  const r = await rig();
  const [f, p1, p2] = r.seq("alice", T);
  assert.deepEqual(knock(r.v, IP1, [f, p1, p2, p1]), [KNOCK, KNOCK, KNOCK, FAILED]);
});

Deno.test("completion must fall within the window from F", async () => {
  const r = await rig();
  const [f, p1, p2, p3] = r.seq("alice", T);
  r.v.observe(IP1, TCP, f, NOW);
  r.v.observe(IP1, TCP, p1, NOW + 5_000);
  r.v.observe(IP1, TCP, p2, NOW + 10_000);
  assert.equal(r.v.observe(IP1, TCP, p3, NOW + 15_000), UNLOCKED);

  const late = NOW + 20_000;
  knock(r.v, IP2, [f, p1, p2], late);
  assert.equal(r.v.observe(IP2, TCP, p3, late + 15_001), FAILED);
  assert.deepEqual(r.events.at(-1), {
    type: "knock-failure",
    ip: "203.0.113.8",
    user: "alice",
    reason: "window-expired",
  });
});

Deno.test("a knock on F after an expired sequence starts a new one", async () => {
  const r = await rig();
  const ports = r.seq("alice", T);
  knock(r.v, IP1, ports.slice(0, 2));
  assert.deepEqual(knock(r.v, IP1, ports, NOW + 16_000), [KNOCK, KNOCK, KNOCK, UNLOCKED]);
  assert.equal(r.events[0].type, "knock-failure");
});

Deno.test("another user's F ends the sequence as a failure and starts that user's", async () => {
  const r = await rig();
  const a = r.seq("alice", T);
  const b = r.seq("bob", T);
  assert.deepEqual(knock(r.v, IP1, [a[0], a[1], ...b]), [
    KNOCK,
    KNOCK,
    KNOCK,
    KNOCK,
    KNOCK,
    UNLOCKED,
  ]);
  assert.equal(r.v.lastUser, "bob");
  assert.deepEqual(r.events.map((e) => e.type), ["knock-failure", "knock-success"]);
});

Deno.test("F again mid-way is taken as a retransmission, not a restart", async () => {
  const r = await rig();
  const a = r.seq("alice", T);
  assert.deepEqual(knock(r.v, IP1, [a[0], a[1], ...a]).at(-1), UNLOCKED);
});

Deno.test("a knock that continues a sequence is taken as such before another user's F", async () => {
  const r = await rig();
  const a = r.seq("alice", T);
  // Bob's F is alice's second port.
  r.v.setProfiles([
    { user: "alice", firstPort: 41001, length: 3, transport: "any" },
    { user: "bob", firstPort: a[1], length: 3, transport: "any" },
  ]);
  assert.deepEqual(knock(r.v, IP1, a), [KNOCK, KNOCK, KNOCK, UNLOCKED]);
  assert.equal(r.v.lastUser, "alice");
});

Deno.test("transport: a knock on the wrong transport fails; F on it is no knock", async () => {
  const r = await rig({}, "tcp");
  const [f, p1, p2, p3] = r.seq("alice", T);
  assert.equal(r.v.observe(IP1, UDP, f, NOW), NOT_KNOCK);
  assert.deepEqual(knock(r.v, IP1, [f, p1], NOW), [KNOCK, KNOCK]);
  assert.equal(r.v.observe(IP1, UDP, p2, NOW + 300), FAILED);
  assert.equal((r.events[0] as { reason: string }).reason, "wrong-transport");
  assert.equal(knock(r.v, IP1, [f, p1, p2, p3], NOW + 400).at(-1), UNLOCKED);

  const u = await rig({}, "udp");
  assert.equal(u.v.observe(IP1, TCP, f, NOW), NOT_KNOCK);
  assert.equal(knock(u.v, IP1, [f, p1, p2, p3], NOW, UDP).at(-1), UNLOCKED);

  const any = await rig({}, "any");
  assert.equal(any.v.observe(IP1, UDP, f, NOW), KNOCK);
  assert.equal(any.v.observe(IP1, TCP, p1, NOW), KNOCK);
  assert.equal(any.v.observe(IP1, UDP, p2, NOW), KNOCK);
  assert.equal(any.v.observe(IP1, TCP, p3, NOW), UNLOCKED);
});

Deno.test("a step that unlocked one IP cannot unlock another; the same IP refreshes", async () => {
  let live = true;
  const r = await rig({ unlockLive: () => live });
  const a = r.seq("alice", T);
  assert.equal(knock(r.v, IP1, a).at(-1), UNLOCKED);
  assert.equal(knock(r.v, IP2, a, NOW + 1_000).at(-1), REPLAY);
  assert.deepEqual(r.events.at(-1), {
    type: "knock-replay",
    ip: "203.0.113.8",
    user: "alice",
    step: T,
    firstIp: "203.0.113.7",
  });
  // Refused from the other IP even while the first IP's unlock is live.
  assert.equal(knock(r.v, IP1, a, NOW + 2_000).at(-1), UNLOCKED);
  // The other IP may use another step, and another user's same step is unrelated.
  assert.equal(knock(r.v, IP2, r.seq("alice", T + 1), NOW + 3_000).at(-1), UNLOCKED);
  assert.equal(r.v.lastDrift, 1);
  assert.equal(knock(r.v, IP2, r.seq("bob", T), NOW + 4_000).at(-1), UNLOCKED);
  assert.equal(r.v.stats.replays, 1);
  live = false;
  assert.equal(knock(r.v, IP2, r.seq("alice", T), NOW + 5_000).at(-1), REPLAY);
});

Deno.test("the same IP repeating its step after the unlock ended (revoke, expiry) is a replay", async () => {
  // The unlock table's answer, as the pipeline wires it: live until revoked or expired.
  const unlocked = new Set<number>();
  const r = await rig({ unlockLive: (ip) => unlocked.has(ip) });
  const a = r.seq("alice", T);
  assert.equal(knock(r.v, IP1, a).at(-1), UNLOCKED);
  unlocked.add(IP1);
  assert.equal(knock(r.v, IP1, a, NOW + 1_000).at(-1), UNLOCKED, "a refresh while live");
  unlocked.delete(IP1); // revoked
  assert.equal(knock(r.v, IP1, a, NOW + 2_000).at(-1), REPLAY);
  assert.deepEqual(r.events.at(-1), {
    type: "knock-replay",
    ip: "203.0.113.7",
    user: "alice",
    step: T,
    firstIp: "203.0.113.7",
  });
  // Without an unlock table to ask, a repeat is never live.
  const bare = await rig();
  assert.equal(knock(bare.v, IP1, a).at(-1), UNLOCKED);
  assert.equal(knock(bare.v, IP1, a, NOW + 1_000).at(-1), REPLAY);
  // A fresh step unlocks again.
  assert.equal(knock(r.v, IP1, r.seq("alice", T + 1), NOW + 3_000).at(-1), UNLOCKED);
});

Deno.test("replay entries expire once their step can no longer match", async () => {
  const r = await rig();
  knock(r.v, IP1, r.seq("alice", T));
  assert.equal(r.v.replayEntries, 1);
  r.v.sweep((T + 2) * STEP_MS + 15_000);
  assert.equal(r.v.replayEntries, 1);
  // A retune that widens the window keeps the step spent for the wider window.
  r.v.retune({ windowMs: 20_000 });
  r.v.sweep((T + 2) * STEP_MS + 15_001);
  assert.equal(r.v.replayEntries, 1);
  r.v.sweep((T + 2) * STEP_MS + 20_001);
  assert.equal(r.v.replayEntries, 0);
});

Deno.test("the replay cache is bounded", async () => {
  const r = await rig({ maxReplay: 2 });
  knock(r.v, IP1, r.seq("alice", T - 1));
  knock(r.v, IP1, r.seq("alice", T), NOW + 1_000);
  knock(r.v, IP1, r.seq("alice", T + 1), NOW + 2_000);
  assert.equal(r.v.replayEntries, 2);
});

/** Fails one sequence from `ip` at `t`: F, then a wrong port. */
function failOnce(r: Rig, ip: number, t: number): number {
  r.v.observe(ip, TCP, 41001, t);
  return r.v.observe(ip, TCP, 1, t + 100);
}

Deno.test("past 5 failures in 10 minutes an IP's knocks are ignored for 10 minutes", async () => {
  const r = await rig();
  for (let i = 0; i < 5; i++) assert.equal(failOnce(r, IP1, NOW + i * 1_000), FAILED);
  assert.equal(r.v.isPenalised(IP1, NOW + 5_000), false);
  assert.equal(failOnce(r, IP1, NOW + 5_000), FAILED);
  const start = NOW + 5_100;
  assert.equal(r.v.isPenalised(IP1, start), true);
  assert.deepEqual(r.events.at(-1), {
    type: "knock-penalty",
    ip: "203.0.113.7",
    until: start + 600_000,
  });
  // Knocks on F are ignored, other traffic is not a knock; other IPs are untouched.
  const a = r.seq("alice", T);
  assert.deepEqual(knock(r.v, IP1, a, start + 1_000), [PENALISED, NOT_KNOCK, NOT_KNOCK, NOT_KNOCK]);
  assert.equal(knock(r.v, IP2, a, start + 2_000).at(-1), UNLOCKED);
  // After the penalty the IP may knock again (on a fresh step: T was used by IP2).
  const after = start + 600_000;
  assert.equal(r.v.isPenalised(IP1, after), false);
  const step = Math.floor(after / STEP_MS);
  await r.cache.refresh(after);
  assert.equal(knock(r.v, IP1, r.seq("alice", step), after).at(-1), UNLOCKED);
});

Deno.test("failures spread wider than the failure window do not penalise", async () => {
  const r = await rig();
  for (let i = 0; i < 12; i++) failOnce(r, IP1, NOW + i * 150_000);
  assert.equal(r.v.isPenalised(IP1, NOW + 12 * 150_000), false);
  assert.equal(r.v.stats.penalties, 0);
});

Deno.test("failure limits follow the options", async () => {
  const r = await rig({ maxFailures: 1, failureWindowMs: 1_000, penaltyMs: 5_000 });
  failOnce(r, IP1, NOW);
  failOnce(r, IP1, NOW + 2_000);
  assert.equal(r.v.isPenalised(IP1, NOW + 2_200), false);
  failOnce(r, IP1, NOW + 2_500);
  assert.equal(r.v.isPenalised(IP1, NOW + 2_600), true);
  assert.equal(r.v.isPenalised(IP1, NOW + 2_600 + 5_000), false);
});

Deno.test("a replay counts as a failure", async () => {
  const r = await rig({ maxFailures: 0 });
  knock(r.v, IP1, r.seq("alice", T));
  assert.equal(knock(r.v, IP2, r.seq("alice", T)).at(-1), REPLAY);
  assert.equal(r.v.isPenalised(IP2, NOW + 1_000), true);
});

Deno.test("knocks never touch another IP's state", async () => {
  const r = await rig();
  const a = r.seq("alice", T);
  const b = r.seq("bob", T);
  const out: number[] = [];
  for (let i = 0; i < 4; i++) {
    out.push(r.v.observe(IP1, TCP, a[i], NOW + i));
    out.push(r.v.observe(IP2, TCP, 9999, NOW + i)); // IP2's stray traffic
    out.push(r.v.observe(IP2, UDP, b[i], NOW + i));
  }
  assert.deepEqual(out.filter((_, i) => i % 3 === 0), [KNOCK, KNOCK, KNOCK, UNLOCKED]);
  // IP2 started bob's sequence and failed it with its own stray packet.
  assert.deepEqual(out.filter((_, i) => i % 3 !== 0).slice(0, 4), [
    NOT_KNOCK,
    KNOCK,
    FAILED,
    NOT_KNOCK,
  ]);
  assert.deepEqual(r.events.map((e) => [e.type, e.ip]), [
    ["knock-failure", "203.0.113.8"],
    ["knock-success", "203.0.113.7"],
  ]);
});

Deno.test("sweep ends sequences past their window and counts them as failures", async () => {
  const r = await rig({ maxFailures: 0 });
  knock(r.v, IP1, r.seq("alice", T).slice(0, 2));
  r.v.sweep(NOW + 15_000);
  assert.equal(r.v.inProgress, 1);
  r.v.sweep(NOW + 15_101);
  assert.equal(r.v.inProgress, 0);
  assert.equal(r.events[0].type, "knock-failure");
  assert.equal(r.v.isPenalised(IP1, NOW + 15_102), true);
  r.v.sweep(NOW + 15_101 + 600_001);
  assert.equal(r.v.failureTracked, 0);
});

Deno.test("sweep forgets failure records older than the failure window", async () => {
  const r = await rig();
  failOnce(r, IP1, NOW);
  r.v.sweep(NOW + 600_100);
  assert.equal(r.v.failureTracked, 1);
  r.v.sweep(NOW + 600_101);
  assert.equal(r.v.failureTracked, 0);
});

Deno.test("setProfiles validates and keeps sequences of unchanged users", async () => {
  const r = await rig();
  const a = r.seq("alice", T);
  const b = r.seq("bob", T);
  knock(r.v, IP1, a.slice(0, 2));
  knock(r.v, IP2, b.slice(0, 2));
  r.v.setProfiles([
    { user: "bob", firstPort: 52201, length: 2, transport: "any" },
    { user: "alice", firstPort: 41001, length: 3, transport: "any" },
  ]);
  assert.equal(r.v.inProgress, 1);
  assert.deepEqual(r.events, [
    { type: "knock-failure", ip: "203.0.113.8", user: "bob", reason: "profile-changed" },
  ]);
  assert.deepEqual(knock(r.v, IP1, a.slice(2), NOW + 500), [KNOCK, UNLOCKED]);
  assert.equal(r.v.isPenalised(IP2, NOW), false);
  assert.throws(
    () =>
      r.v.setProfiles([
        { user: "a", firstPort: 1000, length: 3, transport: "any" },
        { user: "b", firstPort: 1000, length: 3, transport: "any" },
      ]),
    /first port 1000 is used by "a" and "b"/,
  );
  assert.throws(
    () => r.v.setProfiles([{ user: "a", firstPort: 70000, length: 3, transport: "any" }]),
    /first port 70000 is out of range/,
  );
  assert.throws(
    () => r.v.setProfiles([{ user: "a", firstPort: 1000, length: 9, transport: "any" }]),
    /length 9 is out of range/,
  );
});

Deno.test("a knock on F with no cached sequence is no knock", () => {
  const cache = new SequenceCache();
  const v = new KnockVerifier(cache);
  v.setProfiles([{ user: "ghost", firstPort: 41001, length: 3, transport: "any" }]);
  assert.equal(v.observe(IP1, TCP, 41001, NOW), NOT_KNOCK);
  assert.equal(v.stats.missingSequences, 1);
  assert.equal(v.inProgress, 0);
});

Deno.test("memory stays bounded under 10^6 random knocks", async () => {
  const cache = new SequenceCache();
  const profiles: KnockProfile[] = [];
  // 64 users: about one random port in a thousand is some user's F.
  for (let i = 0; i < 64; i++) {
    profiles.push({ user: `u${i}`, firstPort: 1024 + i * 1000, length: 3, transport: "any" });
    await cache.setUser(profiles[i], SECRET_A, NOW);
  }
  const limits = { maxInProgress: 4096, maxPenalised: 8192 };
  const v = new KnockVerifier(cache, { ...limits, noiseLimit: 0, userAttemptsPerStep: 1e9 });
  v.setProfiles(profiles);
  let x = 0x2545f491;
  const rnd = () => (x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0);
  let peakFailureTracked = 0, peakInProgress = 0;
  for (let i = 0; i < 1_000_000; i++) {
    // 2^16 sources, so IPs come back, fail their sequences and get penalised.
    const ip = (0x0a000000 + (rnd() & 0xffff)) >>> 0;
    // Half the flood aims at F ports, half at random ports (derived-port range included).
    const port = i % 2 === 0 ? profiles[rnd() % 64].firstPort : rnd() & 0xffff;
    v.observe(ip, i % 3 === 0 ? 17 : 6, port, NOW + (i >>> 8));
    if (i % 65_536 === 0) v.sweep(NOW + (i >>> 8));
    assert.ok(v.inProgress <= limits.maxInProgress);
    assert.ok(v.failureTracked <= limits.maxPenalised);
    peakFailureTracked = Math.max(peakFailureTracked, v.failureTracked);
    peakInProgress = Math.max(peakInProgress, v.inProgress);
  }
  assert.equal(peakInProgress, limits.maxInProgress);
  assert.ok(v.stats.penalisedKnocks > 0);
  assert.equal(peakFailureTracked, limits.maxPenalised);
  assert.ok(v.stats.evictedSequences > 0);
  // A full failure table counts the rest in the overflow bucket; it forgets nobody.
  assert.equal(v.stats.evictedFailureRecords, 0);
  assert.ok(v.stats.overflowFailures > 0);
  assert.ok(v.stats.penalties > 0);
  assert.ok(v.drainState().length <= limits.maxPenalised + 1 + 65_536);
  assert.ok(v.replayEntries <= 65_536);
  v.sweep(NOW + 10_000_000);
  assert.equal(v.inProgress, 0);
});

// ---- retune, durable state, throttling ----------------------------------------------------

Deno.test("retune keeps sequences, replay memory, failures and penalties", async () => {
  const r = await rig({ maxFailures: 1 });
  const a = r.seq("alice", T);
  assert.equal(knock(r.v, IP1, a).at(-1), UNLOCKED);
  failOnce(r, IP2, NOW);
  failOnce(r, IP2, NOW + 200);
  assert.equal(r.v.isPenalised(IP2, NOW + 300), true);
  const b = r.seq("bob", T);
  knock(r.v, 0xcb007109, b.slice(0, 2), NOW + 400);
  r.v.retune({ windowMs: 5_000, maxFailures: 3, penaltyMs: 60_000, noiseLimit: 2 }, NOW + 500);
  assert.equal(r.v.tunables.windowMs, 5_000);
  assert.equal(r.v.tunables.noiseLimit, 2);
  assert.equal(r.v.inProgress, 1);
  assert.equal(knock(r.v, 0xcb007109, b.slice(2), NOW + 600).at(-1), UNLOCKED);
  assert.equal(knock(r.v, IP2, a, NOW + 1_000)[0], PENALISED);
  assert.equal(knock(r.v, 0xcb00710a, a, NOW + 1_000).at(-1), REPLAY);
  assert.equal(r.v.replayEntries, 2);
  // New limits apply: 3 failures tolerated, and the new window.
  assert.equal(knock(r.v, IP1, r.seq("alice", T + 1).slice(0, 2), NOW + 2_000).at(-1), KNOCK);
  assert.equal(r.v.observe(IP1, TCP, r.seq("alice", T + 1)[2], NOW + 7_001), FAILED);
  assert.equal(r.v.isPenalised(IP1, NOW + 7_002), false);
  // Shrinking a table drops its oldest entries only.
  knock(r.v, IP1, [41001], NOW + 8_000);
  knock(r.v, IP2, [41001], NOW + 8_001);
  r.v.retune({ maxInProgress: 1, maxReplay: 1 }, NOW + 8_002);
  assert.equal(r.v.inProgress, 1);
  assert.equal(r.v.replayEntries, 1);
  assert.throws(() => r.v.retune({ noiseLimit: -1 }), /noiseLimit -1 is out of range/);
  assert.throws(() => r.v.retune({ maxInProgress: 0.5 }), /maxInProgress 0.5 is out of range/);
});

Deno.test("records drained and restored into a new verifier refuse the replay and keep penalties", async () => {
  const r = await rig({ maxFailures: 1 });
  const a = r.seq("alice", T);
  knock(r.v, IP1, a);
  failOnce(r, IP2, NOW);
  failOnce(r, IP2, NOW + 200);
  const records = r.v.drainState();
  assert.deepEqual(r.v.drainState(), [], "drained once");
  const replay = records.find((x) => x.type === "replay")!;
  assert.deepEqual(replay, {
    type: "replay",
    user: "alice",
    step: T,
    ip: "203.0.113.7",
    expiresAt: (T + 2) * STEP_MS + 15_000,
  });
  const failures = records.filter((x) => x.type === "failures");
  assert.equal(failures.length, 1, "one record per IP per drain");
  assert.equal(failures[0].ip, "203.0.113.8");
  // A restart: a fresh verifier, the same records (a round trip through JSON, as the store does).
  const again = await rig({ maxFailures: 1 });
  const saved = JSON.parse(JSON.stringify(records));
  assert.equal(again.v.restoreState(saved, NOW + 1_000), 2);
  assert.equal(knock(again.v, 0xcb00710a, a, NOW + 1_000).at(-1), REPLAY);
  assert.equal(knock(again.v, IP1, a, NOW + 1_100).at(-1), REPLAY, "no live unlock after restart");
  assert.equal(again.v.isPenalised(IP2, NOW + 1_200), true);
  // Expired records and malformed ones are left out.
  const late = await rig();
  const junk = [{ type: "replay", user: "alice", step: T, ip: "x", expiresAt: NOW * 2 }];
  assert.equal(late.v.restoreState([...saved, ...junk], (T + 3) * STEP_MS), 1);
});

Deno.test("noise: a sequence tolerates noiseLimit strays (passed on); one more fails it", async () => {
  const r = await rig({ noiseLimit: 3 });
  const [f, p1, p2, p3] = r.seq("alice", T);
  assert.deepEqual(knock(r.v, IP1, [f, 443, p1, 80, 9, p2, p3]), [
    KNOCK,
    NOT_KNOCK,
    KNOCK,
    NOT_KNOCK,
    NOT_KNOCK,
    KNOCK,
    UNLOCKED,
  ]);
  assert.equal(r.v.stats.strays, 3);
  const b = r.seq("alice", T + 1);
  assert.deepEqual(knock(r.v, IP2, [b[0], 1, 2, 3, 4, b[1]], NOW + 1_000), [
    KNOCK,
    NOT_KNOCK,
    NOT_KNOCK,
    NOT_KNOCK,
    FAILED,
    NOT_KNOCK,
  ]);
  // Another user's F is a stray too while a sequence is in progress.
  const c = r.seq("bob", T);
  assert.deepEqual(knock(r.v, IP2, [b[0], c[0], b[1], b[2], b[3]], NOW + 2_000).at(-1), UNLOCKED);
});

Deno.test("F before any match restarts the window; later it is a retransmission", async () => {
  const r = await rig();
  const [f, p1, p2, p3] = r.seq("alice", T);
  r.v.observe(IP1, TCP, f, NOW);
  assert.equal(r.v.observe(IP1, TCP, f, NOW + 14_000), KNOCK);
  // 14 s + 14 s after the first F: within the window of the second.
  assert.deepEqual(knock(r.v, IP1, [p1, f, p2, p3], NOW + 28_000), [KNOCK, KNOCK, KNOCK, UNLOCKED]);
  assert.equal(r.v.stats.failures, 0);
});

/** Fails one attempt from `ip` at `t` whatever the noise limit: F, then strays. */
function failHard(v: KnockVerifier, ip: number, t: number): number {
  let verdict = v.observe(ip, TCP, 41001, t);
  for (let i = 0; i <= v.tunables.noiseLimit && verdict !== FAILED; i++) {
    verdict = v.observe(ip, TCP, 1 + i, t);
  }
  return verdict;
}

Deno.test("evasion: failures from 131,072 spoofed sources are throttled by the overflow bucket", async () => {
  // Per-IP layer alone (the user budget off): more sources than the failure table holds.
  const r = await rig({ noiseLimit: 8, userAttemptsPerStep: 1e9 });
  const SPOOF = 0xc6120000; // 198.18.0.0/15
  let admitted = 0;
  for (let i = 0; i < 131_072; i++) {
    const t = NOW + Math.floor(i / 64); // 64 sources per ms, 2 s in all
    if (r.v.observe((SPOOF + i) >>> 0, TCP, 41001, t) === KNOCK) admitted++;
    failHard(r.v, (SPOOF + i) >>> 0, t);
  }
  assert.equal(r.v.failureTracked, 65_536);
  assert.equal(r.v.stats.evictedFailureRecords, 0, "nobody is forgotten");
  // Sources beyond the table share one bucket: penalised after 6 failures, then one attempt
  // per 30 s for all of them together.
  assert.ok(admitted <= 65_536 + 6 + 1, `admitted ${admitted}`);
  assert.ok(r.v.stats.penalisedKnocks >= 65_536 - 7, `${r.v.stats.penalisedKnocks}`);
  assert.equal(r.v.isPenalised((SPOOF + 131_071) >>> 0, NOW + 3_000), true);
  assert.deepEqual(r.events.filter((e) => e.type === "knock-penalty").map((e) => e.ip), ["*"]);
  const records = r.v.drainState();
  assert.ok(records.some((x) => x.type === "failures" && x.ip === "*"));
  // A tracked source is judged on its own record (it failed once: not penalised).
  assert.equal(r.v.isPenalised(SPOOF, NOW + 3_000), false);
});

Deno.test("evasion: the per-user budget bounds attempts across all sources", async () => {
  const r = await rig({ noiseLimit: 8 }); // default budget: 64 per step
  const SPOOF = 0xc6120000;
  let admitted = 0;
  const D = 131_072;
  for (let i = 0; i < D; i++) {
    const t = T * STEP_MS + Math.floor(i / 8); // 16 s of one step
    if (r.v.observe((SPOOF + i) >>> 0, TCP, 41001, t) === KNOCK) admitted++;
  }
  // Budget B, then admission with probability B / requests: about B (1 + ln(D / B)).
  const bound = 64 * (1 + Math.log(D / 64));
  assert.ok(admitted <= bound * 1.5, `admitted ${admitted} of ${D} (bound ${bound})`);
  assert.ok(admitted > 64);
  assert.equal(r.v.stats.throttledAttempts, D - admitted);
  // Bob's budget is his own.
  assert.equal(knock(r.v, IP1, r.seq("bob", T), T * STEP_MS + 20_000).at(-1), UNLOCKED);
});

Deno.test("victim lockout: 12 spoofed failures and 20/s spoofed SYNs on F do not stop alice", async () => {
  // Defaults: noise limit 8, penalty = one attempt per 30 s, user budget 64 per step.
  const r = await rig({ noiseLimit: 8 });
  const victim = IP1;
  const t0 = NOW;
  for (let i = 0; i < 12; i++) failHard(r.v, victim, t0 + i * 100);
  assert.equal(r.v.isPenalised(victim, t0 + 1_200), true);
  // 20/s spoofed SYNs on alice's F from the victim's address, for 60 s; alice knocks at +40 s.
  const seq = (step: number) => r.seq("alice", step);
  let unlockedAt = -1;
  const knockAt = t0 + 40_000;
  const real = seq(Math.floor(knockAt / STEP_MS));
  let next = 0;
  for (let t = t0 + 2_000; t < t0 + 62_000; t += 50) {
    r.v.observe(victim, TCP, 41001, t);
    while (next < real.length && knockAt + 100 * next <= t + 50) {
      const at = knockAt + 100 * next;
      if (r.v.observe(victim, TCP, real[next], at) === UNLOCKED) unlockedAt = at;
      next++;
    }
  }
  assert.ok(unlockedAt > 0, JSON.stringify(r.v.stats));
  assert.equal(r.v.lastUser, "alice");
});

Deno.test("victim lockout: spoofed strays at 20/s during the victim's knock do not break it", async () => {
  const r = await rig({ noiseLimit: 8 });
  const real = r.seq("alice", T);
  let verdict: number = NOT_KNOCK;
  let stray = 0;
  // The knock client's pace (100 ms); strays every 50 ms, on derived-range ports.
  for (let t = NOW; t < NOW + 1_000; t += 50) {
    r.v.observe(IP1, TCP, 16384 + (stray++ * 7919) % 16384, t);
    const i = (t - NOW) / 100;
    if (Number.isInteger(i) && i < real.length) verdict = r.v.observe(IP1, TCP, real[i], t + 1);
  }
  assert.equal(verdict, UNLOCKED);
});

Deno.test("claims: a completion is pending until its claim is granted; its repeat waits, another IP is a replay", async () => {
  const r = await rig({ claims: true });
  const a = r.seq("alice", T);
  assert.deepEqual(knock(r.v, IP1, a), [KNOCK, KNOCK, KNOCK, PENDING]);
  assert.equal(r.v.lastUser, "alice");
  assert.equal(r.v.lastStep, T);
  assert.equal(r.v.lastDrift, 0);
  assert.deepEqual(r.events, [], "no success before the grant");
  assert.equal(r.v.stats.claims, 1);
  // The same sequence again while the claim is out (a browser repeats it): consumed, no replay.
  assert.equal(knock(r.v, IP1, a, NOW + 1_000).at(-1), KNOCK);
  // Another IP completing the step here meanwhile: refused at once, naming the first IP.
  assert.equal(knock(r.v, IP2, a, NOW + 2_000).at(-1), REPLAY);
  assert.equal((r.events as KnockEvent[]).at(-1)?.type, "knock-replay");
  assert.equal(r.v.resolveClaim(IP1, "alice", T, 0, ClaimResult.GRANTED, 0, NOW + 2_500), true);
  assert.deepEqual(r.events.at(-1), {
    type: "knock-success",
    ip: "203.0.113.7",
    user: "alice",
    drift: 0,
    step: T,
  });
  assert.equal(r.v.stats.unlocks, 1);
  // No replay record is drained: the claim is the stored copy.
  assert.deepEqual(r.v.drainState().filter((x) => x.type === "replay"), []);
});

Deno.test("claims: a step taken at another node is a replay naming that node's IP; later knocks are refused here", async () => {
  const r = await rig({ claims: true, maxFailures: 1 });
  const a = r.seq("alice", T);
  assert.equal(knock(r.v, IP2, a).at(-1), PENDING);
  assert.equal(r.v.resolveClaim(IP2, "alice", T, 0, ClaimResult.TAKEN, IP1, NOW + 500), false);
  assert.deepEqual(r.events.at(-1), {
    type: "knock-replay",
    ip: "203.0.113.8",
    user: "alice",
    step: T,
    firstIp: "203.0.113.7",
  });
  assert.equal(r.v.stats.replays, 1);
  // Counted as a failure: one more and IP2 is penalised.
  assert.equal(knock(r.v, IP2, a, NOW + 1_000).at(-1), REPLAY, "refused locally now, no claim");
  assert.equal(r.v.stats.claims, 1);
  assert.equal(r.v.isPenalised(IP2, NOW + 1_500), true);
});

Deno.test("claims: a claim refused (store unreachable, queue full) unlocks nothing and frees the step", async () => {
  const r = await rig({ claims: true });
  const a = r.seq("alice", T);
  assert.equal(knock(r.v, IP1, a).at(-1), PENDING);
  assert.equal(r.v.resolveClaim(IP1, "alice", T, 0, ClaimResult.UNREACHABLE, 0, NOW + 500), false);
  assert.equal(r.v.stats.claimsUnreachable, 1);
  assert.deepEqual(r.events, [], "no event per refused claim (logged once per episode)");
  assert.equal(r.v.isPenalised(IP1, NOW + 600), false);
  // Once the store is back the same step may be claimed again.
  assert.equal(knock(r.v, IP1, a, NOW + 1_000).at(-1), PENDING);
  assert.equal(r.v.resolveClaim(IP1, "alice", T, 0, ClaimResult.DROPPED, 0, NOW + 1_500), false);
  assert.equal(r.v.stats.claimsDropped, 1);
  assert.equal(knock(r.v, IP1, a, NOW + 2_000).at(-1), PENDING);
  assert.equal(r.v.resolveClaim(IP1, "alice", T, 0, ClaimResult.GRANTED, 0, NOW + 2_500), true);
});

Deno.test("claims off (one box): a completion unlocks at once and its replay record is drained", async () => {
  const r = await rig();
  assert.equal(knock(r.v, IP1, r.seq("alice", T)).at(-1), UNLOCKED);
  assert.equal(r.v.stats.claims, 0);
  assert.equal(r.v.drainState().filter((x) => x.type === "replay").length, 1);
});

Deno.test("merge: another node's step, failures and penalty hold here; a penalty never shortens", async () => {
  const r = await rig({ claims: true, maxFailures: 1 });
  const a = r.seq("alice", T);
  const until = NOW + 600_000;
  const merged = r.v.mergeState([
    { type: "replay", user: "alice", step: T, ip: "203.0.113.7", expiresAt: NOW + 60_000 },
    {
      type: "failures",
      ip: "203.0.113.8",
      level: 0,
      lastFailure: NOW,
      penaltyUntil: until,
      expiresAt: until,
    },
  ], NOW);
  assert.equal(merged, 2);
  // A step claimed elsewhere is refused here without a claim.
  assert.equal(knock(r.v, 0xcb00710a, a, NOW + 100).at(-1), REPLAY);
  assert.equal(r.v.stats.claims, 0);
  assert.equal(r.v.isPenalised(IP2, NOW + 200), true);
  // An older record of the same IP (no penalty) does not lift it, and this node writes its own
  // record again so the store keeps the penalty.
  r.v.drainState();
  const older = {
    type: "failures" as const,
    ip: "203.0.113.8",
    level: 1,
    lastFailure: NOW,
    penaltyUntil: 0,
    expiresAt: NOW + 600_000,
  };
  r.v.mergeState([older], NOW + 300);
  assert.equal(r.v.isPenalised(IP2, NOW + 400), true);
  const again = r.v.drainState().filter((x) => x.type === "failures");
  assert.equal(again.length, 1);
  assert.equal((again[0] as { penaltyUntil: number }).penaltyUntil, until);
  // A longer penalty from elsewhere extends it.
  r.v.mergeState(
    [{ ...older, penaltyUntil: until + 60_000, expiresAt: until + 60_000 }],
    NOW + 500,
  );
  assert.equal(r.v.isPenalised(IP2, until + 30_000), true);
  // The higher failure level wins: one more failure here penalises IP1 (limit 1).
  r.v.mergeState([{ ...older, ip: "203.0.113.7", level: 1 }], NOW + 600);
  assert.equal(failOnce(r, IP1, NOW + 700), FAILED);
  assert.equal(r.v.isPenalised(IP1, NOW + 800), true);
});

// Sources in 240.0.0.0/4 stand for interned IPv6 prefixes, as the datapath keys them.
const V6A = 0xf0000011, V6B = 0xf0000012;
const familyOf = (ip: number): 4 | 6 => (ip >>> 28) === 0xf ? 6 : 4;

Deno.test("families unpaired (default): one step unlocks one source of either family", async () => {
  const r = await rig({ familyOf });
  const a = r.seq("alice", T);
  assert.equal(knock(r.v, IP1, a).at(-1), UNLOCKED);
  assert.equal(knock(r.v, V6A, a, NOW + 1_000).at(-1), REPLAY);
  // And the other way round for the next step.
  const b = r.seq("alice", T + 1);
  assert.equal(knock(r.v, V6A, b, NOW + 2_000).at(-1), UNLOCKED);
  assert.equal(knock(r.v, IP1, b, NOW + 3_000).at(-1), REPLAY);
  assert.equal(r.v.stats.replays, 2);
});

Deno.test("pairFamilies: one step unlocks one IPv4 and one IPv6 source; a third is a replay", async () => {
  const r = await rig({ familyOf, pairFamilies: true });
  const a = r.seq("alice", T);
  assert.equal(knock(r.v, V6A, a).at(-1), UNLOCKED);
  assert.equal(knock(r.v, IP1, a, NOW + 1_000).at(-1), UNLOCKED);
  assert.equal(knock(r.v, IP2, a, NOW + 2_000).at(-1), REPLAY);
  assert.deepEqual(r.events.at(-1), {
    type: "knock-replay",
    ip: "203.0.113.8",
    user: "alice",
    step: T,
    firstIp: "203.0.113.7",
  });
  assert.equal(knock(r.v, V6B, a, NOW + 3_000).at(-1), REPLAY);
  assert.equal((r.events.at(-1) as { firstIp: string }).firstIp, "240.0.0.17");
  assert.equal(r.v.stats.unlocks, 2);
  assert.equal(r.v.stats.replays, 2);
  // The state records name the IPv6 half, so the store keeps both.
  const saved = r.v.drainState().filter((s) => s.type === "replay");
  assert.deepEqual(saved.map((s) => [s.ip, (s as { family?: 6 }).family]), [
    ["240.0.0.17", 6],
    ["203.0.113.7", undefined],
  ]);
  // A restart keeps both halves spent.
  const back = await rig({ familyOf, pairFamilies: true });
  assert.equal(back.v.restoreState(saved, NOW + 4_000), 2);
  assert.equal(knock(back.v, IP2, a, NOW + 4_000).at(-1), REPLAY);
  assert.equal(knock(back.v, V6B, a, NOW + 5_000).at(-1), REPLAY);
  // Turned off, the records of a paired step fold onto one key: the first holds it.
  const off = await rig({ familyOf });
  assert.equal(off.v.restoreState(saved, NOW + 4_000), 1);
  off.v.pairFamilies = true;
  assert.equal(knock(off.v, IP2, a, NOW + 4_000).at(-1), REPLAY);
});

Deno.test("pairFamilies with claims: each family's half is claimed and resolved alone", async () => {
  const r = await rig({ familyOf, pairFamilies: true, claims: true });
  const a = r.seq("alice", T);
  assert.equal(knock(r.v, IP1, a).at(-1), PENDING);
  assert.equal(knock(r.v, V6A, a, NOW + 100).at(-1), PENDING);
  assert.equal(r.v.resolveClaim(V6A, "alice", T, 0, ClaimResult.GRANTED, 0, NOW + 600), true);
  assert.equal(r.v.resolveClaim(IP1, "alice", T, 0, ClaimResult.GRANTED, 0, NOW + 700), true);
  assert.equal(knock(r.v, V6B, a, NOW + 1_000).at(-1), REPLAY);
  // Another node took the IPv6 half of the next step: a local IPv6 knock is a replay,
  // the IPv4 half stays free.
  const b = r.seq("alice", T + 1);
  assert.equal(knock(r.v, V6B, b, NOW + 2_000).at(-1), PENDING);
  assert.equal(
    r.v.resolveClaim(V6B, "alice", T + 1, 1, ClaimResult.TAKEN, V6A, NOW + 2_500),
    false,
  );
  assert.equal(knock(r.v, V6B, b, NOW + 3_000).at(-1), REPLAY);
  assert.equal(knock(r.v, IP2, b, NOW + 4_000).at(-1), PENDING);
  // Claims write no state records: the claim is the stored copy.
  assert.deepEqual(r.v.drainState().filter((s) => s.type === "replay"), []);
});
