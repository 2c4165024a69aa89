/**
 * IPv6 through the API (issue 13): rules to IPv6 hosts (NAT66 forwards and
 * pinholes) validated with the field named, IPv6 unlocks listed and revoked
 * by address or prefix, the `ipv6` section in the settings, the OpenAPI words.
 */
import assert from "node:assert/strict";
import { DEFAULT_CONFIG_INPUT } from "../../config/defaults.ts";
import { parseConfig } from "../../config/load.ts";
import { dualStackConfig, withApi } from "../_test_util.ts";
import { unlockKeyOf } from "./status.ts";

type ErrorJson = {
  error: { status: number; code: string; message: string; field?: string };
  problems?: { field: string; message: string }[];
};

const NAT66 = {
  name: "web6",
  publicPorts: { start: 443, end: 443 },
  privateAddress: "2001:db8:192::12",
  privatePorts: { start: 8443, end: 8443 },
};
const PINHOLE = {
  name: "ssh6",
  privateAddress: "2001:db8:192::12",
  ports: [{ protocol: "tcp", ports: { start: 22, end: 22 } }],
};

Deno.test("ipv6 api: a NAT66 forward and a pinhole are saved and pushed as written", async () => {
  await withApi(
    async (h) => {
      const op = await h.userClient("otto", "operator");
      const fwd = await op.json("POST", "/api/v1/rules/forwards", {
        body: { ...NAT66, uplink: "wan", wanAddress: "2001:DB8:198::1" },
      });
      assert.equal(fwd.status, 201, JSON.stringify(fwd.body));
      const hole = await op.json("POST", "/api/v1/rules/open-ports", { body: PINHOLE });
      assert.equal(hole.status, 201, JSON.stringify(hole.body));
      assert.equal(hole.body.wanAddress, "all");
      const pushed = h.datapath.rules!;
      assert.equal(
        pushed.forwards.find((r) => r.name === "web6")!.privateAddress,
        "2001:db8:192::12",
      );
      assert.deepEqual(pushed.openPorts.map((r) => [r.name, r.privateAddress]), [
        ["ssh6", "2001:db8:192::12"],
      ]);
      // Same port on IPv4: ports are unique per family.
      const v4 = await op.json("POST", "/api/v1/rules/forwards", {
        body: { ...NAT66, name: "web4", privateAddress: "192.0.2.12" },
      });
      assert.equal(v4.status, 201, JSON.stringify(v4.body));
      const twice = await op.json("POST", "/api/v1/rules/forwards", {
        body: { ...NAT66, name: "web6b", privateAddress: "2001:db8:192::13" },
      });
      assert.equal(twice.status, 409);
      assert.equal((twice.body as ErrorJson).error.field, "publicPorts");
      assert.match(
        (twice.body as ErrorJson).error.message,
        /overlaps rule "web6" on tcp port 443 at every WAN IPv6 address/,
      );
    },
    {},
    dualStackConfig(),
  );
});

Deno.test("ipv6 api: shape refusals are 400 naming the field", async () => {
  await withApi(
    async (h) => {
      const op = await h.userClient("otto", "operator");
      const cases: [string, Record<string, unknown>, string, RegExp][] = [
        [
          "forwards",
          { ...NAT66, uplink: "wan", wanAddress: "198.51.100.1" },
          "wanAddress",
          /WAN address 198\.51\.100\.1 is IPv4 but private address 2001:db8:192::12 is IPv6/,
        ],
        [
          "forwards",
          { ...NAT66, privateAddress: "192.0.2.12", uplink: "wan", wanAddress: "2001:db8:198::1" },
          "wanAddress",
          /WAN address 2001:db8:198::1 is IPv6 but private address 192\.0\.2\.12 is IPv4/,
        ],
        [
          "open-ports",
          { ...PINHOLE, uplink: "wan", wanAddress: "2001:db8:198::1" },
          "wanAddress",
          /is a pinhole to 2001:db8:192::12 itself \(no NAT\), so wanAddress must be "all"/,
        ],
        [
          "forwards",
          { ...NAT66, privateAddress: "fe80::12%lan0" },
          "privateAddress",
          /private address "fe80::12%lan0" is not an IPv4 or IPv6 address/,
        ],
        [
          "forwards",
          { ...NAT66, uplink: "wan", wanAddress: "2001:db8:198::1/64" },
          "wanAddress",
          /is not "all" or an IPv4 or IPv6 address/,
        ],
      ];
      for (const [list, body, field, message] of cases) {
        const r = await op.json("POST", `/api/v1/rules/${list}`, { body });
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal((r.body as ErrorJson).error.field, field);
        assert.match((r.body as ErrorJson).error.message, message, JSON.stringify(r.body));
      }
    },
    {},
    dualStackConfig(),
  );
});

Deno.test("ipv6 api: hosts against the addressing are 422 naming privateAddress", async () => {
  await withApi(
    async (h) => {
      const op = await h.userClient("otto", "operator");
      const outside = await op.json("POST", "/api/v1/rules/forwards", {
        body: { ...NAT66, privateAddress: "2001:db8:9::12" },
      });
      assert.equal(outside.status, 422);
      assert.equal((outside.body as ErrorJson).error.field, "privateAddress");
      assert.match(
        (outside.body as ErrorJson).error.message,
        /private address 2001:db8:9::12 is outside the LAN prefix 2001:db8:192::\/64/,
      );
      const ula = await op.json("POST", "/api/v1/rules/open-ports", {
        body: { ...PINHOLE, privateAddress: "fd00::12" },
      });
      assert.equal(ula.status, 422);
      assert.match((ula.body as ErrorJson).error.message, /unique local, fc00::\/7/);
      const noV6 = await op.json("POST", "/api/v1/rules/forwards", {
        body: { ...NAT66, uplink: "wan" },
      });
      assert.equal(noV6.status, 201, "the uplink has an IPv6 address");
    },
    {},
    dualStackConfig(),
  );
  await withApi(
    async (h) => {
      const op = await h.userClient("otto", "operator");
      const off = await op.json("POST", "/api/v1/rules/open-ports", { body: PINHOLE });
      assert.equal(off.status, 422);
      assert.equal((off.body as ErrorJson).error.field, "privateAddress");
      assert.match(
        (off.body as ErrorJson).error.message,
        /private address 2001:db8:192::12 is IPv6, but IPv6 is off: a pinhole needs ipv6\.enabled/,
      );
    },
    {},
    dualStackConfig(false),
  );
});

Deno.test("ipv6 api: IPv6 unlocks are listed and revoked by prefix or by any address inside", async () => {
  await withApi(
    async (h) => {
      const op = await h.userClient("otto", "operator");
      const wan6 = "2001:db8:198::1";
      const net = h.datapath.unlock("2001:db8:1:2::/64", "alice", h.clock.now(), wan6);
      h.datapath.unlock("2001:db8:7::9", "alice", h.clock.now(), wan6);
      h.datapath.unlock("203.0.113.10", "alice", h.clock.now());
      await h.store.unlocks.saveUnlock(net);
      const list = await op.json("GET", "/api/v1/status/unlocks");
      assert.deepEqual(
        (list.body.unlocks as { ip: string }[]).map((u) => u.ip),
        ["2001:db8:1:2::/64", "2001:db8:7::9", "203.0.113.10"],
      );
      // An address inside the /64 (any spelling) finds it.
      const inside = await op.json(
        "DELETE",
        `/api/v1/status/unlocks/${encodeURIComponent("2001:DB8:1:2:a:b:c:d")}`,
      );
      assert.equal(inside.status, 200, JSON.stringify(inside.body));
      assert.equal((inside.body.unlock as { ip: string }).ip, "2001:db8:1:2::/64");
      assert.deepEqual(
        (await h.store.unlocks.listRevocations()).map((n) => [n.ip, n.by]),
        [["2001:db8:1:2::/64", "otto"]],
      );
      assert.deepEqual(await h.store.unlocks.listUnlocks(), []);
      h.datapath.unlock("2001:db8:1:2::/64", "alice", h.clock.now(), wan6);
      const byPrefix = await op.json(
        "DELETE",
        `/api/v1/status/unlocks/${encodeURIComponent("2001:db8:1:2::/64")}`,
      );
      assert.equal(byPrefix.status, 200);
      const single = await op.json("DELETE", "/api/v1/status/unlocks/2001:db8:7::9");
      assert.equal((single.body.unlock as { ip: string }).ip, "2001:db8:7::9");
      // A wider prefix than any unlock, or an address outside them, finds none.
      h.datapath.unlock("2001:db8:1:2::/64", "alice", h.clock.now(), wan6);
      for (const q of ["2001:db8:1::/48", "2001:db8:1:3::1"]) {
        const r = await op.json("DELETE", `/api/v1/status/unlocks/${encodeURIComponent(q)}`);
        assert.equal(r.status, 404, q);
        assert.match((r.body as ErrorJson).error.message, /is not unlocked/);
      }
      for (const q of ["2001:db8::/129", "203.0.113.0/24", "2001:db8::1%25lan0"]) {
        const r = await op.json("DELETE", `/api/v1/status/unlocks/${encodeURIComponent(q)}`);
        assert.equal(r.status, 400, q);
        assert.equal((r.body as ErrorJson).error.field, "ip");
      }
      assert.equal(h.datapath.unlockTable.size, 2);
    },
    {},
    dualStackConfig(),
  );
});

Deno.test("ipv6 api: the settings and uplinks show the IPv6 addressing", async () => {
  await withApi(
    async (h) => {
      const admin = await h.adminClient();
      const s = await admin.json("GET", "/api/v1/settings");
      const network = s.body.network as {
        uplinks: { addresses6: string[] }[];
        ipv6: Record<string, unknown>;
      };
      assert.deepEqual(network.ipv6, {
        enabled: true,
        lanAddress: "2001:db8:192::1",
        lanNetwork: "2001:db8:192::/64",
        unlockPrefix: 64,
        pairFamilies: false,
      });
      assert.deepEqual(network.uplinks[0].addresses6, ["2001:db8:198::1/64"]);
      const u = await admin.json("GET", "/api/v1/uplinks");
      assert.deepEqual((u.body.uplinks as { addresses6: string[] }[])[0].addresses6, [
        "2001:db8:198::1/64",
      ]);
    },
    {},
    dualStackConfig(),
  );
});

Deno.test("ipv6 api: the OpenAPI document gives both formats and the pinhole and NAT66 meaning", async () => {
  await withApi(async (h) => {
    const doc = (await h.anon.json("GET", "/api/v1/openapi.json")).body as {
      components: {
        schemas: Record<string, { properties: Record<string, Record<string, unknown>> }>;
      };
    };
    const schemas = doc.components.schemas;
    const formats = (p: Record<string, unknown>) =>
      (p.anyOf as { format?: string }[]).map((a) => a.format ?? "all");
    assert.deepEqual(formats(schemas.ForwardInput.properties.privateAddress), ["ipv4", "ipv6"]);
    assert.deepEqual(formats(schemas.ForwardInput.properties.wanAddress), ["all", "ipv4", "ipv6"]);
    assert.match(String(schemas.ForwardInput.properties.privateAddress.description), /NAT66/);
    assert.match(String(schemas.OpenPortsInput.properties.privateAddress.description), /pinhole/);
    assert.match(String(schemas.Unlock.properties.ip.description), /2001:db8:1:2::\/64/);
    assert.ok(schemas.Ipv6Settings, "the ipv6 section has a schema");
  });
});

Deno.test("ipv6 api: the data plane gets the allow-list of both families", async () => {
  const config = parseConfig(
    JSON.stringify({
      ...DEFAULT_CONFIG_INPUT,
      wan: [{
        name: "wan",
        interface: "wan0",
        addresses: ["198.51.100.1/24"],
        addresses6: ["2001:db8:198::1/64"],
      }],
      ipv6: { enabled: true, lan: { address: "2001:db8:192::1", network: "2001:db8:192::/64" } },
      admission: { allow: ["203.0.113.64/26", "2001:DB8:5::/48"] },
    }),
  );
  await withApi(
    (h) => {
      assert.deepEqual(h.datapath.settings!.allow, ["203.0.113.64/26", "2001:db8:5::/48"]);
      return Promise.resolve();
    },
    {},
    config,
  );
});

Deno.test("ipv6 api: unlockKeyOf names the unlock a query falls in under unlockPrefix", () => {
  assert.equal(unlockKeyOf("203.0.113.10", 64), "203.0.113.10");
  assert.equal(unlockKeyOf("2001:DB8:1:2:a:b:c:d", 64), "2001:db8:1:2::/64");
  assert.equal(unlockKeyOf("2001:db8:1:2::/64", 64), "2001:db8:1:2::/64");
  assert.equal(unlockKeyOf("2001:db8:1:2::/96", 64), "2001:db8:1:2::/64");
  assert.equal(unlockKeyOf("2001:db8:1:2::9", 128), "2001:db8:1:2::9");
  assert.equal(unlockKeyOf("2001:db8:1::/48", 64), null);
  assert.equal(unlockKeyOf("2001:db8:1:2::9", 56), "2001:db8:1::/56");
});

Deno.test("ipv6 api: a pinhole lists its NPTv6 outside address per uplink with npt6", async () => {
  const config = dualStackConfig();
  config.wan[0].npt6 = {
    outside: "2001:db8:199::/64",
    outsideWords: [0x20010db8, 0x01990000, 0, 0],
    prefixLength: 64,
  };
  await withApi(
    async (h) => {
      const op = await h.userClient("otto", "operator");
      const hole = await op.json("POST", "/api/v1/rules/open-ports", { body: PINHOLE });
      assert.equal(hole.status, 201, JSON.stringify(hole.body));
      const outside = [{ uplink: "wan", address: "2001:db8:199:0:fff8::12" }];
      assert.deepEqual(hole.body.outsideAddresses, outside);
      const all = await op.json("GET", "/api/v1/rules");
      const listed = all.body.openPorts as { outsideAddresses?: unknown }[];
      assert.deepEqual(listed[0].outsideAddresses, outside);
      const v4 = await op.json("POST", "/api/v1/rules/open-ports", {
        body: { ...PINHOLE, name: "ssh4", privateAddress: "192.0.2.12" },
      });
      assert.equal(v4.status, 201, JSON.stringify(v4.body));
      assert.equal("outsideAddresses" in v4.body, false, "an IPv4 rule has none");
    },
    {},
    config,
  );
});
