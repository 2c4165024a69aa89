import assert from "node:assert/strict";
import { HISTORY_LIMIT, loadHistory, remember, saveHistory, worthKeeping } from "./history.ts";

Deno.test("history: passwords and tokens are never kept, repeats collapse, size is bounded", () => {
  assert.equal(worthKeeping("login admin -p secret1"), false);
  assert.equal(worthKeeping("users add bob --password=x"), false);
  assert.equal(worthKeeping("status --token abc"), false);
  assert.equal(worthKeeping("   "), false);
  assert.equal(worthKeeping("users list -n 5"), true);
  const h: string[] = [];
  assert.equal(remember(h, "status"), true);
  assert.equal(remember(h, " status "), false);
  for (let i = 0; i < HISTORY_LIMIT + 10; i++) remember(h, `cmd ${i}`);
  assert.equal(h.length, HISTORY_LIMIT);
  assert.equal(h.at(-1), `cmd ${HISTORY_LIMIT + 9}`);
});

Deno.test("history: saved privately, loaded oldest first, bounded", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/kg/shell_history`;
    assert.deepEqual(await loadHistory(path), []);
    const lines = Array.from({ length: HISTORY_LIMIT + 3 }, (_, i) => `l${i}`);
    await saveHistory(path, lines);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const back = await loadHistory(path);
    assert.equal(back.length, HISTORY_LIMIT);
    assert.equal(back[0], "l3");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
