import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { T0 } from "./_test_util.ts";
import { openStore } from "./kv_store.ts";
import { SCHEMA_KEY } from "./schema.ts";
import { loadOrCreateKey } from "./secret_box.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-kv-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

Deno.test("openStore creates the directory, the schema marker and <path>.key (0600)", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a/b/store.kv`;
    const store = await openStore(path);
    try {
      assert.equal((await store.kv.get(SCHEMA_KEY)).value, 1);
      const key = await Deno.stat(`${path}.key`);
      assert.equal(key.mode! & 0o777, 0o600);
      assert.equal(key.size, 32);
    } finally {
      store.close();
    }
  });
});

Deno.test("reopening after close: everything persists and secrets decrypt", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/store.kv`;
    const clock = new ManualClock(T0);
    const first = await openStore(path, { clock });
    let sessionId: string;
    try {
      await first.users.createUser(
        {
          name: "alice",
          password: "password1",
          role: "operator",
          totpSecret: SECRET,
          knock: { enabled: true, firstPort: 41001 },
        },
        "root",
      );
      await first.rules.createRule({
        kind: "open",
        rule: {
          name: "ssh",
          enabled: true,
          privateAddress: "192.0.2.10",
          ports: [{ protocol: "tcp", ports: { start: 22, end: 22 } }],
          enforceKnock: true,
          users: ["alice"],
        },
      }, "root");
      await first.settings.updateSettings({ idleTimeoutSeconds: 120 }, "root");
      await first.unlocks.saveUnlock({
        ip: "203.0.113.7",
        user: "alice",
        unlockedAt: T0,
        lastSeen: T0,
        expiresAt: T0 + 60_000,
        drift: -1,
        flows: 0,
        bytes: 0,
        wanAddress: "198.51.100.1",
      });
      sessionId = (await first.sessions.createSession({
        user: "alice",
        role: "operator",
        kind: "token",
        ttlMs: 60_000,
      })).id;
    } finally {
      first.close();
    }
    const again = await openStore(path, { clock });
    try {
      assert.equal((await again.kv.get(SCHEMA_KEY)).value, 1);
      assert.equal((await again.users.getMfaSecrets("alice")).secret, SECRET);
      assert.ok(await again.users.verifyUserPassword("alice", "password1"));
      assert.equal((await again.rules.getRule("ssh")).rule.name, "ssh");
      assert.equal((await again.settings.getSettings()).idleTimeoutSeconds, 120);
      assert.equal((await again.unlocks.listUnlocks())[0].drift, -1);
      assert.equal((await again.sessions.getSession(sessionId))?.user, "alice");
      assert.equal((await again.audit.listAudit()).length, 4);
    } finally {
      again.close();
    }
    // A missing key file is refused for an existing store...
    await assert.rejects(
      openStore(path, { keyFile: `${dir}/other.key` }),
      /secret key file ".*other.key" is missing; restore it/,
    );
    // ...and another key cannot open the secrets.
    await loadOrCreateKey(`${dir}/other.key`);
    const foreign = await openStore(path, { keyFile: `${dir}/other.key` });
    try {
      await assert.rejects(
        foreign.users.getMfaSecrets("alice"),
        /Cannot decrypt secret of "alice"/,
      );
    } finally {
      foreign.close();
    }
  });
});

Deno.test("openStore refuses a key file with wider permissions", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/store.kv`;
    (await openStore(path)).close();
    await Deno.chmod(`${path}.key`, 0o640);
    await assert.rejects(openStore(path), /mode 0640 is too wide, expected 0600/);
  });
});

Deno.test("a :memory: store works with a throw-away key", async () => {
  const store = await openStore(":memory:");
  try {
    await store.users.createUser({
      name: "alice",
      password: "password1",
      role: "viewer",
      totpSecret: SECRET,
    }, "root");
    assert.equal((await store.users.getMfaSecrets("alice")).secret, SECRET);
  } finally {
    store.close();
  }
});

/** Reads lines from `stream` until `want` of them arrived or it ends; calls `onEnough` once. */
async function collectLines(
  stream: ReadableStream<Uint8Array>,
  want: number,
  onEnough: () => void,
): Promise<string[]> {
  const lines: string[] = [];
  let partial = "";
  let fired = false;
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop()!;
    lines.push(...parts);
    if (!fired && lines.length >= want) {
      fired = true;
      onEnough();
    }
  }
  return lines; // a trailing partial line was never acknowledged
}

Deno.test("kill -9 durability: every acknowledged write survives", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/store.kv`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-kv",
        new URL("./testdata/kill_writer.ts", import.meta.url).pathname,
        path,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000); // bound the test in time
    let acked: string[];
    try {
      acked = await collectLines(child.stdout, 50, () => child.kill("SIGKILL"));
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL", "the writer was killed, not finished");
    } finally {
      clearTimeout(guard);
    }
    assert.ok(acked.length >= 50, `only ${acked.length} acknowledgements`);
    const store = await openStore(path);
    try {
      const names = new Set((await store.users.listUsers()).map((u) => u.name));
      const missing = acked.filter((n) => !names.has(n));
      assert.deepEqual(missing, [], "acknowledged but lost");
      // Index and audit entries landed with each user (same atomic op).
      const profiles = await store.users.knockProfiles();
      assert.equal(profiles.length, names.size);
      assert.equal((await store.audit.listAudit({ limit: 1000 })).length, names.size);
    } finally {
      store.close();
    }
  });
});

Deno.test("store files are 0600 in a directory that already existed, old 0644 files narrowed", async () => {
  await withDir(async (dir) => {
    await Deno.chmod(dir, 0o755);
    const path = `${dir}/store.kv`;
    const mode = async (p: string) => (await Deno.stat(p)).mode! & 0o777;
    const first = await openStore(path);
    try {
      await first.settings.updateSettings({ idleTimeoutSeconds: 600 }, "test");
      for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}.key`]) {
        assert.equal(await mode(file), 0o600, file);
      }
    } finally {
      first.close();
    }
    await Deno.chmod(path, 0o644); // as an older release left it
    const second = await openStore(path);
    try {
      assert.equal((await second.settings.getSettings()).idleTimeoutSeconds, 600);
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        assert.equal(await mode(file), 0o600, file);
      }
    } finally {
      second.close();
    }
  });
});

Deno.test("a used sign-in step is refused after the store is reopened, until it cannot be valid", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/store.kv`;
    const clock = new ManualClock(T0);
    const validUntil = T0 + 90_000;
    const first = await openStore(path, { clock });
    try {
      assert.equal(await first.usedCodes.claim("admin", 100, validUntil), true);
      assert.equal(await first.usedCodes.claim("admin", 100, validUntil), false);
      assert.equal(await first.usedCodes.claim("bob", 100, validUntil), true, "per user");
    } finally {
      first.close();
    }
    const second = await openStore(path, { clock });
    try {
      assert.equal(await second.usedCodes.claim("admin", 100, validUntil), false);
      assert.equal(await second.usedCodes.claim("admin", 99, validUntil), false, "older step");
      assert.deepEqual(await second.usedCodes.lastUsed("admin"), { step: 100, validUntil });
      const racing = await Promise.all([
        second.usedCodes.claim("admin", 101, validUntil + 30_000),
        second.usedCodes.claim("admin", 101, validUntil + 30_000),
      ]);
      assert.deepEqual(racing.sort(), [false, true], "of two racing sign-ins one wins");
      clock.set(validUntil + 30_001);
      assert.equal(await second.usedCodes.lastUsed("admin"), null, "no longer matters");
      assert.equal(await second.usedCodes.claim("admin", 5, validUntil + 60_000), true);
    } finally {
      second.close();
    }
  });
});
