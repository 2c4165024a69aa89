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
