/**
 * The control plane over real Workers and a real multi-queue TUN (root): the
 * queues' Workers start, answer for their queues, and a Worker's failure
 * after the start is reported (the composition root then stops the appliance).
 * The TUN gets no address and carries no traffic.
 */
import assert from "node:assert/strict";
import { DatapathControl } from "./control.ts";
import { forward, SETTINGS } from "./_test_fixtures.ts";

function canRun(): boolean {
  try {
    return Deno.uid() === 0 && Deno.statSync("/dev/net/tun").isCharDevice === true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "two queues start two Workers; a Worker's failure after the start resolves `failed`",
  ignore: !canRun(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const name = `kgc${crypto.getRandomValues(new Uint16Array(1))[0].toString(16)}`;
    const plane = await DatapathControl.start(
      {
        device: { name, mtu: 1500, offload: true, queues: 2 },
        settings: SETTINGS,
        forwards: [],
        openPorts: [],
        users: [],
        unlocks: [],
      },
      () => {},
    );
    try {
      assert.equal(plane.queues, 2);
      assert.equal(plane.workerCounters().length, 2);
      const dev = await plane.device();
      assert.equal(dev.queues?.length, 2);
      assert.ok(dev.offloads.includes("csum"), JSON.stringify(dev.offloads));
      assert.equal((await plane.conntrack()).size, 0);
      // A rule the data plane cannot compile (the API validates first; this one skips it).
      plane.setRules(
        [{ ...forward("bad", 52201, 8080, false), privateAddress: "not an address" }],
        [],
      );
      const why = await Promise.race([
        plane.failed,
        new Promise<string>((r) => setTimeout(() => r("no failure within 5 s"), 5000)),
      ]);
      assert.match(why, /^worker \d: \S/);
    } finally {
      await plane.stop();
    }
    const links = new TextDecoder().decode(
      new Deno.Command("ip", { args: ["link", "show", name], stderr: "null" }).outputSync().stdout,
    );
    assert.equal(links, "", "the TUN is gone with its last queue");
  },
});
