/**
 * Property: whatever JSON (or junk) reaches any route, with any path and
 * query values, the answer is never a 5xx, and it is always the JSON error
 * shape when it is an error.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { withApi } from "./_test_util.ts";

type Json = unknown;

/** A valid body per route, mutated by the property to reach deep validation. */
const EXAMPLES: Record<string, Json> = {
  "POST /api/v1/auth/login": { username: "admin", password: "password1", code: "123456" },
  "POST /api/v1/auth/tokens": { ttlDays: 1 },
  "POST /api/v1/users": {
    name: "zed",
    password: "password1",
    role: "viewer",
    knock: { enabled: true, firstPort: 43000, length: 3, transport: "any" },
    allowedRules: ["*"],
  },
  "PATCH /api/v1/users/{name}": { role: "viewer", knock: { firstPort: 43001 }, allowedRules: [] },
  "POST /api/v1/users/{name}/mfa/verify": { code: "123456" },
  "POST /api/v1/rules/forwards": {
    name: "ssh",
    protocol: "tcp",
    publicPorts: { start: 52222, end: 52222 },
    privateAddress: "192.0.2.20",
    privatePorts: { start: 22, end: 22 },
    users: [],
  },
  "PUT /api/v1/rules/forwards/{name}": {
    name: "web",
    publicPorts: { start: 52201, end: 52201 },
    privateAddress: "192.0.2.12",
  },
  "POST /api/v1/rules/open-ports": {
    name: "games",
    privateAddress: "192.0.2.30",
    ports: [{ protocol: "udp", ports: { start: 53000, end: 53010 } }],
  },
  "PUT /api/v1/rules/open-ports/{name}": {
    name: "games",
    privateAddress: "192.0.2.30",
    ports: [{ protocol: "both", ports: { start: 53000, end: 53000 } }],
  },
  "PATCH /api/v1/settings": {
    idleTimeoutSeconds: 100,
    knock: { failureLimit: 3, penaltySeconds: 10 },
    syslog: { collectors: [{ host: "192.0.2.99", port: 514, format: "rfc5424" }] },
    limits: { maxConnections: 100 },
  },
};

/** Routes left out: logout would end the test's own token; the stream never ends. */
const SKIP = new Set(["POST /api/v1/auth/logout", "GET /api/v1/events/stream"]);

/** Every leaf path of `v`. */
function leaves(v: Json, path: (string | number)[] = []): (string | number)[][] {
  if (v !== null && typeof v === "object") {
    const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
    const out = entries.flatMap(([k, x]) => leaves(x, [...path, k]));
    return out.length > 0 ? out : [path];
  }
  return [path];
}

/** `v` with the value at `path` replaced (or deleted when `value` is undefined). */
function setAt(v: Json, path: (string | number)[], value: Json | undefined): Json {
  if (path.length === 0) return value;
  const copy = structuredClone(v) as Record<string | number, Json>;
  let at = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, Json>;
  const last = path[path.length - 1];
  if (value === undefined) delete at[last];
  else at[last] = value;
  return copy;
}

const mutation = fc.array(
  fc.tuple(fc.nat(), fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined })),
  { maxLength: 3 },
);

/** A body: the example mutated, any JSON value, or a string that may not be JSON. */
function bodyFor(key: string): fc.Arbitrary<{ raw: string }> {
  const example: Json = EXAMPLES[key] ?? {};
  const mutated = mutation.map((ms) => {
    let v: Json = example;
    for (const [i, value] of ms) {
      const ls = leaves(v);
      v = setAt(v, ls[i % ls.length], value);
    }
    return v;
  });
  return fc.oneof(
    { weight: 3, arbitrary: mutated.map((v) => ({ raw: JSON.stringify(v) ?? "null" })) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => ({ raw: JSON.stringify(v) })) },
    { weight: 1, arbitrary: fc.string().map((raw) => ({ raw })) },
  );
}

/** Path parameter values: names that exist, ones that do not, and junk (never "admin"). */
const paramValue = fc.oneof(
  fc.constantFrom("alice", "web", "games", "203.0.113.10", "a".repeat(64), "0".repeat(64)),
  fc.string({ minLength: 1, maxLength: 80 }).filter((s) =>
    s !== "admin" && s !== "." && s !== ".."
  ),
);

const queryValue = fc.oneof(
  fc.constantFrom("1", "0", "-1", "100", "1e3", "abc", "knock-failure", ""),
  fc.string({ maxLength: 20 }),
);

Deno.test("property: random bodies, params and queries never yield a 5xx", async () => {
  await withApi(async (h) => {
    const admin = await h.adminClient();
    h.datapath.unlock("203.0.113.10", "alice", h.clock.now());
    const doc = await h.anon.json("GET", "/api/v1/openapi.json");
    const routes: { method: string; path: string }[] = [];
    for (const [path, ops] of Object.entries(doc.body.paths as Record<string, object>)) {
      for (const method of Object.keys(ops)) {
        const key = `${method.toUpperCase()} ${path}`;
        if (!SKIP.has(key)) routes.push({ method: method.toUpperCase(), path });
      }
    }
    assert.ok(routes.length >= 30, `${routes.length} routes`);
    const request = fc.constantFrom(...routes).chain((r) =>
      fc.record({
        route: fc.constant(r),
        params: fc.array(paramValue, { minLength: 3, maxLength: 3 }),
        query: fc.dictionary(
          fc.constantFrom("limit", "type", "after", "before", "since", "x"),
          queryValue,
          { maxKeys: 3 },
        ),
        body: bodyFor(`${r.method} ${r.path}`),
      })
    );
    await fc.assert(
      fc.asyncProperty(request, async ({ route, params, query, body }) => {
        let i = 0;
        const path = route.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(params[i++]));
        const qs = new URLSearchParams(query).toString();
        const url = qs === "" ? path : `${path}?${qs}`;
        const hasBody = route.method !== "GET" && route.method !== "DELETE";
        const res = await admin.request(route.method, url, hasBody ? { raw: body.raw } : {});
        const text = await res.text();
        assert.ok(res.status < 500, `${route.method} ${url} ${body.raw} -> ${res.status} ${text}`);
        if (res.status >= 400) {
          const e = JSON.parse(text).error;
          assert.equal(e.status, res.status);
          assert.equal(typeof e.code, "string");
          assert.equal(typeof e.message, "string");
        }
      }),
      { numRuns: 800 },
    );
    // The admin's token survived the run.
    assert.equal((await admin.json("GET", "/api/v1/auth/me")).status, 200);
  });
});
