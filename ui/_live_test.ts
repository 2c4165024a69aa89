import assert from "node:assert/strict";
import { relayBlock, relayStream } from "./_live.ts";

Deno.test("live: an API event is relayed by type with its one-line summary", () => {
  const data = JSON.stringify({
    seq: 7,
    type: "knock-success",
    time: 0,
    severity: 5,
    ip: "203.0.113.10",
    user: "bob",
    drift: 0,
  });
  const out = relayBlock(`id: 7\nevent: knock-success\ndata: ${data}`);
  assert.match(
    out,
    /^id: 7\nevent: knock-success\ndata: [^\n]*203\.0\.113\.10 unlocked by bob[^\n]*\n\n$/,
  );
  assert.equal(relayBlock(": keep-alive"), ": keep-alive\n\n");
  assert.equal(relayBlock("data: no type"), "");
  assert.equal(relayBlock("event: bad type\ndata: {}"), "");
  assert.equal(relayBlock("event: x\ndata: not json"), "event: x\ndata: x\n\n");
});

Deno.test("live: blocks split across chunks are relayed whole", async () => {
  const chunks = [": connected\n", "\nid: 1\nevent: unlock-rev", "oked\ndata: {}\n\n"];
  const out = await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(relayStream()),
  );
  assert.deepEqual(out, [": connected\n\n", "id: 1\nevent: unlock-revoked\ndata: \n\n"]);
});
