/**
 * Configuration clashes through the appliance's real API in the lab: every
 * write that would clash (a user's first knock port on a forward, on the
 * management port or on another user's; a forward on a first knock port or
 * the management port, to the WAN or LAN address, the LAN network or
 * broadcast address or outside the LAN, for unknown users, overlapping
 * another forward) is refused with a 4xx whose `problems` name the field and
 * the clash, and the existing forward keeps working afterwards.
 */
import assert from "node:assert/strict";
import { startLab } from "../../scripts/lab/appliance.ts";
import { LAB } from "../../scripts/lab/topology.ts";
import { ALICE, curl, knock, labSupported, sleep } from "./_helpers.ts";
import { api, signIn } from "./_api.ts";

interface Problem {
  field: string;
  message: string;
  clash?: string;
}

/** The error envelope of a refused write. */
interface Refusal {
  error?: { field?: string; message: string };
  problems?: Problem[];
}

const at = (start: number, end = start) => ({ start, end });
const forward = {
  name: "clash",
  protocol: "tcp",
  publicPorts: at(52240),
  privateAddress: LAB.server,
  privatePorts: at(8082),
};
const user = { name: "bob", password: "a long enough password", role: "viewer" };
const knockAt = (firstPort: number, transport = "any") => ({
  ...user,
  knock: { enabled: true, firstPort, length: 3, transport },
});

/** [what, method, path, body, status, field, message, clash] */
type Case = [string, string, string, unknown, number, string, RegExp, RegExp];

// The lab's configuration: alice knocks on 41001; web tcp 52201 -> 192.0.2.12:8080,
// iperf both 52202, range tcp 52210-52219, udp-echo udp 52203; management tcp 8443;
// WAN 198.51.100.1, LAN 192.0.2.1 in 192.0.2.0/24.
const CASES: Case[] = [
  [
    "user on a forward's public port",
    "POST",
    "/users",
    knockAt(52201),
    409,
    "knock.firstPort",
    /public tcp port of rule "web"/,
    /rule "web" publicPorts 52201/,
  ],
  [
    "tcp-only user in a forward's range",
    "POST",
    "/users",
    knockAt(52215, "tcp"),
    409,
    "knock.firstPort",
    /rule "range"/,
    /rule "range" publicPorts 52210-52219/,
  ],
  [
    "udp-only user on a both forward",
    "POST",
    "/users",
    knockAt(52202, "udp"),
    409,
    "knock.firstPort",
    /public udp port of rule "iperf"/,
    /rule "iperf" publicPorts 52202/,
  ],
  [
    "user on the management port",
    "POST",
    "/users",
    knockAt(8443),
    422,
    "knock.firstPort",
    /management port/,
    /management port 8443/,
  ],
  [
    "user on another user's first port",
    "POST",
    "/users",
    knockAt(ALICE.firstPort),
    409,
    "knock.firstPort",
    /also user "alice"'s/,
    /user "alice" knock.firstPort 41001/,
  ],
  [
    "alice moved onto a forward",
    "PATCH",
    "/users/alice",
    { knock: { firstPort: 52203 } },
    409,
    "knock.firstPort",
    /public udp port of rule "udp-echo"/,
    /rule "udp-echo"/,
  ],
  [
    "forward on a first knock port",
    "POST",
    "/rules/forwards",
    { ...forward, publicPorts: at(41000, 41002), privatePorts: at(8082) },
    409,
    "publicPorts",
    /user "alice"'s first knock port/,
    /user "alice" knock.firstPort 41001/,
  ],
  [
    "forward on the management port",
    "POST",
    "/rules/forwards",
    { ...forward, publicPorts: at(8443) },
    422,
    "publicPorts",
    /management port/,
    /management port 8443/,
  ],
  [
    "forward to the WAN address",
    "POST",
    "/rules/forwards",
    { ...forward, privateAddress: LAB.wan },
    422,
    "privateAddress",
    /is the WAN address/,
    /WAN address 198\.51\.100\.1/,
  ],
  [
    "forward to the LAN address",
    "POST",
    "/rules/forwards",
    { ...forward, privateAddress: LAB.lan },
    422,
    "privateAddress",
    /LAN address/,
    /LAN address 192\.0\.2\.1/,
  ],
  [
    "forward to the LAN broadcast",
    "POST",
    "/rules/forwards",
    { ...forward, privateAddress: "192.0.2.255" },
    422,
    "privateAddress",
    /broadcast/,
    /LAN network 192\.0\.2\.0\/24/,
  ],
  [
    "forward to the LAN network address",
    "POST",
    "/rules/forwards",
    { ...forward, privateAddress: "192.0.2.0" },
    422,
    "privateAddress",
    /LAN network address/,
    /LAN network/,
  ],
  [
    "forward outside the LAN",
    "POST",
    "/rules/forwards",
    { ...forward, privateAddress: LAB.client },
    422,
    "privateAddress",
    /outside the LAN network/,
    /LAN network/,
  ],
  [
    "forward for unknown users",
    "POST",
    "/rules/forwards",
    { ...forward, users: ["alice", "ghost"] },
    422,
    "users[1]",
    /user "ghost" does not exist/,
    /user "ghost"/,
  ],
  [
    "forward overlapping another",
    "POST",
    "/rules/forwards",
    { ...forward, protocol: "both", publicPorts: at(52200, 52201), privatePorts: at(8082) },
    409,
    "publicPorts",
    /overlaps rule "web"/,
    /rule "web" publicPorts 52201/,
  ],
  [
    "open ports overlapping a forward",
    "POST",
    "/rules/open-ports",
    { name: "open", privateAddress: LAB.server, ports: [{ protocol: "udp", ports: at(52202) }] },
    409,
    "ports[0].ports",
    /overlaps rule "iperf"/,
    /rule "iperf"/,
  ],
  [
    "web moved onto alice's first port",
    "PUT",
    "/rules/forwards/web",
    { ...forward, name: "web", publicPorts: at(41001), privatePorts: at(8080) },
    409,
    "publicPorts",
    /user "alice"'s first knock port/,
    /user "alice"/,
  ],
];

Deno.test({
  name: "configuration clashes are refused through the real API; the forward keeps working",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await startLab();
  try {
    const token = await signIn(lab);
    await t.step("the seeded forward works after a knock", async () => {
      const k = await knock(lab, "client");
      assert.equal(k.code, 0, k.stderr);
      assert.match(await curl(lab, "client", `http://${LAB.wan}:52201/`) ?? "", /hello/);
    });
    const before = await api(lab, "GET", "/rules", { token });
    const usersBefore = await api(lab, "GET", "/users", { token });
    for (const [what, method, path, body, status, field, message, clash] of CASES) {
      await t.step(`${what}: ${status} naming ${field}`, async () => {
        const r = await api<Refusal>(lab, method, path, { token, body });
        assert.equal(r.status, status, JSON.stringify(r.body));
        assert.equal(r.body.error?.field, field, JSON.stringify(r.body));
        const p = r.body.problems?.find((x) => x.field === field);
        assert.ok(p, JSON.stringify(r.body));
        assert.match(p.message, message, p.message);
        assert.match(p.clash ?? "", clash, JSON.stringify(p));
      });
    }
    await t.step("several problems of one write come back at once", async () => {
      const r = await api<Refusal>(lab, "POST", "/rules/forwards", {
        token,
        body: {
          ...forward,
          publicPorts: at(41001),
          privatePorts: at(1, 2),
          privateAddress: LAB.wan,
          users: ["ghost"],
        },
      });
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.deepEqual(r.body.problems!.map((p) => p.field).sort(), [
        "privateAddress",
        "privatePorts",
        "publicPorts",
        "users[0]",
      ]);
    });
    await t.step("nothing was stored; the forward and alice's knock still work", async () => {
      assert.deepEqual((await api(lab, "GET", "/rules", { token })).body, before.body);
      assert.deepEqual((await api(lab, "GET", "/users", { token })).body, usersBefore.body);
      assert.match(await curl(lab, "client", `http://${LAB.wan}:52201/`) ?? "", /hello/);
      // A knock from the other client in a fresh TOTP step (the first one's is spent):
      // alice's first port still belongs to her.
      const step = Math.floor(Date.now() / 30_000);
      while (Math.floor(Date.now() / 30_000) === step) await sleep(500);
      const k = await knock(lab, "client2");
      assert.equal(k.code, 0, k.stderr);
      assert.match(await curl(lab, "client2", `http://${LAB.wan}:52201/`) ?? "", /hello/);
    });
  } finally {
    await lab.down();
  }
});
