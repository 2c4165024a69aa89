import assert from "node:assert/strict";
import { twoUplinkConfig, twoUplinkStatus, withApi } from "../_test_util.ts";

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
        gateway: null,
        management: true,
        masqueradeOrder: 0,
        status: null,
      }],
    });
  });
});
