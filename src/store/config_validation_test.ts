/**
 * The store's transactions validate the whole candidate set (rules, users'
 * first knock ports, management port, addressing) on a real KV file.
 */
import assert from "node:assert/strict";
import type { NetworkLayout } from "../nat/rule_validate.ts";
import { withStore } from "./_test_util.ts";
import { ConfigProblemError } from "./errors.ts";
import type { RuleInput } from "./rules.ts";
import type { Store } from "./mod.ts";

const network: NetworkLayout = {
  wanAddress: "198.51.100.1",
  lanAddress: "192.0.2.1",
  lanNetwork: "192.0.2.0/24",
  managementPort: 8443,
  managementWanAccess: "knock",
};

function web(over: Partial<RuleInput["rule"]> = {}, start = 52201): RuleInput {
  return {
    kind: "forward",
    rule: {
      name: "web",
      enabled: true,
      protocol: "tcp",
      publicPorts: { start, end: start },
      privateAddress: "192.0.2.12",
      privatePorts: { start: 8080, end: 8080 },
      enforceKnock: true,
      users: [],
      ...over,
    } as RuleInput["rule"] & { publicPorts: { start: number; end: number } },
  } as RuleInput;
}

async function knocker(store: Store, name: string, firstPort: number, transport = "any") {
  return await store.users.createUser({
    name,
    password: "password1",
    role: "viewer",
    knock: { enabled: true, firstPort, transport: transport as "any" },
  }, "root");
}

/** Asserts `p` is refused with the given (status kind, field, clash) of its first problem. */
async function refused(
  p: Promise<unknown>,
  conflict: boolean,
  field: string,
  clash: RegExp,
): Promise<ConfigProblemError> {
  const e = await p.then(() => null, (e) => e);
  assert.ok(e instanceof ConfigProblemError, String(e));
  assert.equal(e.conflict, conflict, e.message);
  assert.equal(e.field, field, e.message);
  assert.match(e.problems[0].clash ?? "", clash, JSON.stringify(e.problems));
  return e;
}

function withNetworkStore(fn: (store: Store) => Promise<void>): Promise<void> {
  return withStore((store) => fn(store), { network });
}

Deno.test("store: a user's first knock port on a forward or the management port is refused", async () => {
  await withNetworkStore(async (store) => {
    await store.rules.createRule(web(), "root");
    await refused(knocker(store, "bob", 52201), true, "knock.firstPort", /rule "web" publicPorts/);
    await refused(knocker(store, "bob", 52201, "tcp"), true, "knock.firstPort", /rule "web"/);
    await refused(knocker(store, "bob", 8443), false, "knock.firstPort", /management port 8443/);
    // Moving an existing user onto the forward is refused the same way.
    await knocker(store, "bob", 41002);
    await refused(
      store.users.updateUser("bob", { knock: { firstPort: 52201 } }, "root"),
      true,
      "knock.firstPort",
      /rule "web"/,
    );
    // A disabled knock claims nothing; enabling it re-checks.
    await store.users.createUser({
      name: "carol",
      password: "password1",
      role: "viewer",
      knock: { enabled: false, firstPort: 52201 },
    }, "root");
    await refused(
      store.users.updateUser("carol", { knock: { enabled: true } }, "root"),
      true,
      "knock.firstPort",
      /rule "web"/,
    );
    assert.equal((await store.users.getUser("bob")).knock.firstPort, 41002);
    // A UDP-only knock user on a TCP forward's port does not clash (see validateConfig).
    await knocker(store, "udp-only", 52201, "udp");
  });
});

Deno.test("store: a forward on a first knock port, the management port or a bad address is refused", async () => {
  await withNetworkStore(async (store) => {
    await knocker(store, "alice", 41001);
    await refused(
      store.rules.createRule(web({}, 41001), "root"),
      true,
      "publicPorts",
      /user "alice" knock.firstPort 41001/,
    );
    const range = web({ publicPorts: { start: 41000, end: 41010 } } as Partial<RuleInput["rule"]>);
    await refused(store.rules.createRule(range, "root"), true, "publicPorts", /alice/);
    await refused(store.rules.createRule(web({}, 8443), "root"), false, "publicPorts", /8443/);
    for (
      const [addr, clash] of [
        ["198.51.100.1", /WAN address/],
        ["192.0.2.1", /LAN address/],
        ["192.0.2.0", /LAN network/],
        ["192.0.2.255", /LAN network/],
        ["203.0.113.5", /LAN network/],
      ] as const
    ) {
      await refused(
        store.rules.createRule(web({ privateAddress: addr }), "root"),
        false,
        "privateAddress",
        clash,
      );
    }
    await refused(
      store.rules.createRule(web({ users: ["alice", "ghost"] }), "root"),
      false,
      "users[1]",
      /user "ghost"/,
    );
    assert.deepEqual(await store.rules.listRules(), []);
    // Deleting a user a rule names is allowed (the rule then admits nobody by that name);
    // the rule can still be saved with the name it had, but not given a new unknown one.
    await store.rules.createRule(web({ users: ["alice"] }), "root");
    await store.users.deleteUser("alice", "root");
    await store.rules.updateRule("web", web({ users: ["alice"], enforceKnock: false }), "root");
    await refused(
      store.rules.updateRule("web", web({ users: ["alice", "ghost"] }), "root"),
      false,
      "users[1]",
      /user "ghost"/,
    );
    await store.rules.deleteRule("web", "root");
    await knocker(store, "alice", 41001);
    // Every problem of one write at once.
    const many = await refused(
      store.rules.createRule(
        web({
          name: "many",
          privateAddress: "198.51.100.1",
          privatePorts: { start: 1, end: 2 },
          users: ["ghost"],
        } as Partial<RuleInput["rule"]>, 41001),
        "root",
      ),
      true,
      "privatePorts",
      /^$/,
    );
    assert.deepEqual(many.problems.map((p) => p.field), [
      "privatePorts",
      "privateAddress",
      "users[0]",
      "publicPorts",
    ]);
  });
});

Deno.test("store: a problem already stored does not block unrelated writes", async () => {
  await withNetworkStore(async (store) => {
    await knocker(store, "alice", 41001);
    // As a store written before this validation: a forward on alice's first port.
    await store.kv.set(["rules", "byName", "old"], {
      ...web({ name: "old" }, 41001),
      createdAt: 0,
      updatedAt: 0,
      version: 1,
    });
    await store.users.updateUser("alice", { role: "operator" }, "root");
    await store.rules.createRule(web(), "root");
    // A new clash is still refused.
    await refused(knocker(store, "bob", 52201), true, "knock.firstPort", /rule "web"/);
  });
});

Deno.test("store: a rule and a user racing onto one port: exactly one wins", async () => {
  await withNetworkStore(async (store) => {
    for (let round = 0; round < 6; round++) {
      const port = 45000 + round;
      // The user exists with knocking off, so enabling it is one store write (no scrypt) and
      // both writes read the candidate set before either commits.
      await store.users.createUser({
        name: `u${round}`,
        password: "password1",
        role: "viewer",
        knock: { enabled: false, firstPort: port },
      }, "root");
      const results = await Promise.allSettled([
        store.rules.createRule(web({ name: `r${round}` }, port), "root"),
        store.users.updateUser(`u${round}`, { knock: { enabled: true } }, "root"),
      ]);
      const won = results.filter((r) => r.status === "fulfilled");
      assert.equal(won.length, 1, `round ${round}: ${JSON.stringify(results)}`);
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      assert.ok(lost.reason instanceof ConfigProblemError && lost.reason.conflict);
      assert.match(lost.reason.problems[0].clash!, new RegExp(String(port)));
    }
    // Two users racing onto one port, and two rules racing onto one range.
    const users = await Promise.allSettled([
      knocker(store, "p", 46000),
      knocker(store, "q", 46000),
    ]);
    assert.equal(users.filter((r) => r.status === "fulfilled").length, 1);
    const rules = await Promise.allSettled([
      store.rules.createRule(web({ name: "a" }, 47000), "root"),
      store.rules.createRule(web({ name: "b" }, 47000), "root"),
    ]);
    assert.equal(rules.filter((r) => r.status === "fulfilled").length, 1);
  });
});
