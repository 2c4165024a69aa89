/**
 * EtcdKv and the etcd store against a real 3-member etcd cluster the test
 * starts itself (loopback, free ports, temp data dirs; stopped even on
 * failure). Skipped where Debian's etcd-server is not installed.
 */
import assert from "node:assert/strict";
import { EtcdCluster, etcdInstalled, sleep, withEtcdCluster } from "./_etcd_cluster.ts";
import { ConfigProblemError, ConflictError, StoreUnavailableError } from "./errors.ts";
import { EtcdKv, lastPerKey, ownCommit } from "./etcd_kv.ts";
import { type EtcdStoreTarget, openEtcdStore } from "./etcd_store.ts";
import type { Store } from "./mod.ts";
import type { StoreChange } from "./store_kv.ts";

const ignore = !etcdInstalled();
const opts = { ignore, sanitizeOps: false, sanitizeResources: false };

/** Polls `ok` every 20 ms for at most `ms`; throws `what` when it never holds. */
async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Two appliances' stores on `cluster` (one key file, copied as at enrolment). */
async function withTwoStores(
  cluster: EtcdCluster,
  fn: (a: Store, b: Store) => Promise<void>,
  endpointsB: string[] = [...cluster.endpoints].reverse(),
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kgt-etcd-nodes-" });
  const target: EtcdStoreTarget = {
    backend: "etcd",
    path: `${dir}/a.kv`,
    endpoints: cluster.endpoints,
    prefix: "/knockgate/",
  };
  const knobs = { requestTimeoutMs: 1000, probeIntervalMs: 250 };
  const stores: Store[] = [];
  try {
    stores.push(await openEtcdStore(target, knobs));
    await Deno.copyFile(`${dir}/a.kv.key`, `${dir}/b.kv.key`);
    stores.push(
      await openEtcdStore({ ...target, path: `${dir}/b.kv`, endpoints: endpointsB }, knobs),
    );
    await fn(stores[0], stores[1]);
  } finally {
    for (const s of stores) s.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function user(name: string, firstPort: number) {
  return {
    name,
    password: "correct-horse-battery",
    role: "operator" as const,
    knock: { enabled: true, firstPort },
  };
}

Deno.test({
  name: "etcd: a user created through store A is read through store B; B's onChange hears it",
  ...opts,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    await withTwoStores(cluster, async (a, b) => {
      await a.users.createUser(user("alice", 41001), "root");
      const seen = await b.users.getUser("alice");
      assert.equal(seen.knock.firstPort, 41001);
      assert.ok(await b.users.verifyUserPassword("alice", "correct-horse-battery"));
      assert.deepEqual(await b.users.getMfaSecrets("alice"), await a.users.getMfaSecrets("alice"));
      // Latency of a change through A to B's onChange (a figure, not an assertion).
      const lat: number[] = [];
      let heard: (() => void) | null = null;
      const off = b.onChange((c: StoreChange) => {
        if (c.areas.includes("settings")) heard?.();
      });
      for (let i = 0; i < 20; i++) {
        const got = new Promise<void>((r) => heard = r);
        const t0 = performance.now();
        await a.settings.updateSettings({ knock: { failureLimit: 5 + i } }, "root");
        await Promise.race([got, sleep(5000).then(() => Promise.reject(new Error("no change")))]);
        lat.push(performance.now() - t0);
      }
      off();
      lat.sort((x, y) => x - y);
      console.log(
        `A write to B onChange: median ${lat[10].toFixed(1)} ms, max ${lat[19].toFixed(1)} ms`,
      );
      assert.equal((await b.settings.getSettings()).knock.failureLimit, 24);
    });
  });
});

Deno.test({
  name: "etcd: the same first knock port or user name created at once through A and B: one wins",
  ...opts,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    await withTwoStores(cluster, async (a, b) => {
      for (let i = 0; i < 5; i++) {
        const port = 42000 + i;
        const results = await Promise.allSettled([
          a.users.createUser(user(`a${i}`, port), "root"),
          b.users.createUser(user(`b${i}`, port), "root"),
        ]);
        const won = results.filter((r) => r.status === "fulfilled");
        const lost = results.filter((r) => r.status === "rejected");
        assert.equal(won.length, 1, `round ${i}: ${JSON.stringify(results)}`);
        assert.ok((lost[0] as PromiseRejectedResult).reason instanceof ConfigProblemError);
        const holders = (await a.users.listUsers()).filter((u) => u.knock.firstPort === port);
        assert.equal(holders.length, 1);
      }
      const same = await Promise.allSettled([
        a.users.createUser(user("carol", 43001), "root"),
        b.users.createUser(user("carol", 43002), "root"),
      ]);
      assert.equal(same.filter((r) => r.status === "fulfilled").length, 1);
      const reason = (same.find((r) => r.status === "rejected") as PromiseRejectedResult).reason;
      assert.ok(reason instanceof ConflictError || reason instanceof ConfigProblemError);
    });
  });
});

Deno.test(
  { name: "etcd: one member killed: writes still work, B still hears them", ...opts },
  async () => {
    await withEtcdCluster(async (cluster) => {
      await withTwoStores(cluster, async (a, b) => {
        await a.users.createUser(user("alice", 41001), "root");
        let heard = 0;
        b.onChange((c) => {
          if (c.areas.includes("rules")) heard++;
        });
        // The worst member to lose: the leader (the next write waits out the election).
        await cluster.kill(await cluster.leader());
        const t0 = performance.now();
        await a.rules.createRule({
          kind: "forward",
          rule: {
            name: "web",
            enabled: true,
            protocol: "tcp",
            publicPorts: { start: 52201, end: 52201 },
            privateAddress: "192.0.2.12",
            privatePorts: { start: 8080, end: 8080 },
            enforceKnock: true,
            users: [],
          },
        }, "root");
        const ms = (performance.now() - t0).toFixed(0);
        console.log(`a write right after the leader was killed: ${ms} ms`);
        assert.equal((await b.rules.getRule("web")).rule.name, "web");
        await until("B's watch to report the rule", () => heard > 0);
        await b.users.updateUser("alice", { role: "viewer" }, "root");
        assert.equal((await a.users.getUser("alice")).role, "viewer");
        assert.ok(a.health().connected && b.health().connected);
      });
    });
  },
);

Deno.test({
  name:
    "etcd: all members killed: degraded (reads, StoreUnavailableError, health); restarted: writes work, B catches up",
  ...opts,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    await withTwoStores(cluster, async (a, b) => {
      await a.users.createUser(user("alice", 41001), "root");
      await until("B to hear alice", async () => (await b.users.findUser("alice")) !== null);
      for (let i = 0; i < 3; i++) await cluster.kill(i);
      await until("A and B to notice", () => !a.health().connected && !b.health().connected);
      // Reads answer from the last known state.
      assert.equal((await b.users.getUser("alice")).knock.firstPort, 41001);
      assert.deepEqual((await a.users.listUsers()).map((u) => u.name), ["alice"]);
      assert.ok(await b.users.verifyUserPassword("alice", "correct-horse-battery"));
      assert.equal((await a.settings.getSettings()).version, 0);
      // Writes are refused with the typed error.
      await assert.rejects(a.users.createUser(user("bob", 41002), "root"), StoreUnavailableError);
      await assert.rejects(b.settings.updateSettings({}, "root"), StoreUnavailableError);
      const h = a.health();
      assert.equal(h.backend, "etcd");
      assert.equal(h.connected, false);
      assert.ok(h.lastContactMs > 0 && h.revision > 0);
      for (let i = 0; i < 3; i++) cluster.restart(i);
      await cluster.waitHealthy();
      await until("A and B to reconnect", () => a.health().connected && b.health().connected);
      let heard = false;
      b.onChange((c) => heard ||= c.areas.includes("users"));
      const bob = await a.users.createUser(user("bob", 41002), "root");
      await until("B's watch to report bob", () => heard);
      assert.deepEqual(await b.users.getUser("bob"), bob);
      assert.ok(b.health().revision >= a.health().revision - 1);
    });
  });
});

Deno.test({
  name:
    "etcd: a frozen member (SIGSTOP): requests and the watch move on; all frozen: degraded, then back",
  ...opts,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    await withTwoStores(cluster, async (a, b) => {
      await a.users.createUser(user("alice", 41001), "root");
      const frozen = cluster.endpoints.indexOf(b.health().endpoint!);
      cluster.freeze(frozen);
      try {
        let heard = false;
        b.onChange((c) => heard ||= c.areas.includes("settings"));
        await a.settings.updateSettings({ knock: { failureLimit: 8 } }, "root");
        await a.settings.updateSettings({ knock: { failureLimit: 9 } }, "root");
        // Compact past them: B's watch, resumed elsewhere from its old revision, must re-list.
        await compact(cluster.endpoints[(frozen + 1) % 3]);
        // B's watch hung on the frozen member; its probe times out there and moves it.
        await until("B's watch to move and report the change", () => heard);
        assert.notEqual(b.health().endpoint, cluster.endpoints[frozen]);
        assert.equal((await b.settings.getSettings()).knock.failureLimit, 9);
        for (let i = 0; i < 3; i++) cluster.freeze(i);
        await until(
          "A and B to turn degraded",
          () => !a.health().connected && !b.health().connected,
        );
        await assert.rejects(b.users.deleteUser("alice", "root"), StoreUnavailableError);
        assert.equal((await b.users.getUser("alice")).name, "alice");
      } finally {
        for (let i = 0; i < 3; i++) cluster.thaw(i);
      }
      await until("A and B to reconnect", () => a.health().connected && b.health().connected);
      await b.users.deleteUser("alice", "root");
      assert.equal(await a.users.findUser("alice"), null);
    });
  });
});

Deno.test({
  name: "etcd: a node cut off from its only member catches up by re-listing when it returns",
  ...opts,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    const [m0, m1, m2] = cluster.endpoints;
    // A talks to m0 and m1; B only to m2.
    const dir = await Deno.makeTempDir({ prefix: "kgt-etcd-nodes-" });
    const base: EtcdStoreTarget = {
      backend: "etcd",
      path: `${dir}/a.kv`,
      endpoints: [m0, m1],
      prefix: "/kg/",
    };
    const knobs = { requestTimeoutMs: 1000, probeIntervalMs: 250 };
    const a = await openEtcdStore(base, knobs);
    await Deno.copyFile(`${dir}/a.kv.key`, `${dir}/b.kv.key`);
    const b = await openEtcdStore({ ...base, path: `${dir}/b.kv`, endpoints: [m2] }, knobs);
    try {
      let heard = false;
      const off = b.onChange((c) => heard ||= c.areas.includes("users"));
      await a.users.createUser(user("alice", 41001), "root");
      await until("B's watch to report alice", () => heard);
      off();
      await cluster.kill(2);
      await until("B to notice", () => !b.health().connected);
      await a.users.createUser(user("carol", 41003), "root");
      await a.users.deleteUser("alice", "root");
      // B still serves what it knew.
      assert.deepEqual((await b.users.listUsers()).map((u) => u.name), ["alice"]);
      const areas = new Set<string>();
      b.onChange((c) => c.areas.forEach((x) => areas.add(x)));
      cluster.restart(2);
      await until("B to reconnect", () => b.health().connected);
      assert.ok(areas.has("users"), "the re-list reported the users that changed meanwhile");
      assert.deepEqual((await b.users.listUsers()).map((u) => u.name), ["carol"]);
    } finally {
      a.close();
      b.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test({
  name:
    "etcd: EtcdKv lists in order and pages, reverse with limit and end, getMany, leases, txn size",
  ...opts,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    const kv = await EtcdKv.open({ endpoints: cluster.endpoints, prefix: "/raw/" });
    try {
      // 1100 keys in one check-less atomic: more than etcd's 128 ops, committed in pieces.
      const op = kv.atomic();
      for (let i = 0; i < 1100; i++) op.set(["n", i], { i });
      assert.ok((await op.commit()).ok);
      const all: number[] = [];
      for await (const e of kv.list<{ i: number }>({ prefix: ["n"] })) all.push(e.value.i);
      assert.deepEqual(all, Array.from({ length: 1100 }, (_, i) => i));
      const back: Deno.KvKey[] = [];
      for await (
        const e of kv.list({ prefix: ["n"], end: ["n", 500] }, { reverse: true, limit: 3 })
      ) {
        back.push(e.key);
      }
      assert.deepEqual(back, [["n", 499], ["n", 498], ["n", 497]]);
      const [x, y] = await kv.getMany<[{ i: number }, unknown]>([["n", 7], ["missing"]]);
      assert.equal(x.value?.i, 7);
      assert.equal(y.versionstamp, null);
      // A check makes the atomic one txn: beyond 128 ops it is refused, not split.
      const big = kv.atomic().check(x);
      for (let i = 0; i < 200; i++) big.set(["m", i], i);
      await assert.rejects(big.commit(), TypeError);
      // Checks: a stale versionstamp fails the commit, a fresh one passes.
      assert.equal((await kv.atomic().check(x).set(["n", 7], 0).commit()).ok, true);
      assert.equal((await kv.atomic().check(x).set(["n", 7], 1).commit()).ok, false);
      assert.equal(
        (await kv.atomic().check({ key: ["new"], versionstamp: null }).set(["new"], 1).commit()).ok,
        true,
      );
      assert.equal(
        (await kv.atomic().check({ key: ["new"], versionstamp: null }).set(["new"], 2).commit()).ok,
        false,
      );
      // expireIn: keys expiring in the same minute share one lease.
      await kv.atomic().set(["t", 1], 1, { expireIn: 5000 }).set(["t", 2], 2, { expireIn: 5100 })
        .commit();
      const leases = await rawLeases(cluster.endpoints[0], "/raw/");
      assert.equal(leases.size, 1);
    } finally {
      kv.close();
      await kv.closed();
    }
  });
});

/** The distinct lease ids on keys under `prefix`, read straight from the gateway. */
async function rawLeases(endpoint: string, prefix: string): Promise<Set<string>> {
  const key = btoa(prefix);
  const end = btoa(
    prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1),
  );
  const res = await fetch(`${endpoint}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key, range_end: end }),
  });
  const body = await res.json() as { kvs?: { lease?: string }[] };
  return new Set((body.kvs ?? []).flatMap((k) => k.lease === undefined ? [] : [k.lease]));
}

/** Compacts the cluster's history up to its current revision, straight through the gateway. */
async function compact(endpoint: string): Promise<void> {
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${endpoint}${path}`, { method: "POST", body: JSON.stringify(body) });
    return await res.json() as { header?: { revision?: string } };
  };
  const { header } = await post("/v3/kv/range", { key: btoa("x") });
  await post("/v3/kv/compaction", { revision: header?.revision, physical: true });
}

Deno.test({
  name: "etcd: two nodes merging their unlock tables at once keep the union and the later expiries",
  ...opts,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    await withTwoStores(cluster, async (a, b) => {
      const now = Date.now();
      const unlock = (i: number, expiresAt: number) => ({
        ip: `198.51.100.${i}`,
        user: "alice",
        unlockedAt: now,
        lastSeen: expiresAt - 3_600_000,
        expiresAt,
        drift: 0,
        flows: 1,
        bytes: 1,
        wanAddress: "",
      });
      const hour = now + 3_600_000;
      // Both hold .1-.100; A saw traffic on the even ones lately, B on the odd ones; A alone .200.
      const tableA = [
        ...Array.from({ length: 100 }, (_, k) => unlock(k + 1, hour + (k % 2 === 1 ? 120_000 : 0))),
        unlock(200, hour),
      ];
      const tableB = Array.from(
        { length: 100 },
        (_, k) => unlock(k + 1, hour + (k % 2 === 0 ? 120_000 : 0)),
      );
      await a.unlocks.mergeAll(tableB.map((u) => ({ ...u, expiresAt: hour, lastSeen: now })));
      await Promise.all([a.unlocks.mergeAll(tableA), b.unlocks.mergeAll(tableB)]);
      const saved = await b.unlocks.listUnlocks();
      assert.equal(saved.length, 101);
      for (const u of saved) {
        assert.equal(u.expiresAt, u.ip.endsWith(".200") ? hour : hour + 120_000, u.ip);
      }
    });
  });
});

Deno.test({
  name: "etcd: over TLS with a client certificate and etcd's own user authentication",
  ...opts,
}, async () => {
  await withEtcdCluster(
    async (cluster) => {
      const http = (await cluster.httpClient())!;
      const dir = await Deno.makeTempDir({ prefix: "kgt-etcd-tls-" });
      try {
        const admin = async (path: string, body: unknown) => {
          const res = await fetch(`${cluster.endpoints[0]}${path}`, {
            method: "POST",
            body: JSON.stringify(body),
            client: http,
          });
          assert.equal(res.status, 200, `${path}: ${await res.text()}`);
        };
        await admin("/v3/auth/role/add", { name: "root" });
        await admin("/v3/auth/user/add", { name: "root", password: "root-pw" });
        await admin("/v3/auth/user/grant", { user: "root", role: "root" });
        await admin("/v3/auth/enable", {});
        const { ca, clientCert: cert, clientKey: key } = cluster.pki;
        const target: EtcdStoreTarget = {
          backend: "etcd",
          path: `${dir}/kg`,
          endpoints: cluster.endpoints,
          prefix: "/knockgate/",
          tls: { ca, cert, key },
          username: "root",
          password: "root-pw",
        };
        const store = await openEtcdStore(target);
        try {
          await store.users.createUser(user("alice", 41001), "root");
          assert.equal((await store.users.getUser("alice")).knock.firstPort, 41001);
          assert.ok(store.health().connected);
        } finally {
          store.close();
        }
        await assert.rejects(
          openEtcdStore({ ...target, password: "wrong" }),
          /authentication failed/,
        );
        await assert.rejects(openEtcdStore({ ...target, tls: { ca } }), StoreUnavailableError);
      } finally {
        http.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
    1,
    true,
  );
});

Deno.test({
  name:
    "etcd: a knock step claimed at once through A and B for two IPs: exactly one wins; the same IP: both; B hears the record",
  ...opts,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    await withTwoStores(cluster, async (a, b) => {
      const heard: unknown[] = [];
      b.onChange((c) => heard.push(...(c.knockState ?? [])));
      const expiresAt = Date.now() + 90_000;
      const claim = (user: string, step: number, ip: string) => ({
        type: "replay" as const,
        user,
        step,
        ip,
        expiresAt,
      });
      for (let step = 1000; step < 1010; step++) {
        const [x, y] = await Promise.all([
          a.knockState.claim(claim("alice", step, "203.0.113.10")),
          b.knockState.claim(claim("alice", step, "203.0.113.20")),
        ]);
        assert.equal(Number(x.granted) + Number(y.granted), 1, `step ${step}`);
        const loser = x.granted ? y : x;
        assert.equal(
          loser.granted ? "" : loser.firstIp,
          x.granted ? "203.0.113.10" : "203.0.113.20",
        );
        // Claimed again by the winner's IP (at either node): granted, nothing changes.
        const winner = x.granted ? "203.0.113.10" : "203.0.113.20";
        assert.deepEqual(await b.knockState.claim(claim("alice", step, winner)), { granted: true });
      }
      const both = await Promise.all([
        a.knockState.claim(claim("bob", 7, "198.51.100.7")),
        b.knockState.claim(claim("bob", 7, "198.51.100.7")),
      ]);
      assert.deepEqual(both, [{ granted: true }, { granted: true }]);
      await until("B to hear every claimed record", () => heard.length >= 11);
      assert.ok(heard.some((r) => (r as { user: string }).user === "bob"));
      // The claims are the replay memory a node restores at start.
      assert.equal((await b.knockState.list()).filter((r) => r.type === "replay").length, 11);
      for (let i = 0; i < 3; i++) await cluster.kill(i);
      await assert.rejects(
        a.knockState.claim(claim("alice", 2000, "203.0.113.10")),
        StoreUnavailableError,
      );
    });
  });
});

Deno.test("etcd: a checked txn sent twice (its answer lost) is told from another node's by its bytes", () => {
  const enc = (k: Deno.KvKey) => new TextEncoder().encode(JSON.stringify(k));
  const mine = lastPerKey([
    { type: "set", key: ["a"], bytes: Uint8Array.of(1, 2) },
    { type: "delete", key: ["b"] },
  ], enc);
  const kv = (value: Uint8Array, rev: number) => ({
    response_range: {
      kvs: [{ key: "", value: btoa(String.fromCharCode(...value)), mod_revision: String(rev) }],
    },
  });
  const none = { response_range: {} };
  assert.equal(ownCommit(mine, { responses: [kv(Uint8Array.of(1, 2), 41), none] }), 41);
  assert.equal(ownCommit(mine, { responses: [kv(Uint8Array.of(1, 3), 41), none] }), -1);
  assert.equal(
    ownCommit(mine, { responses: [kv(Uint8Array.of(1, 2), 41), kv(Uint8Array.of(0), 9)] }),
    -1,
  );
  assert.equal(ownCommit(mine, { responses: [none, none] }), -1);
});

/**
 * A TCP relay to `upstream` that, while `armed`, loses the answer to the next
 * checked txn (a request with a `compare`): the member commits it, the
 * client sees its connection drop, as when an answer is lost to a timeout.
 */
function lossyRelay(upstream: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const state = { armed: false, lost: 0 };
  const serve = async () => {
    for await (const conn of listener) {
      (async () => {
        const up = await Deno.connect({
          hostname: "127.0.0.1",
          port: Number(new URL(upstream).port),
        });
        let dropNext = false;
        const toUp = (async () => {
          const buf = new Uint8Array(65536);
          for (;;) {
            const n = await conn.read(buf).catch(() => null);
            if (n === null) break;
            const text = new TextDecoder().decode(buf.subarray(0, n));
            if (state.armed && text.startsWith("POST /v3/kv/txn") && text.includes('"compare"')) {
              state.armed = false;
              dropNext = true;
            }
            await up.write(buf.subarray(0, n)).catch(() => {});
          }
        })();
        const buf = new Uint8Array(65536);
        for (;;) {
          const n = await up.read(buf).catch(() => null);
          if (n === null) break;
          if (dropNext) {
            state.lost++;
            break; // the member answered; the client never hears it
          }
          await conn.write(buf.subarray(0, n)).catch(() => {});
        }
        try {
          conn.close();
        } catch { /* closed */ }
        try {
          up.close();
        } catch { /* closed */ }
        await toUp;
      })();
    }
  };
  const done = serve().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    close: async () => {
      listener.close();
      await done;
    },
  };
}

Deno.test({
  name:
    "etcd: a checked write whose answer was lost (committed, then sent to the next member) succeeds",
  ...opts,
}, async () => {
  await withEtcdCluster(async (cluster) => {
    const relay = lossyRelay(cluster.endpoints[0]);
    try {
      await withTwoStores(cluster, async (_a, b) => {
        await b.users.createUser(user("alice", 41001), "root");
        relay.state.armed = true;
        await b.users.deleteUser("alice", "root"); // was: `user "alice" does not exist`
        assert.equal(relay.state.lost, 1, "the delete's answer was lost");
        assert.equal(await b.users.findUser("alice"), null);
        relay.state.armed = true;
        await b.users.createUser(user("bob", 41002), "root"); // was: a clash with itself
        assert.equal(relay.state.lost, 2);
        assert.equal((await b.users.getUser("bob")).knock.firstPort, 41002);
      }, [relay.url, ...cluster.endpoints.slice(1)]);
    } finally {
      await relay.close();
    }
  });
});
