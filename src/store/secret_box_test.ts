import assert from "node:assert/strict";
import { loadOrCreateKey, SecretBox } from "./secret_box.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-key-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("key file is created with mode 0600 and 32 bytes; reopening decrypts", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/store.kv.key`;
    const box = await loadOrCreateKey(path);
    const info = await Deno.stat(path);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.equal(info.size, 32);
    const sealed = await box.seal("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "alice");
    assert.ok(!sealed.ciphertext.includes("JBSWY3DP"));
    const again = await loadOrCreateKey(path);
    assert.equal(await again.open(sealed, "alice"), "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
  });
});

Deno.test("a key file readable by group or others is refused", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/k`;
    await loadOrCreateKey(path);
    await Deno.chmod(path, 0o644);
    await assert.rejects(loadOrCreateKey(path), /mode 0644 is too wide, expected 0600/);
  });
});

Deno.test("a key file of the wrong size is refused", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/k`;
    await Deno.writeFile(path, new Uint8Array(16), { mode: 0o600 });
    await assert.rejects(loadOrCreateKey(path), /it has 16 bytes, expected 32/);
  });
});

Deno.test("a sealed secret opens only with the same key and context", async () => {
  const box = await SecretBox.ephemeral();
  const sealed = await box.seal("secret", "alice");
  assert.equal(await box.open(sealed, "alice"), "secret");
  await assert.rejects(box.open(sealed, "bob"), /Cannot decrypt secret of "bob"/);
  await assert.rejects((await SecretBox.ephemeral()).open(sealed, "alice"), /wrong key file/);
  const other = await box.seal("secret", "alice");
  assert.notEqual(other.iv, sealed.iv); // fresh IV every time
});
