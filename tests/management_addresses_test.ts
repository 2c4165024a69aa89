/** Where the management API listens with several uplinks (`managementAddresses` in src/main.ts). */
import assert from "node:assert/strict";
import { parseConfig } from "../src/config/mod.ts";
import { managementAddresses, serveManagement } from "../src/main.ts";

const root = new URL("../", import.meta.url).pathname;

Deno.test("management listens on the LAN and on every address of the management uplinks", async () => {
  const text = (await Deno.readTextFile(`${root}config/appliance.jsonc`)).replace(
    /"wan": \[[^\n]*\],/,
    `"wan": [
      { "name": "isp-a", "interface": "wan0", "addresses": ["198.51.100.1/26", "198.51.100.2/26"],
        "gateway": "198.51.100.62" },
      { "name": "isp-b", "interface": "wan1", "addresses": ["198.51.100.65/26"],
        "gateway": "198.51.100.126" }],`,
  );
  const config = parseConfig(text);
  assert.equal(config.wan.length, 2);
  config.management.wanAccess = "knock";
  config.management.uplinks = ["isp-a"];
  assert.deepEqual(managementAddresses(config), ["192.0.2.1", "198.51.100.1", "198.51.100.2"]);
  config.management.uplinks = ["isp-a", "isp-b"];
  assert.deepEqual(managementAddresses(config), [
    "192.0.2.1",
    "198.51.100.1",
    "198.51.100.2",
    "198.51.100.65",
  ]);
  config.management.wanAccess = "never";
  assert.deepEqual(managementAddresses(config), ["192.0.2.1"]);
});

Deno.test("with IPv6 on, management also listens on the management uplinks' IPv6 addresses", async () => {
  const base = await Deno.readTextFile(`${root}config/appliance.jsonc`);
  const text = (enabled: boolean) =>
    base.replace(
      /"wan": \[[^\n]*\],/,
      `"wan": [
      { "name": "isp-a", "interface": "wan0", "addresses": ["198.51.100.1/26"],
        "addresses6": ["2001:db8:198:0::1/64", "2001:db8:198::2/64"] },
      { "name": "isp-b", "interface": "wan1", "addresses": ["198.51.100.65/26"],
        "addresses6": ["2001:db8:199::1/64"] }],
  "ipv6": { "enabled": ${enabled},
    "lan": { "address": "2001:db8:192::1", "network": "2001:db8:192::/64" } },`,
    );
  const config = parseConfig(text(true));
  config.management.uplinks = ["isp-a"];
  // RFC 5952 text, as the data plane and the certificate's SANs spell it.
  assert.deepEqual(managementAddresses(config), [
    "192.0.2.1",
    "198.51.100.1",
    "2001:db8:198::1",
    "2001:db8:198::2",
  ]);
  config.management.uplinks = ["isp-a", "isp-b"];
  assert.deepEqual(managementAddresses(config).slice(2), [
    "198.51.100.65",
    "2001:db8:198::1",
    "2001:db8:198::2",
    "2001:db8:199::1",
  ]);
  config.management.wanAccess = "never";
  assert.deepEqual(managementAddresses(config), ["192.0.2.1"]);
  const off = parseConfig(text(false), "config", []);
  off.management.uplinks = ["isp-a", "isp-b"];
  assert.deepEqual(managementAddresses(off), ["192.0.2.1", "198.51.100.1", "198.51.100.65"]);
});

Deno.test("serveManagement: an IPv6 address that cannot be bound is left out after the wait, unless it is the listen address", async () => {
  const serve = (hostname: string) =>
    Deno.serve({ hostname, port: 0, onListen: () => {} }, () => new Response("ok"));
  // 2001:db8:ffff::1 is on no interface here: EADDRNOTAVAIL, as a tentative address gives.
  const servers = await serveManagement(["::1", "2001:db8:ffff::1"], "::1", serve, 300);
  try {
    assert.equal(servers.length, 1);
    assert.deepEqual((servers[0].addr as Deno.NetAddr).hostname, "::1");
  } finally {
    await Promise.all(servers.map((s) => s.shutdown()));
  }
  await assert.rejects(
    serveManagement(["2001:db8:ffff::1"], "2001:db8:ffff::1", serve, 300),
    Deno.errors.AddrNotAvailable,
  );
  await assert.rejects(
    serveManagement(["192.0.2.199"], "::1", serve, 300),
    Deno.errors.AddrNotAvailable,
  );
});
