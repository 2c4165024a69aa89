import assert from "node:assert/strict";
import { T0, withStore } from "./_test_util.ts";
import { ValidationError } from "./errors.ts";
import { DOWN_AFTER_MS, HEARTBEAT_MS, type NodeRecord } from "./nodes.ts";

function node(name: string, heartbeatAt = T0): NodeRecord {
  return {
    name,
    url: `https://192.0.2.${name === "kg-a" ? 2 : 3}:8443/`,
    version: "0.9.0",
    startedAt: T0 - 60_000,
    heartbeatAt,
    flows: 3,
    unlocks: 1,
  };
}

Deno.test("nodes: heartbeats list every node, up until three intervals pass", async () => {
  await withStore(async ({ nodes }, { clock }) => {
    assert.deepEqual(await nodes.list(), []);
    await nodes.heartbeat(node("kg-b"));
    await nodes.heartbeat(node("kg-a"));
    assert.deepEqual(await nodes.list(), [
      { ...node("kg-a"), up: true },
      { ...node("kg-b"), up: true },
    ]);
    assert.equal(DOWN_AFTER_MS, 3 * HEARTBEAT_MS);
    clock.advance(DOWN_AFTER_MS);
    await nodes.heartbeat(node("kg-a", clock.now())); // a replaces its record
    assert.deepEqual((await nodes.list()).map((n) => [n.name, n.up]), [["kg-a", true], [
      "kg-b",
      true,
    ]]);
    clock.advance(1);
    assert.deepEqual((await nodes.list()).map((n) => [n.name, n.up]), [["kg-a", true], [
      "kg-b",
      false,
    ]]);
    await nodes.remove("kg-b");
    await nodes.remove("kg-x"); // absent: no error
    assert.deepEqual((await nodes.list()).map((n) => n.name), ["kg-a"]);
    await assert.rejects(nodes.heartbeat(node("kg a")), ValidationError);
    await assert.rejects(nodes.heartbeat(node("")), ValidationError);
  });
});
