import assert from "node:assert/strict";
import { readSse, type SseMessage } from "./sse.ts";

/** A body delivering `chunks` one by one. */
function body(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const s of chunks) c.enqueue(enc.encode(s));
      c.close();
    },
  });
}

async function all(chunks: string[]): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  for await (const m of readSse(body(chunks))) out.push(m);
  return out;
}

Deno.test("readSse: events split across chunks, comments, CRLF, multi-line data", async () => {
  const msgs = await all([
    ": connected\n\n",
    "id: 7\nevent: knock-success\nda",
    'ta: {"seq":7}\n\n',
    "data: a\r\ndata:b\r\n\r\n",
    ": keep-alive\n\n",
    "event: empty\n\n",
    "data: unfinished",
  ]);
  assert.deepEqual(msgs, [
    { id: "7", event: "knock-success", data: '{"seq":7}' },
    { id: undefined, event: undefined, data: "a\nb" },
  ]);
});
