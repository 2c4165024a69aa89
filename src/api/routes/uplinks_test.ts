import assert from "node:assert/strict";
import type { UplinkStatus } from "../../datapath/messages.ts";
import {
  dualStackConfig,
  dualStackTwoUplinkConfig,
  dualStackTwoUplinkStatus,
  twoUplinkConfig,
  twoUplinkStatus,
  withApi,
} from "../_test_util.ts";

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
            gateway6: null,
            lanIpv6Egress: false,
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
            gateway6: null,
            lanIpv6Egress: false,
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
        gateway6: null,
        lanIpv6Egress: false,
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

Deno.test("uplinks: the IPv6 gateway, its probe's health, and the LAN's IPv6 egress", async () => {
  const statuses = dualStackTwoUplinkStatus;
  await withApi(
    async (h) => {
      const viewer = await h.userClient("vic", "viewer");
      const get = async () => {
        const r = await viewer.json("GET", "/api/v1/uplinks");
        assert.equal(r.status, 200, JSON.stringify(r.body));
        return r.body.uplinks as {
          name: string;
          gateway6: string | null;
          lanIpv6Egress: boolean;
          status: UplinkStatus;
        }[];
      };
      h.datapath.uplinkTable = statuses(true);
      let [a, b] = await get();
      assert.deepEqual([a.gateway6, b.gateway6], ["fe80::1", "2001:db8:b::fe"]);
      assert.deepEqual([a.lanIpv6Egress, b.lanIpv6Egress], [true, false]);
      assert.deepEqual(a.status.ipv6, dualStackTwoUplinkStatus(true)[0].ipv6);
      h.datapath.uplinkTable = statuses(false);
      [a, b] = await get();
      assert.deepEqual([a.lanIpv6Egress, b.lanIpv6Egress], [false, true]);
      assert.equal(a.status.ipv6?.up, false);
    },
    {},
    dualStackTwoUplinkConfig(),
  );
});
