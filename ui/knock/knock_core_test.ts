import assert from "node:assert/strict";
import { loadVectors } from "../../src/knock/_vectors.ts";
import { totpCode as appTotpCode } from "../../src/knock/totp.ts";
import { Secret } from "otpauth";
import { knockSequenceAt } from "../../src/knock/sequence.ts";
import {
  BLOCKED_PORTS,
  isBlockedPort,
  type KnockForm,
  planHolds,
  runKnocks,
  secondsLeft,
  selfTest,
  sequenceAt,
  serverAddress,
  serverError,
  throttleBoundMs,
  totpCode,
  urlHost,
  validateForm,
} from "./knock_core.ts";

const GOOD: KnockForm = {
  profile: "home",
  server: "198.51.100.1",
  firstPort: "41001",
  secret: "gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
  length: "3",
  delayMs: "100",
  thenPort: "",
};

Deno.test("totpCode (WebCrypto) reproduces every vector's code", async () => {
  for (const v of await loadVectors()) assert.equal(await totpCode(v.secret, v.unixTime), v.totp);
});

Deno.test("totpCode agrees with the appliance's otpauth-based code on random secrets", async () => {
  for (let i = 0; i < 50; i++) {
    const secret = new Secret({ size: 20 + (i % 13) }).base32;
    const t = Math.floor(Math.random() * 4_000_000_000);
    assert.equal(await totpCode(secret, t), appTotpCode(secret, t), `${secret} at ${t}`);
  }
});

Deno.test("selfTest passes on the vectors with both HMAC engines and reports a tampered case", async () => {
  const vectors = await loadVectors();
  const ok = await selfTest(vectors);
  assert.deepEqual(ok.engines, ["webcrypto", "noble"]);
  assert.deepEqual([ok.ok, ok.passed, ok.failed], [true, 2 * vectors.length, 0]);
  const bad = vectors.map((v, i) => i === 2 ? { ...v, sequence: [...v.sequence].reverse() } : v);
  const r = await selfTest(bad);
  assert.equal(r.ok, false);
  assert.deepEqual(r.cases.filter((c) => !c.ok).map((c) => `${c.engine} ${c.index}`), [
    "webcrypto 2",
    "noble 2",
  ]);
  assert.equal((await selfTest(vectors, [])).ok, false, "no engine checked is no pass");
});

Deno.test("the bundled HMAC engine alone derives what the appliance derives", async () => {
  for (const v of await loadVectors()) {
    assert.equal(await totpCode(v.secret, v.unixTime, "noble"), v.totp);
    assert.deepEqual(
      await sequenceAt(v.secret, v.unixTime, v.firstPort, v.length, "noble"),
      v.sequence,
    );
  }
  for (let i = 0; i < 50; i++) {
    const secret = new Secret({ size: 20 + (i % 13) }).base32;
    const t = Math.floor(Math.random() * 4_000_000_000);
    const [f, n] = [1024 + i * 997, 1 + (i % 8)];
    assert.deepEqual(
      await sequenceAt(secret, t, f, n, "noble"),
      await knockSequenceAt(secret, t, f, n),
      `${secret} at ${t}`,
    );
  }
});

Deno.test("validateForm accepts a good profile and normalises the secret", () => {
  const v = validateForm(GOOD);
  assert.ok(v.ok);
  assert.deepEqual(v.params, {
    profile: "home",
    server: "198.51.100.1",
    firstPort: 41001,
    secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    length: 3,
    delayMs: 100,
    thenPort: null,
  });
  const defaults = validateForm({ ...GOOD, length: "", delayMs: "", thenPort: "52201" });
  assert.ok(defaults.ok);
  assert.deepEqual(
    [defaults.params.length, defaults.params.delayMs, defaults.params.thenPort],
    [3, 100, 52201],
  );
});

Deno.test("validateForm names each field at fault", () => {
  const cases: [Partial<KnockForm>, keyof KnockForm, RegExp][] = [
    [{ server: "" }, "server", /Enter the appliance's address/],
    [{ server: "http://knock.example.net" }, "server", /without http/],
    [{ server: "198.51.100.1:41001" }, "server", /without a port/],
    [{ server: "2001:db8::1::2" }, "server", /2001:db8::1::2 is not an IPv6 address/],
    [{ server: "[2001:db8::1" }, "server", /not an IPv6 address/],
    [{ server: "[198.51.100.1]" }, "server", /not an IPv6 address/],
    [{ server: "fe80::1%wlan0" }, "server", /without a zone/],
    [{ server: "[2001:db8::1]:41001" }, "server", /without a port/],
    [{ server: "198.51.100.300" }, "server", /each part is 0\.\.255/],
    [{ server: "bad_name.example" }, "server", /not a host name/],
    [{ firstPort: "70000" }, "firstPort", /70000 is out of range 1\.\.65535/],
    [{ firstPort: "4x" }, "firstPort", /whole number/],
    [{ firstPort: "6000" }, "firstPort", /Browsers refuse to connect to port 6000/],
    [{ secret: "" }, "secret", /Enter the secret/],
    [{ secret: "GEZDGNBVGY3TQOJ1" }, "secret", /not valid base32.*"1" is not a base32 character/],
    [{ secret: "GEZDGNBVGY3TQOJQ" }, "secret", /holds 10 bytes/],
    [{ length: "9" }, "length", /9 is out of range 1\.\.8/],
    [{ delayMs: "10" }, "delayMs", /10 is out of range 20\.\.1500/],
    [{ thenPort: "0" }, "thenPort", /out of range/],
    [{ thenPort: "22" }, "thenPort", /refuse to connect to port 22/],
    [{ profile: "x".repeat(65) }, "profile", /at most 64/],
  ];
  for (const [edit, field, message] of cases) {
    const v = validateForm({ ...GOOD, ...edit });
    assert.ok(!v.ok, JSON.stringify(edit));
    assert.deepEqual(Object.keys(v.errors), [field], JSON.stringify(edit));
    assert.match(v.errors[field] ?? "", message);
  }
});

Deno.test("secret errors never echo the secret", () => {
  const v = validateForm({ ...GOOD, secret: "SECRETSECRET1" });
  assert.ok(!v.ok);
  assert.doesNotMatch(v.errors.secret ?? "", /SECRETSECRET/);
});

Deno.test("serverError accepts addresses of both families and names", () => {
  for (
    const s of [
      "198.51.100.1",
      "2001:db8::1",
      "[2001:db8::1]",
      "2001:DB8:0:0:0:0:0:1",
      "::ffff:198.51.100.1",
      "knock.example.net",
      "knock.example.net.",
      "a-b.c",
    ]
  ) {
    assert.equal(serverError(s), null, s);
  }
});

Deno.test("serverAddress: a literal's family and URL host; a name is the browser's to pick", () => {
  const cases: [string, ReturnType<typeof serverAddress>, string][] = [
    ["198.51.100.1", { address: "198.51.100.1", family: 4 }, "198.51.100.1"],
    ["2001:db8::1", { address: "2001:db8::1", family: 6 }, "[2001:db8::1]"],
    ["[2001:DB8:0::0001]", { address: "2001:db8::1", family: 6 }, "[2001:db8::1]"],
    ["::ffff:198.51.100.1", { address: "198.51.100.1", family: 4 }, "198.51.100.1"],
    ["knock.example.net", null, "knock.example.net"],
  ];
  for (const [server, address, host] of cases) {
    assert.deepEqual(serverAddress(server), address, server);
    assert.equal(urlHost(server), host, server);
    // The URL the page knocks parses back to the same host.
    assert.equal(new URL(`ws://${host}:41001/`).hostname, host.toLowerCase());
  }
  const v = validateForm({ ...GOOD, server: " [2001:DB8::1] " });
  assert.ok(v.ok);
  assert.equal(v.params.server, "2001:db8::1");
});

Deno.test("blocked ports: none in the derived range 16384..32767", () => {
  assert.ok(BLOCKED_PORTS.every((p) => p < 16384 || p > 32767));
  assert.ok(isBlockedPort(22) && isBlockedPort(10080) && !isBlockedPort(41001));
});

Deno.test("throttleBoundMs follows Chromium's WebSocket throttle, the attempt itself pending", () => {
  assert.equal(throttleBoundMs(0), 1); // 5000 * 2 / 65536 = 0.15
  assert.equal(throttleBoundMs(7), 20); // 5000 * 256 / 65536 = 19.5
  assert.equal(throttleBoundMs(15), 5000);
  assert.equal(throttleBoundMs(40), 5000);
});

Deno.test("planHolds: the delay when fresh, longer once throttled or for a name", () => {
  assert.deepEqual(planHolds(4, 100, 0, false), [100, 100, 100, 100]);
  assert.deepEqual(planHolds(2, 20, 0, false), [26, 26]);
  assert.deepEqual(planHolds(2, 100, 0, true), [1500, 100]);
  assert.deepEqual(planHolds(4, 100, 9, false), [104, 182, 338, 650]);
});

Deno.test("runKnocks: one attempt at a time, in order, each closed before the next", async () => {
  const events: string[] = [];
  let clock = 0;
  const records = await runKnocks([41001, 22000, 20774], [100, 50, 25], {
    connect: (port) => {
      events.push(`open ${port}`);
      return { close: () => events.push(`close ${port}`) };
    },
    sleep: (ms) => {
      clock += ms;
      return Promise.resolve();
    },
    now: () => clock,
  });
  assert.deepEqual(events, [
    "open 41001",
    "close 41001",
    "open 22000",
    "close 22000",
    "open 20774",
    "close 20774",
  ]);
  assert.deepEqual(records.map((r) => [r.port, r.atMs]), [[41001, 0], [22000, 100], [20774, 150]]);
});

Deno.test("secondsLeft counts down the 30 s step", () => {
  assert.equal(secondsLeft(60), 30);
  assert.equal(secondsLeft(89.5), 1);
});
