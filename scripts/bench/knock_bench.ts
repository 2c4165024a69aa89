/**
 * Knock engine figures: memory of a million unlocked IPs, unlock-table
 * lookups per second, and `KnockVerifier.observe` throughput under knock
 * floods from 10k source IPs. `deno run -A scripts/bench/knock_bench.ts`
 * prints the JSON of `runKnockBench()`.
 */

import type { KnockProfile } from "../../src/knock/profile.ts";
import { SequenceCache } from "../../src/knock/sequence_cache.ts";
import { UnlockTable } from "../../src/knock/unlock_table.ts";
import { KnockVerdict, KnockVerifier } from "../../src/knock/verifier.ts";

/** What `runKnockBench` measured. */
export interface KnockBenchResult {
  unlockTable: {
    entries: number;
    /** Bytes of the table's typed arrays, and per entry. */
    typedArrayBytes: number;
    bytesPerEntry: number;
    /** Growth of the process's RSS and of V8 heap + external memory while filling it. */
    rssDeltaBytes: number;
    heapPlusExternalDeltaBytes: number;
    fillMs: number;
    /** `isUnlocked` calls per second on the full table (hits and misses). */
    lookupsPerSec: number;
  };
  verifier: {
    sourceIps: number;
    /** Packets per second that are no knock (no F, nothing in progress): the common path. */
    notKnockPerSec: number;
    /** Packets per second of a flood of F knocks and stray ports (start, fail, penalise). */
    floodPerSec: number;
    /** Knocks per second when every source IP completes a valid sequence. */
    validKnocksPerSec: number;
    unlocksPerSec: number;
    inProgressAfterFlood: number;
    failureTrackedAfterFlood: number;
  };
}

const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const NOW = 1_764_028_805_000;
const SOURCES = 10_000;

function memory(): { rss: number; heapExt: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = Deno.memoryUsage();
  return { rss: m.rss, heapExt: m.heapUsed + m.external };
}

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0);
}

function benchUnlockTable(): KnockBenchResult["unlockTable"] {
  const entries = 1_000_000;
  const before = memory();
  const t0 = performance.now();
  const table = new UnlockTable({ maxEntries: entries });
  for (let i = 0; i < entries; i++) {
    table.unlock((0x0a000000 + i * 7) >>> 0, `user${i % 1000}`, 0, NOW);
  }
  const fillMs = performance.now() - t0;
  const after = memory();
  const rnd = rng(7);
  const lookups = 5_000_000;
  let hits = 0;
  const t1 = performance.now();
  for (let i = 0; i < lookups; i++) {
    if (table.isUnlocked((0x0a000000 + (rnd() % (entries * 14))) >>> 0, NOW)) hits++;
  }
  const lookupMs = performance.now() - t1;
  if (hits === 0) throw new Error("Cannot bench unlock table: no lookup hit");
  return {
    entries: table.size,
    typedArrayBytes: table.byteLength,
    bytesPerEntry: Math.round(table.byteLength / entries),
    rssDeltaBytes: after.rss - before.rss,
    heapPlusExternalDeltaBytes: after.heapExt - before.heapExt,
    fillMs: Math.round(fillMs),
    lookupsPerSec: Math.round(lookups / (lookupMs / 1000)),
  };
}

async function verifierRig(
  users: number,
): Promise<{ v: KnockVerifier; cache: SequenceCache; profiles: KnockProfile[] }> {
  const cache = new SequenceCache();
  const profiles: KnockProfile[] = [];
  for (let i = 0; i < users; i++) {
    profiles.push({ user: `u${i}`, firstPort: 40000 + i, length: 3, transport: "any" });
  }
  await Promise.all(profiles.map((p) => cache.setUser(p, SECRET, NOW)));
  // Each source's unlock is live (no unlock table here): repeating its own step refreshes it,
  // as the appliance allows (docs/knock-protocol.md rule 7); any other reuse is a replay.
  const v = new KnockVerifier(cache, { unlockLive: () => true });
  v.setProfiles(profiles);
  return { v, cache, profiles };
}

function perSec(n: number, ms: number): number {
  return Math.round(n / (ms / 1000));
}

async function benchVerifier(): Promise<KnockBenchResult["verifier"]> {
  const { v } = await verifierRig(100);
  const ips = Uint32Array.from({ length: SOURCES }, (_, i) => (0xcb000000 + i * 13) >>> 0);
  const rnd = rng(42);
  // Common path: ports that are nobody's F (1..39999) with nothing in progress.
  const n1 = 5_000_000;
  let t = performance.now();
  for (let i = 0; i < n1; i++) v.observe(ips[i % SOURCES], 6, 1 + (rnd() % 39_999), NOW);
  const notKnockPerSec = perSec(n1, performance.now() - t);

  // Flood: every source alternates a random user's F with a random port.
  const n2 = 2_000_000;
  t = performance.now();
  for (let i = 0; i < n2; i++) {
    const port = (i & 1) === 0 ? 40000 + (rnd() % 100) : rnd() & 0xffff;
    v.observe(ips[(i >>> 1) % SOURCES], 17, port, NOW + (i >>> 10));
  }
  const floodPerSec = perSec(n2, performance.now() - t);
  const inProgressAfterFlood = v.inProgress;
  const failureTrackedAfterFlood = v.failureTracked;

  // Valid sequences: source i knocks user i's sequence (10k users, no replay).
  const valid = await verifierRig(SOURCES);
  const step = Math.floor(NOW / 30_000);
  const seqs = valid.profiles.map((p) => valid.cache.sequence(p.user, step)!);
  let unlocks = 0;
  const rounds = 20; // the same IP knocking its step again refreshes its unlock
  t = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < 4; k++) {
      for (let i = 0; i < SOURCES; i++) {
        if (valid.v.observe(ips[i], 6, seqs[i][k], NOW + k) === KnockVerdict.UNLOCKED) unlocks++;
      }
    }
  }
  const ms = performance.now() - t;
  if (unlocks !== rounds * SOURCES) {
    throw new Error(`Cannot bench verifier: ${unlocks} of ${rounds * SOURCES} unlocked`);
  }
  return {
    sourceIps: SOURCES,
    notKnockPerSec,
    floodPerSec,
    validKnocksPerSec: perSec(4 * unlocks, ms),
    unlocksPerSec: perSec(unlocks, ms),
    inProgressAfterFlood,
    failureTrackedAfterFlood,
  };
}

/** Runs every knock measurement; returns plain JSON-able figures. */
export async function runKnockBench(): Promise<KnockBenchResult> {
  const verifier = await benchVerifier();
  return { unlockTable: benchUnlockTable(), verifier };
}

if (import.meta.main) console.log(JSON.stringify(await runKnockBench(), null, 2));
