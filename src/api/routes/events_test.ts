import assert from "node:assert/strict";
import { withApi } from "../_test_util.ts";

type EventJson = { seq: number; type: string; ip?: string };

/** Reads from `reader` until `done(text)` or `ms` pass; returns the text read. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  done: (text: string) => boolean,
  ms = 2000,
): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((r) => timer = setTimeout(() => r(null), ms));
  try {
    for (let i = 0; i < 100 && !done(text); i++) {
      const chunk = await Promise.race([reader.read(), timeout]);
      if (chunk === null || chunk.done) break;
      text += decoder.decode(chunk.value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
  }
  return text;
}

Deno.test("events: recent events, filtered by type, limited, after a seq", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    h.logger.record("knock-failure", { ip: "203.0.113.1", reason: "wrong-port" });
    h.logger.record("knock-success", {
      ip: "203.0.113.2",
      user: "alice",
      drift: 0,
      step: 1,
      wan: "198.51.100.1",
    });
    h.logger.record("knock-failure", { ip: "203.0.113.3", reason: "window-expired" });
    const all = await viewer.json("GET", "/api/v1/events?limit=3");
    const events = all.body.events as EventJson[];
    assert.deepEqual(events.map((e) => e.type), [
      "knock-failure",
      "knock-success",
      "knock-failure",
    ]);
    assert.equal(all.body.lastSeq, events[2].seq);
    const failures = await viewer.json("GET", "/api/v1/events?type=knock-failure&limit=1");
    assert.deepEqual((failures.body.events as EventJson[]).map((e) => e.ip), ["203.0.113.3"]);
    const after = await viewer.json(`GET`, `/api/v1/events?after=${events[1].seq}`);
    assert.deepEqual((after.body.events as EventJson[]).map((e) => e.ip), ["203.0.113.3"]);
    const bad = await viewer.json("GET", "/api/v1/events?type=nonsense");
    assert.equal(bad.status, 400);
    assert.equal((bad.body.error as { field: string }).field, "type");
    assert.equal((await h.anon.json("GET", "/api/v1/events")).status, 401);
  });
});

Deno.test("events: the stream delivers an event logged after connecting", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    h.logger.record("knock-failure", { ip: "203.0.113.1", reason: "before-connect" });
    const res = await viewer.request("GET", "/api/v1/events/stream");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reader = res.body!.getReader();
    try {
      assert.match(await readUntil(reader, (t) => t.includes("connected")), /: connected/);
      const seq = h.logger.lastSeq + 1;
      h.logger.record("knock-success", {
        ip: "203.0.113.9",
        user: "alice",
        drift: -1,
        step: 7,
        wan: "198.51.100.1",
      });
      const text = await readUntil(reader, (t) => t.includes("\n\n"));
      assert.match(text, new RegExp(`^event: knock-success\ndata: .*\nid: ${seq}\n\n`));
      const data = JSON.parse(/data: (.*)/.exec(text)![1]);
      assert.equal(data.seq, seq);
      assert.equal(data.ip, "203.0.113.9");
      assert.ok(!text.includes("before-connect"));
    } finally {
      await reader.cancel();
    }
  });
});

Deno.test("events: the stream resumes after Last-Event-ID and filters by type", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    const first = h.logger.lastSeq;
    h.logger.record("knock-failure", { ip: "203.0.113.1", reason: "wrong-port" });
    h.logger.record("knock-success", {
      ip: "203.0.113.2",
      user: "alice",
      drift: 0,
      step: 1,
      wan: "198.51.100.1",
    });
    h.logger.record("knock-failure", { ip: "203.0.113.3", reason: "wrong-port" });
    const res = await viewer.request("GET", "/api/v1/events/stream?type=knock-failure", {
      headers: { "last-event-id": String(first) },
    });
    const reader = res.body!.getReader();
    try {
      const text = await readUntil(reader, (t) => t.includes("203.0.113.3"));
      const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
      assert.deepEqual(ids, [first + 1, first + 3]);
      assert.ok(!text.includes("knock-success"));
    } finally {
      await reader.cancel();
    }
  });
});

Deno.test("events: the stream needs a principal", async () => {
  await withApi(async (h) => {
    assert.equal((await h.anon.json("GET", "/api/v1/events/stream")).status, 401);
  });
});

Deno.test("events: a flood of failures leaves the last success; ?class= lists one class", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    h.logger.record("knock-success", {
      ip: "203.0.113.2",
      user: "alice",
      drift: 0,
      step: 1,
      wan: "198.51.100.1",
    });
    for (let i = 0; i < 5000; i++) {
      h.logger.record("knock-failure", { ip: `198.18.${i >> 8}.${i & 255}`, reason: "wrong-port" });
    }
    const access = await viewer.json("GET", "/api/v1/events?class=access");
    assert.deepEqual((access.body.events as EventJson[]).map((e) => e.ip), ["203.0.113.2"]);
    const both = await viewer.json("GET", "/api/v1/events?class=access,failure&limit=10000");
    const events = both.body.events as EventJson[];
    assert.equal(events[0].type, "knock-success");
    assert.ok(events.slice(1).every((e) => e.type === "knock-failure"));
    assert.ok(events.length <= 1 + h.logger.capacity);
    const system = await viewer.json("GET", "/api/v1/events?class=system");
    assert.ok((system.body.events as EventJson[]).every((e) => e.type !== "knock-failure"));
    const bad = await viewer.json("GET", "/api/v1/events?class=access,nonsense");
    assert.equal(bad.status, 400);
    assert.equal((bad.body.error as { field: string }).field, "class");
    await h.logger.close(); // ends the pending summary's timer
  });
});

Deno.test("events: the stream filters by class", async () => {
  await withApi(async (h) => {
    const viewer = await h.userClient("vic", "viewer");
    const first = h.logger.lastSeq;
    h.logger.record("knock-failure", { ip: "203.0.113.1", reason: "wrong-port" });
    h.logger.record("knock-success", {
      ip: "203.0.113.2",
      user: "alice",
      drift: 0,
      step: 1,
      wan: "198.51.100.1",
    });
    h.logger.record("knock-penalty", { ip: "203.0.113.3", until: 1 });
    const res = await viewer.request("GET", "/api/v1/events/stream?class=access", {
      headers: { "last-event-id": String(first) },
    });
    const reader = res.body!.getReader();
    try {
      const text = await readUntil(reader, (t) => t.includes("203.0.113.3"));
      const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
      assert.deepEqual(ids, [first + 2, first + 3]);
    } finally {
      await reader.cancel();
    }
  });
});
