import assert from "node:assert/strict";
import type { KnockStateRecord } from "./knock_state.ts";
import { T0, withStore } from "./_test_util.ts";
import { ValidationError } from "./errors.ts";

Deno.test("knock state: IPv6 sources (their unlock prefix, or one address) are saved and listed", async () => {
  await withStore(async ({ knockState }) => {
    const records: KnockStateRecord[] = [
      { type: "replay", user: "alice", step: 100, ip: "2001:db8:1:2::/64", expiresAt: T0 + 90_000 },
      {
        type: "failures",
        ip: "2001:db8:7::/64",
        level: 2,
        lastFailure: T0,
        penaltyUntil: T0 + 600_000,
        expiresAt: T0 + 600_000,
      },
      { type: "replay", user: "bob", step: 100, ip: "2001:db8:1:2::9", expiresAt: T0 + 90_000 },
    ];
    await knockState.save(records);
    assert.deepEqual(
      (await knockState.list()).map((r) => r.ip).sort(),
      ["2001:db8:1:2::/64", "2001:db8:1:2::9", "2001:db8:7::/64"],
    );
    for (const ip of ["2001:DB8:1:2::/64", "2001:db8:1:2::1/64", "2001:db8::/200"]) {
      await assert.rejects(
        knockState.save([{ type: "replay", user: "a", step: 1, ip, expiresAt: T0 + 1000 }]),
        ValidationError,
        ip,
      );
    }
  });
});

Deno.test("knock state: paired by family, a step holds one IP of each family; restarts keep both", async () => {
  await withStore(async ({ knockState }) => {
    const half = (ip: string, family?: 6) => ({
      type: "replay" as const,
      user: "alice",
      step: 200,
      ip,
      ...(family ? { family } : {}),
      expiresAt: T0 + 90_000,
    });
    assert.deepEqual(await knockState.claim(half("203.0.113.7")), { granted: true });
    assert.deepEqual(await knockState.claim(half("2001:db8:1:2::/64", 6)), { granted: true });
    // A third knock of the step, of either family, finds its half taken.
    assert.deepEqual(await knockState.claim(half("198.51.100.9")), {
      granted: false,
      firstIp: "203.0.113.7",
    });
    assert.deepEqual(await knockState.claim(half("2001:db8:9:9::/64", 6)), {
      granted: false,
      firstIp: "2001:db8:1:2::/64",
    });
    // Unpaired, an IPv6 claim meets the step's one key: the IPv4 source holds it.
    assert.deepEqual(await knockState.claim(half("2001:db8:9:9::/64")), {
      granted: false,
      firstIp: "203.0.113.7",
    });
    // What a restart reads back: both halves, the IPv6 one marked.
    const listed = (await knockState.list()).filter((r) => r.type === "replay");
    assert.deepEqual(
      listed.map((r) => [r.ip, (r as { family?: 6 }).family]).sort(),
      [["2001:db8:1:2::/64", 6], ["203.0.113.7", undefined]],
    );
    // The IPv6 half is an IPv6 source.
    await assert.rejects(knockState.save([half("203.0.113.8", 6)]), ValidationError, "family");
  });
});
