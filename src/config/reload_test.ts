import assert from "node:assert/strict";
import { parseCidr, parseIpv4 } from "../packet/address.ts";
import { defaultConfig } from "./defaults.ts";
import { applyReload, reloadPlan } from "./reload.ts";

Deno.test("reload: an unchanged file changes nothing", () => {
  assert.deepEqual(reloadPlan(defaultConfig(), defaultConfig()), { apply: [], restart: [] });
});

Deno.test("reload: network, device, management and store need a restart; allow-list applies", () => {
  const next = defaultConfig();
  next.wan[0].addresses[0].address = "198.51.100.2";
  next.wan[0].addresses[0].addressU32 = parseIpv4("198.51.100.2")!;
  next.tun.mtu = 1400;
  next.management.port = 9443;
  next.store.path = "/var/lib/knockgate/kg.kv";
  next.admission.allow = ["203.0.113.0/24"];
  next.admission.allowCidrs = [parseCidr("203.0.113.0/24")!];
  next.knock.lifetimeSec = 3600;
  next.knock.maxFailures = 2; // the store's setting: drift, not reload
  next.forwards[0].enabled = false; // the store's rule: drift
  assert.deepEqual(reloadPlan(defaultConfig(), next), {
    apply: ["admission.allow", "knock.lifetimeSeconds"],
    restart: ["wan", "tun.mtu", "management.port", "store.path"],
  });
  const running = defaultConfig();
  applyReload(running, next);
  assert.deepEqual(running.admission, next.admission);
  assert.equal(running.knock.lifetimeSec, 3600);
  assert.equal(running.knock.maxFailures, 5);
  assert.equal(running.wan[0].addresses[0].address, "198.51.100.1");
});
