import assert from "node:assert/strict";
import { migrate, type Migration, MIGRATIONS, SCHEMA_KEY } from "./schema.ts";

async function withKv(fn: (kv: Deno.Kv, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-schema-" });
  try {
    await fn(await Deno.openKv(`${dir}/s.kv`), `${dir}/s.kv`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function counting(runs: number[]): Migration[] {
  return [
    ...MIGRATIONS,
    {
      version: 2,
      description: "test: add a marker",
      up: async (kv) => {
        runs.push(2);
        await kv.set(["test", "m2"], true);
      },
    },
    { version: 3, description: "test: nothing", up: () => Promise.resolve(void runs.push(3)) },
  ];
}

Deno.test("version 1 writes only the schema marker", async () => {
  await withKv(async (kv) => {
    try {
      assert.deepEqual(await migrate(kv), [1]);
      const keys = [];
      for await (const e of kv.list({ prefix: [] })) keys.push(e.key);
      assert.deepEqual(keys, [SCHEMA_KEY]);
      assert.equal((await kv.get(SCHEMA_KEY)).value, 1);
    } finally {
      kv.close();
    }
  });
});

Deno.test("migrations run in order, each once, also across reopen", async () => {
  await withKv(async (kv, path) => {
    const runs: number[] = [];
    try {
      assert.deepEqual(await migrate(kv, MIGRATIONS), [1]);
      assert.deepEqual(await migrate(kv, counting(runs)), [2, 3]);
      assert.deepEqual(await migrate(kv, counting(runs)), []);
    } finally {
      kv.close();
    }
    const again = await Deno.openKv(path);
    try {
      assert.deepEqual(await migrate(again, counting(runs)), []);
      assert.deepEqual(runs, [2, 3]);
      assert.equal((await again.get(SCHEMA_KEY)).value, 3);
      assert.equal((await again.get(["test", "m2"])).value, true);
    } finally {
      again.close();
    }
  });
});

Deno.test("a file from a newer release and a gap in the list are refused", async () => {
  await withKv(async (kv) => {
    try {
      await kv.set(SCHEMA_KEY, 9);
      await assert.rejects(migrate(kv), /schema version 9 is newer than this release \(1\)/);
      const gap = [{ ...MIGRATIONS[0], version: 2 }];
      await assert.rejects(migrate(kv, gap), /migration #0 has version 2, expected 1/);
    } finally {
      kv.close();
    }
  });
});
