import assert from "node:assert/strict";
import type { OpenPortsRule, PortForwardRule } from "../nat/rule.ts";
import { withStore } from "./_test_util.ts";
import { ConfigProblemError, NotFoundError } from "./errors.ts";
import type { RuleInput } from "./rules.ts";

function forward(
  name: string,
  start: number,
  end = start,
  extra: Partial<PortForwardRule> = {},
): RuleInput {
  return {
    kind: "forward",
    rule: {
      name,
      enabled: true,
      protocol: "tcp",
      publicPorts: { start, end },
      privateAddress: "192.0.2.10",
      privatePorts: { start, end },
      enforceKnock: true,
      users: [],
      ...extra,
    },
  };
}

function open(name: string, ports: OpenPortsRule["ports"]): RuleInput {
  return {
    kind: "open",
    rule: {
      name,
      enabled: true,
      privateAddress: "192.0.2.20",
      ports,
      enforceKnock: false,
      users: [],
    },
  };
}

Deno.test("rules: create, get, list, update, rename, delete", async () => {
  await withStore(async ({ rules }) => {
    const web = await rules.createRule(forward("web", 443), "root");
    assert.equal(web.version, 1);
    await rules.createRule(
      open("mail", [{ protocol: "both", ports: { start: 25, end: 25 } }]),
      "root",
    );
    assert.deepEqual((await rules.listRules()).map((r) => r.rule.name), ["mail", "web"]);
    assert.deepEqual((await rules.getRule("web")).rule, web.rule);

    const moved = await rules.updateRule("web", forward("web", 8443), "root", 1);
    assert.equal(moved.version, 2);
    assert.equal(moved.kind === "forward" && moved.rule.publicPorts.start, 8443);
    await assert.rejects(
      rules.updateRule("web", forward("web", 8444), "root", 1),
      /version 2, not 1/,
    );

    const renamed = await rules.updateRule("web", forward("https", 8443), "root");
    assert.equal(renamed.createdAt, web.createdAt);
    await assert.rejects(rules.getRule("web"), NotFoundError);
    assert.equal((await rules.getRule("https")).version, 3);
    await assert.rejects(
      rules.updateRule("https", forward("mail", 8443), "root"),
      /rule "mail" already exists/,
    );

    await rules.deleteRule("https", "root");
    await assert.rejects(rules.deleteRule("https", "root"), NotFoundError);
    assert.equal(await rules.rulesVersion(), 5);
  });
});

Deno.test("rules: overlapping enabled public ports are refused", async () => {
  await withStore(async ({ rules }) => {
    await rules.createRule(forward("range", 8000, 8100), "root");
    await assert.rejects(
      rules.createRule(forward("inside", 8050), "root"),
      (e) =>
        e instanceof ConfigProblemError && e.conflict && e.field === "publicPorts" &&
        e.message ===
          'Cannot save rule "inside": rule "inside" overlaps rule "range" on tcp port 8050' &&
        e.problems[0].clash === 'rule "range" publicPorts 8000-8100',
    );
    await assert.rejects(
      rules.createRule(
        open("o", [{ protocol: "both", ports: { start: 7000, end: 8000 } }]),
        "root",
      ),
      (e) => e instanceof ConfigProblemError && e.field === "ports[0].ports",
    );
    // Same port, other protocol: fine.
    await rules.createRule(forward("dns", 8053, 8053, { protocol: "udp" }), "root");
    // Disabled rules claim nothing, but enabling one re-checks.
    await rules.createRule(forward("off", 8050, 8050, { enabled: false }), "root");
    await assert.rejects(
      rules.updateRule("off", forward("off", 8050), "root"),
      ConfigProblemError,
    );
    // An open-ports rule must not overlap itself.
    await assert.rejects(
      rules.createRule(
        open("self", [
          { protocol: "tcp", ports: { start: 100, end: 200 } },
          { protocol: "both", ports: { start: 150, end: 150 } },
        ]),
        "root",
      ),
      /overlaps itself/,
    );
    // Updating a rule may keep its own ports.
    await rules.updateRule("range", forward("range", 8000, 8049), "root");
    assert.equal((await rules.listRules()).length, 3);
  });
});

Deno.test("rules: concurrent creates of overlapping rules: exactly one wins", async () => {
  await withStore(async ({ rules }) => {
    for (let round = 0; round < 5; round++) {
      const port = 9000 + round * 10;
      const results = await Promise.allSettled(
        ["a", "b", "c"].map((n, i) =>
          rules.createRule(forward(`${n}${round}`, port + i, port + 5), "root")
        ),
      );
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 1, `round ${round}`);
      for (const r of results) {
        if (r.status === "rejected") {
          assert.ok(r.reason instanceof ConfigProblemError && r.reason.conflict, String(r.reason));
        }
      }
    }
    assert.equal((await rules.listRules()).length, 5);
  });
});

Deno.test("rules: malformed rules are refused with the field named", async () => {
  await withStore(async ({ rules }) => {
    const cases: [RuleInput, string][] = [
      [forward("bad name!", 80), "name"],
      [forward("p", 70000), "publicPorts"],
      [forward("p", 90, 80), "publicPorts"],
      [forward("p", 80, 90, { privatePorts: { start: 1, end: 3 } }), "privatePorts"],
      [forward("p", 80, 80, { privateAddress: "192.0.2.300" }), "privateAddress"],
      [forward("p", 80, 80, { protocol: "sctp" as "tcp" }), "protocol"],
      [open("o", []), "ports"],
      [open("o", [{ protocol: "tcp", ports: { start: 0, end: 1 } }]), "ports[0].ports"],
    ];
    for (const [input, field] of cases) {
      await assert.rejects(
        rules.createRule(input, "root"),
        (e) => e instanceof ConfigProblemError && !e.conflict && e.field === field,
        field,
      );
    }
    // A single private port for a public range is allowed.
    await rules.createRule(
      forward("p", 80, 90, { privatePorts: { start: 8080, end: 8080 } }),
      "root",
    );
    // Every problem at once.
    const e = await rules.createRule(forward("q", 70000), "root").catch((e) => e);
    assert.ok(e instanceof ConfigProblemError);
    assert.deepEqual(e.problems, [
      { field: "publicPorts", message: 'Cannot save rule "q": public port 70000 is out of range' },
      {
        field: "privatePorts",
        message: 'Cannot save rule "q": private port 70000 is out of range',
      },
    ]);
  });
});

Deno.test("rules: uplink and wanAddress are kept; records and bodies without them read as all", async () => {
  await withStore(async ({ rules, kv }) => {
    const bound = forward("web", 443, 443, { uplink: "isp-a", wanAddress: "198.51.100.2" });
    await rules.createRule(bound, "root");
    const plain = await rules.createRule(forward("ssh", 22), "root");
    assert.deepEqual([plain.rule.uplink, plain.rule.wanAddress], ["all", "all"]);
    // A record written before rules had the fields.
    const old = open("mail", [{ protocol: "tcp", ports: { start: 25, end: 25 } }]);
    await kv.set(["rules", "byName", "mail"], { ...old, createdAt: 1, updatedAt: 1, version: 1 });
    const got = await rules.getRule("web");
    assert.deepEqual([got.rule.uplink, got.rule.wanAddress], ["isp-a", "198.51.100.2"]);
    assert.deepEqual(
      (await rules.listRules()).map((r) => [r.rule.name, r.rule.uplink, r.rule.wanAddress]),
      [["mail", "all", "all"], ["ssh", "all", "all"], ["web", "isp-a", "198.51.100.2"]],
    );
    assert.deepEqual((await rules.getRule("mail")).rule.wanAddress, "all");
  });
});

Deno.test("rules: IPv6 rules round-trip under an IPv6 layout; refused at privateAddress without one", async () => {
  const network = {
    wanAddress: "198.51.100.1",
    uplinks: [{
      name: "wan",
      addresses: ["198.51.100.1"],
      addresses6: ["2001:db8:198::1"],
      management: true,
    }],
    lanAddress: "192.0.2.1",
    lanNetwork: "192.0.2.0/24",
    managementPort: 8443,
    managementWanAccess: "knock" as const,
  };
  const nat66 = forward("web6", 443, 443, {
    privateAddress: "2001:db8:192::12",
    uplink: "wan",
    wanAddress: "2001:db8:198::1",
  });
  const pinhole: RuleInput = {
    kind: "open",
    rule: {
      name: "ssh6",
      enabled: true,
      privateAddress: "2001:db8:192::10",
      ports: [{ protocol: "tcp", ports: { start: 22, end: 22 } }],
      enforceKnock: true,
      users: [],
    },
  };
  const ipv6 = { lanAddress: "2001:db8:192::1", lanNetwork: "2001:db8:192::/64" };
  await withStore(async ({ rules }) => {
    await rules.createRule(nat66, "root");
    await rules.createRule(pinhole, "root");
    const listed = await rules.listRules();
    assert.deepEqual(listed.map((r) => [r.rule.name, r.rule.privateAddress, r.rule.wanAddress]), [
      ["ssh6", "2001:db8:192::10", "all"],
      ["web6", "2001:db8:192::12", "2001:db8:198::1"],
    ]);
  }, { network: { ...network, ipv6 } });
  await withStore(async ({ rules }) => {
    const e = await rules.createRule(pinhole, "root").then(() => null, (e) => e);
    assert.ok(e instanceof ConfigProblemError);
    assert.equal(e.field, "privateAddress");
    assert.match(e.message, /is IPv6, but IPv6 is off: a pinhole needs ipv6\.enabled/);
  }, { network });
});
