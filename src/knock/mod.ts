/**
 * The knock engine: TOTP (RFC 6238), `portknock/v1` sequences, the
 * precomputed `SequenceCache`, the per-packet `KnockVerifier` (penalties and
 * replay cache included) and the `UnlockTable` the datapath gates on.
 *
 * ```ts
 * const cache = new SequenceCache();
 * await cache.setUser(profile, secretB32, clock.now());
 * const verifier = new KnockVerifier(cache, { onEvent: log });
 * verifier.setProfiles([profile]);
 * if (verifier.observe(srcIp, 6, dstPort, now) === KnockVerdict.UNLOCKED) {
 *   unlocks.unlock(srcIp, verifier.lastUser, verifier.lastDrift, now);
 * }
 * ```
 */

export * from "./base32.ts";
export * from "./events.ts";
export * from "./ip_slot_map.ts";
export * from "./profile.ts";
export * from "./sequence.ts";
export * from "./sequence_cache.ts";
export * from "./timing_safe_equal.ts";
export * from "./totp.ts";
export * from "./unlock_table.ts";
export * from "./verifier.ts";
