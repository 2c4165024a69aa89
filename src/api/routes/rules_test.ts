import assert from "node:assert/strict";
import { withApi } from "../_test_util.ts";

type ErrorJson = { error: { status: number; code: string; message: string; field?: string } };

const ssh = {
  name: "ssh",
  protocol: "tcp",
  publicPorts: { start: 52222, end: 52222 },
  privateAddress: "192.0.2.20",
  privatePorts: { start: 22, end: 22 },
};
const games = {
  name: "games",
  privateAddress: "192.0.2.30",
  ports: [{ protocol: "udp", ports: { start: 53000, end: 53010 } }],
};

Deno.test("rules: seeded forwards are listed and pushed to the data plane", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    const all = await viewer.json("GET", "/api/v1/rules");
    assert.equal(all.status, 200);
    const names = (all.body.forwards as { name: string }[]).map((r) => r.name).sort();
    assert.deepEqual(names, ["iperf", "range", "udp-echo", "web"]);
    assert.deepEqual(all.body.openPorts, []);
    assert.deepEqual(h.datapath.rules!.forwards.map((r) => r.name).sort(), names);
  });
});

Deno.test("rules: forward create, get, replace, delete; data plane follows", async () => {
  await withApi(async (h) => {
    const op = await h.userClient("otto", "operator");
    const created = await op.json("POST", "/api/v1/rules/forwards", { body: ssh });
    assert.equal(created.status, 201);
    assert.deepEqual(created.body, {
      ...ssh,
      enabled: true,
      enforceKnock: true,
      users: [],
      createdAt: h.clock.now(),
      updatedAt: h.clock.now(),
      version: 1,
    });
    assert.ok(h.datapath.rules!.forwards.some((r) => r.name === "ssh"));
    assert.equal((await op.json("GET", "/api/v1/rules/forwards/ssh")).body.version, 1);

    const replaced = await op.json("PUT", "/api/v1/rules/forwards/ssh", {
      body: { ...ssh, name: "ssh2", publicPorts: { start: 52223, end: 52223 } },
      headers: { "if-match": '"1"' },
    });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.body.name, "ssh2");
    assert.equal(replaced.body.version, 2);
    assert.equal((await op.json("GET", "/api/v1/rules/forwards/ssh")).status, 404);
    const fwd = h.datapath.rules!.forwards.find((r) => r.name === "ssh2")!;
    assert.deepEqual(fwd.publicPorts, { start: 52223, end: 52223 });

    assert.equal((await op.request("DELETE", "/api/v1/rules/forwards/ssh2")).status, 204);
    assert.equal(h.datapath.rules!.forwards.some((r) => r.name === "ssh2"), false);
    assert.equal((await op.json("DELETE", "/api/v1/rules/forwards/ssh2")).status, 404);
    assert.deepEqual(h.changes, ["rules", "rules", "rules"]);
  });
});

Deno.test("rules: privatePorts defaults to publicPorts", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const r = await admin.json("POST", "/api/v1/rules/forwards", {
      body: {
        name: "same",
        publicPorts: { start: 52400, end: 52401 },
        privateAddress: "192.0.2.9",
      },
    });
    assert.equal(r.status, 201);
    assert.deepEqual(r.body.privatePorts, { start: 52400, end: 52401 });
  });
});

Deno.test("rules: open-ports create, list, replace, delete", async () => {
  await withApi(async (h) => {
    const op = await h.userClient("otto", "operator");
    const created = await op.json("POST", "/api/v1/rules/open-ports", { body: games });
    assert.equal(created.status, 201);
    assert.equal(created.body.enforceKnock, true);
    const list = await op.json("GET", "/api/v1/rules/open-ports");
    assert.deepEqual((list.body.rules as { name: string }[]).map((r) => r.name), ["games"]);
    assert.deepEqual(h.datapath.rules!.openPorts.map((r) => r.name), ["games"]);
    // The other kind's path does not see it.
    assert.equal((await op.json("GET", "/api/v1/rules/forwards/games")).status, 404);
    assert.equal((await op.json("DELETE", "/api/v1/rules/forwards/games")).status, 404);
    const put = await op.json("PUT", "/api/v1/rules/open-ports/games", {
      body: { ...games, enabled: false },
    });
    assert.equal(put.status, 200);
    assert.equal(put.body.enabled, false);
    assert.equal((await op.request("DELETE", "/api/v1/rules/open-ports/games")).status, 204);
    assert.deepEqual(h.datapath.rules!.openPorts, []);
  });
});

Deno.test("rules: overlaps and name clashes are 409 naming the other rule", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const overlap = await admin.json("POST", "/api/v1/rules/forwards", {
      body: { ...ssh, publicPorts: { start: 52201, end: 52201 } },
    });
    assert.equal(overlap.status, 409);
    assert.equal((overlap.body as ErrorJson).error.field, "publicPorts");
    assert.match((overlap.body as ErrorJson).error.message, /rule "web"/);
    const openOverlap = await admin.json("POST", "/api/v1/rules/open-ports", {
      body: { ...games, ports: [{ protocol: "both", ports: { start: 52215, end: 52216 } }] },
    });
    assert.equal(openOverlap.status, 409);
    assert.match((openOverlap.body as ErrorJson).error.message, /rule "range"/);
    const clash = await admin.json("POST", "/api/v1/rules/open-ports", {
      body: { ...games, name: "web" },
    });
    assert.equal(clash.status, 409);
    assert.equal((clash.body as ErrorJson).error.field, "name");
    // A disabled rule claims nothing.
    const disabled = await admin.json("POST", "/api/v1/rules/forwards", {
      body: { ...ssh, enabled: false, publicPorts: { start: 52201, end: 52201 } },
    });
    assert.equal(disabled.status, 201);
    const stale = await admin.json("PUT", "/api/v1/rules/forwards/ssh", {
      body: ssh,
      headers: { "if-match": "7" },
    });
    assert.equal(stale.status, 409);
    assert.equal((stale.body as ErrorJson).error.field, "version");
  });
});

Deno.test("rules: bad input is 400 naming the field and reason", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    const cases: [string, unknown, string, RegExp][] = [
      ["forwards", { ...ssh, publicPorts: { start: 0, end: 1 } }, "publicPorts.start", /=1/],
      [
        "forwards",
        { ...ssh, publicPorts: { start: 70000, end: 70000 } },
        "publicPorts.start",
        /65535/,
      ],
      [
        "forwards",
        { ...ssh, publicPorts: { start: 52300, end: 52200 } },
        "publicPorts",
        /reversed/,
      ],
      ["forwards", { ...ssh, privatePorts: { start: 1, end: 5 } }, "privatePorts", /span/],
      ["forwards", { ...ssh, privateAddress: "300.1.1.1" }, "privateAddress", /IPv4/],
      ["forwards", { ...ssh, privateAddress: "127.0.0.1" }, "privateAddress", /unicast/],
      ["forwards", { ...ssh, protocol: "icmp" }, "protocol", /tcp/],
      ["forwards", { ...ssh, name: "-bad" }, "name", /rule/],
      ["forwards", { ...ssh, users: ["a", "a"] }, "users", /twice/],
      ["forwards", { ...ssh, colour: "red" }, "", /colour/],
      ["forwards", { name: "x" }, "publicPorts", /./],
      ["open-ports", { ...games, ports: [] }, "ports", /./],
      [
        "open-ports",
        { ...games, ports: [{ protocol: "udp", ports: { start: 5, end: 4 } }] },
        "ports.0.ports",
        /reversed/,
      ],
    ];
    for (const [kind, body, field, reason] of cases) {
      const r = await admin.json("POST", `/api/v1/rules/${kind}`, { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      const e = (r.body as ErrorJson).error;
      assert.equal(e.field ?? "", field, JSON.stringify(e));
      assert.match(e.message, reason, e.message);
    }
  });
});

Deno.test("rules: viewers read, operators write, strangers get 401", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    assert.equal((await viewer.json("GET", "/api/v1/rules/forwards")).status, 200);
    assert.equal((await viewer.json("GET", "/api/v1/rules/forwards/web")).status, 200);
    const denied = await viewer.json("POST", "/api/v1/rules/forwards", { body: ssh });
    assert.equal(denied.status, 403);
    assert.equal((denied.body as ErrorJson).error.code, "forbidden");
    assert.equal(
      (await viewer.json("PUT", "/api/v1/rules/forwards/web", { body: ssh })).status,
      403,
    );
    assert.equal((await viewer.json("DELETE", "/api/v1/rules/forwards/web")).status, 403);
    assert.equal(
      (await viewer.json("POST", "/api/v1/rules/open-ports", { body: games })).status,
      403,
    );
    assert.equal((await h.anon.json("GET", "/api/v1/rules")).status, 401);
    assert.equal((await h.anon.json("POST", "/api/v1/rules/forwards", { body: ssh })).status, 401);
  });
});

Deno.test("rules: operators read the users a rule may name; viewers may not", async () => {
  await withApi(async (h) => {
    const op = await h.userClient("otto", "operator");
    const viewer = await h.userClient("vic", "viewer");
    const r = await op.json("GET", "/api/v1/rules/users");
    assert.equal(r.status, 200);
    const users = (r.body as { users: { name: string; knocking: boolean }[] }).users;
    assert.deepEqual(users.find((u) => u.name === "alice"), { name: "alice", knocking: true });
    assert.equal(users.find((u) => u.name === "vic")?.knocking, false);
    assert.equal((await viewer.json("GET", "/api/v1/rules/users")).status, 403);
  });
});
