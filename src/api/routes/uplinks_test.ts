import assert from "node:assert/strict";
import { dualStackConfig, twoUplinkConfig, twoUplinkStatus, withApi } from "../_test_util.ts";

Deno.test("uplinks: every configured uplink with its health, to any signed-in role", async () => {
  await withApi(
    async (h) => {
      h.datapath.uplinkTable = twoUplinkStatus();
      const viewer = await h.userClient("vic", "viewer");
      const r = await viewer.json("GET", "/api/v1/uplinks");
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const [a, b] = twoUplinkStatus();
      assert.deepEqual(r.body, {
        uplinks: [
          {
            name: "isp-a",
            interface: "wan0",
            addresses: ["198.51.100.1/26", "198.51.100.2/26"],
            addresses6: [],
            npt6: null,
            gateway: "198.51.100.62",
            management: true,
            masqueradeOrder: 1,
            status: a,
          },
          {
            name: "isp-b",
            interface: "wan1",
            addresses: ["198.51.100.65/26"],
            addresses6: [],
            npt6: null,
            gateway: "198.51.100.126",
            management: false,
            masqueradeOrder: 0,
            status: b,
          },
        ],
      });
      assert.equal((await h.anon.json("GET", "/api/v1/uplinks")).status, 401);
    },
    {},
    twoUplinkConfig(),
  );
});

Deno.test("uplinks: a data plane that cannot tell leaves status null", async () => {
  await withApi(async (h) => {
    h.datapath.uplinkTable = null; // the query fails
    const viewer = await h.userClient("vic", "viewer");
    const r = await viewer.json("GET", "/api/v1/uplinks");
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      uplinks: [{
        name: "wan",
        interface: "wan0",
        addresses: ["198.51.100.1/24"],
        addresses6: [],
        npt6: null,
        gateway: null,
        management: true,
        masqueradeOrder: 0,
        status: null,
      }],
    });
  });
});

Deno.test("uplinks: an uplink's NPTv6 outside prefix is listed", async () => {
  const config = dualStackConfig();
  config.wan[0].npt6 = {
    outside: "2001:db8:199::/64",
    outsideWords: [0x20010db8, 0x01990000, 0, 0],
    prefixLength: 64,
  };
  await withApi(
    async (h) => {
      h.datapath.uplinkTable = null;
      const viewer = await h.userClient("vic", "viewer");
      const r = await viewer.json("GET", "/api/v1/uplinks");
      assert.equal(r.status, 200);
      const [u] = (r.body as { uplinks: { addresses6: string[]; npt6: unknown }[] }).uplinks;
      assert.deepEqual([u.addresses6, u.npt6], [["2001:db8:198::1/64"], {
        outside: "2001:db8:199::/64",
      }]);
    },
    {},
    config,
  );
});
