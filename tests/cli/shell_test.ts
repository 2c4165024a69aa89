/**
 * The admin shell against a real management API in this process (real KV
 * store in a temp dir, fake data plane with one unlock): login and the
 * saved token, exec portknock, users, rules, unlocks, settings, events,
 * JSON output, exit codes; and the interactive loop fed through a pipe.
 */
import assert from "node:assert/strict";
import type {
  Forward,
  OpenPorts,
  Settings,
  Unlock,
  User,
  UserEnrollment,
} from "../../src/cli/shell/api_types.ts";
import { formatAgo, formatTime, formatUntil } from "../../src/cli/shell/format.ts";
import { totpCode } from "../../src/knock/totp.ts";
import {
  dualStackConfig,
  dualStackTwoUplinkConfig,
  dualStackTwoUplinkStatus,
  twoUplinkConfig,
  twoUplinkStatus,
} from "../../src/api/_test_util.ts";
import type { Config } from "../../src/config/types.ts";
import { startApi, type TestApi, UNLOCKED_IP } from "./_api.ts";
import { type Run, shell, shellJson, type TestIo, testIo } from "./_io.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** One test's world: the API, a private config dir, and an io signed in by token. */
interface World {
  api: TestApi;
  dir: string;
  /** An io with no token (KNOCKGATE_URL set). */
  anon: TestIo;
  /** An io whose environment carries an administrator token. */
  io: TestIo;
  /** Runs the shell as the administrator. */
  sh(...args: string[]): Promise<Run>;
}

async function withWorld(fn: (w: World) => Promise<void>, config?: Config): Promise<void> {
  const api = await startApi({ manual: true, config });
  const dir = await Deno.makeTempDir({ prefix: "kgt-shell-home-" });
  try {
    const env = { XDG_CONFIG_HOME: dir, HOME: dir, KNOCKGATE_URL: api.url };
    const now = () => api.clock.now();
    const anon = testIo(env, null, now);
    const io = testIo({ ...env, KNOCKGATE_TOKEN: await api.adminToken() }, null, now);
    await fn({ api, dir, anon, io, sh: (...args) => shell(io, ...args) });
  } finally {
    await api.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("shell: login saves a 0600 token file that later commands use", async () => {
  await withWorld(async ({ api, dir, anon }) => {
    const a = api.admin;
    const r = await shell(
      anon,
      "login",
      a.name,
      "--password",
      a.password,
      "--code",
      api.code(a.totpSecret),
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Signed in to http:\/\/127\.0\.0\.1:\d+ as admin \(administrator\)/);
    const file = `${dir}/knockgate/shell.json`;
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/knockgate`)).mode! & 0o777, 0o700);
    const saved = JSON.parse(await Deno.readTextFile(file));
    assert.equal(saved.url, api.url);
    assert.match(saved.token, /^[0-9a-f]{64}$/);
    assert.equal(saved.user, "admin");

    // The saved token is used (KNOCKGATE_URL matches the saved URL)...
    const me = await shell(anon, "whoami");
    assert.equal(me.code, 0, me.err);
    assert.match(me.out, /^admin \(administrator\) at .* token valid until/);
    // ...but never sent to another appliance.
    const other = await shell(anon, "--url", "http://127.0.0.1:1", "whoami");
    assert.equal(other.code, 1);
    assert.match(other.err, /Cannot reach http:\/\/127\.0\.0\.1:1/);

    // logout revokes the token and forgets it.
    const out = await shell(anon, "logout");
    assert.equal(out.code, 0, out.err);
    assert.match(out.out, /token revoked/);
    assert.equal(JSON.parse(await Deno.readTextFile(file)).token, undefined);
    const after = await shell(anon, "whoami");
    assert.equal(after.code, 1);
    assert.match(after.err, /hint: sign in with "login"/);
  });
});

Deno.test("shell: login refuses a wrong code with exit 1 and asks for what is missing", async () => {
  await withWorld(async ({ api, dir, anon }) => {
    const a = api.admin;
    const bad = await shell(anon, "login", a.name, "-p", a.password, "-c", "000000");
    assert.equal(bad.code, 1);
    assert.match(bad.err, /Wrong user name, password or code/);
    // No terminal to ask on: a usage error.
    const missing = await shell(anon, "login", a.name);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /Password is required \(no terminal to ask\)/);
    // With a terminal the missing values are asked for.
    const asked: string[] = [];
    const prompter = {
      input: (m: string) => {
        asked.push(m);
        return Promise.resolve(m === "User:" ? a.name : api.code(a.totpSecret));
      },
      password: (m: string) => {
        asked.push(m);
        return Promise.resolve(a.password);
      },
    };
    const io = testIo({ XDG_CONFIG_HOME: dir, KNOCKGATE_URL: api.url }, prompter);
    const ok = await shell(io, "login", "--print-token");
    assert.equal(ok.code, 0, ok.err);
    assert.deepEqual(asked, ["User:", "Password:", "TOTP code:"]);
    assert.match(ok.out, /^[0-9a-f]{64}$/);
  });
});

Deno.test("shell: exec portknock lists the unlocked IP as a table and as JSON", async () => {
  await withWorld(async ({ api, sh }) => {
    const r = await sh("exec", "portknock");
    assert.equal(r.code, 0, r.err);
    const heads = ["IP", "WAN address", "User", "Since", "Last seen", "Expires", "Drift", "Flows"];
    for (const h of [...heads, "Bytes"]) {
      assert.ok(r.out.includes(h), `header ${h} in\n${r.out}`);
    }
    const row = r.out.split("\n").find((l) => l.includes(UNLOCKED_IP))!;
    // The WAN address the knock arrived on, then the user.
    assert.match(row, /│ 198\.51\.100\.1 +│ alice +│/);
    const now = api.clock.now();
    const u = api.datapath.unlockTable.get(UNLOCKED_IP)!;
    assert.ok(row.includes(formatTime(u.unlockedAt)), row);
    assert.ok(row.includes(formatAgo(u.lastSeen, now)), row);
    assert.ok(row.includes(formatUntil(u.expiresAt, now)), row);
    assert.match(row, /│ -1 +│ 2 +│ 1\.5 KiB/);
    const body = JSON.parse((await sh("exec", "portknock", "--json")).out) as { unlocks: Unlock[] };
    assert.equal(body.unlocks.length, 1);
    assert.equal(body.unlocks[0].ip, UNLOCKED_IP);
    assert.equal(body.unlocks[0].user, "alice");
    assert.equal(body.unlocks[0].wanAddress, "198.51.100.1");
    // unlock list is the same list.
    assert.ok((await sh("unlock", "list")).out.includes(UNLOCKED_IP));
  });
});

Deno.test("shell: users add, verify with a code from the new secret, show, rotate, delete", async () => {
  await withWorld(async ({ api, sh, io }) => {
    const add = await sh(
      "users",
      "add",
      "bob",
      "--role",
      "operator",
      "-p",
      "bob-password-1",
      "--knock-port",
      "42001",
    );
    assert.equal(add.code, 0, add.err);
    assert.match(add.out, /Created user bob \(operator\); not active until verified/);
    assert.match(add.out, /users verify bob <code from the authenticator>/);
    const secret = /TOTP secret +│ ([A-Z2-7]+)/.exec(add.out)![1];

    const wrong = await sh("users", "verify", "bob", totpCode(secret, 1));
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /does not match the secret being enrolled/);
    const verify = await sh("users", "verify", "bob", api.code(secret));
    assert.equal(verify.code, 0, verify.err);
    assert.match(verify.out, /User bob is enrolled and active/);

    const bob = await shellJson<User>(io, "users", "show", "bob");
    assert.equal(bob.role, "operator");
    assert.deepEqual(bob.mfa, { enrolled: true, rotating: false });
    assert.deepEqual(bob.knock, { enabled: true, firstPort: 42001, length: 3, transport: "any" });
    const list = await sh("users", "list");
    assert.match(list.out, /│ bob +│ operator +│ enrolled +│ 42001 \+3 any/);

    const rot = await shellJson<UserEnrollment>(io, "users", "rotate", "bob");
    assert.notEqual(rot.enrollment.secret, secret);
    assert.equal(rot.user.mfa.rotating, true);
    const set = await sh("users", "set", "bob", "--no-knock", "--role", "viewer");
    assert.equal(set.code, 0, set.err);
    assert.match(set.out, /Role +│ viewer/);

    // A duplicate name is the API's conflict: exit 1.
    const dup = await sh("users", "add", "bob", "-p", "another-password");
    assert.equal(dup.code, 1);
    const del = await sh("users", "delete", "bob");
    assert.equal(del.code, 0, del.err);
    assert.equal((await sh("users", "show", "bob")).code, 1);
  });
});

Deno.test("shell: rules add-forward with a bad port shows the API's field message", async () => {
  await withWorld(async ({ sh }) => {
    const big = await sh(
      "rules",
      "add-forward",
      "ssh",
      "--public",
      "70000",
      "--to",
      "192.0.2.12:22",
    );
    assert.equal(big.code, 1);
    assert.match(big.err, /^error: Invalid request body: publicPorts\.start: /);
    const json = await sh(
      "rules",
      "add-forward",
      "ssh",
      "--public",
      "70000",
      "--to",
      "192.0.2.12",
      "--json",
    );
    assert.equal(json.code, 1);
    const e = JSON.parse(json.err).error;
    assert.equal(e.status, 400);
    assert.equal(e.code, "invalid_input");
    assert.equal(e.field, "publicPorts.start");
    // Not a port at all: the shell's own usage error, exit 2.
    const word = await sh("rules", "add-forward", "ssh", "--public", "ssh", "--to", "192.0.2.12");
    assert.equal(word.code, 2);
    assert.match(word.err, /Cannot parse public ports "ssh"/);
    const missing = await sh("rules", "add-forward", "ssh", "--to", "192.0.2.12");
    assert.equal(missing.code, 2);
    assert.match(missing.err, /required option '--public <ports>' not specified/);
    // A bad private address is the API's message naming the field.
    const addr = await sh(
      "rules",
      "add-forward",
      "ssh",
      "--public",
      "2222",
      "--to",
      "224.0.0.1:22",
    );
    assert.equal(addr.code, 1);
    assert.match(
      addr.err,
      /Cannot save rule "ssh": private address "224\.0\.0\.1" is not a unicast/,
    );
    assert.match(addr.err, /\(field privateAddress\)/);
  });
});

Deno.test("shell: rules add-forward, add-open, disable, enable, delete", async () => {
  await withWorld(async ({ sh, io }) => {
    const add = await sh(
      "rules",
      "add-forward",
      "ssh",
      "--public",
      "2222",
      "--to",
      "192.0.2.12:22",
      "--users",
      "alice",
    );
    assert.equal(add.code, 0, add.err);
    assert.match(
      add.out,
      /│ ssh +│ forward +│ yes +│ all +│ tcp 2222 +│ 192\.0\.2\.12:22 +│ yes +│ alice/,
    );
    const open = await sh(
      "rules",
      "add-open",
      "dns",
      "--to",
      "192.0.2.53",
      "--ports",
      "udp:53,tcp:53,8000-8001",
      "--no-knock",
    );
    assert.equal(open.code, 0, open.err);
    assert.match(open.out, /udp 53, tcp 53, tcp 8000-8001/);
    assert.equal((await sh("rules", "disable", "ssh")).code, 0);
    assert.equal((await sh("rules", "disable", "dns")).code, 0);
    let all = await shellJson<
      { forwards: Forward[]; openPorts: { name: string; enabled: boolean }[] }
    >(io, "rules", "list");
    assert.equal(all.forwards.find((f) => f.name === "ssh")!.enabled, false);
    assert.equal(all.forwards.find((f) => f.name === "ssh")!.users[0], "alice");
    assert.equal(all.openPorts.find((f) => f.name === "dns")!.enabled, false);
    assert.equal((await sh("rules", "enable", "ssh")).code, 0);
    all = await shellJson(io, "rules", "list");
    assert.equal(all.forwards.find((f) => f.name === "ssh")!.enabled, true);
    assert.equal((await sh("rules", "delete", "ssh")).code, 0);
    assert.equal((await sh("rules", "delete", "dns")).code, 0);
    const gone = await sh("rules", "delete", "ssh");
    assert.equal(gone.code, 1);
    assert.match(gone.err, /rule "ssh" does not exist/);
    assert.match((await sh("rules", "list")).out, /│ web +│ forward/);
  });
});

Deno.test("shell: rules bound to an uplink and address: add, list, bind, enable keeps it", async () => {
  await withWorld(async ({ sh, io }) => {
    const add = await sh(
      "rules",
      "add-forward",
      "ssh",
      "--public",
      "2222",
      "--to",
      "192.0.2.12:22",
      "--uplink",
      "isp-a",
      "--wan-address",
      "198.51.100.2",
    );
    assert.equal(add.code, 0, add.err);
    assert.match(add.out, /│ ssh +│ forward +│ yes +│ isp-a 198\.51\.100\.2 +│ tcp 2222 +│/);
    const open = await sh(
      "rules",
      "add-open",
      "dns",
      "--to",
      "192.0.2.53",
      "--ports",
      "udp:53",
      "--uplink",
      "isp-b",
    );
    assert.equal(open.code, 0, open.err);
    assert.match(open.out, /│ dns +│ open +│ yes +│ isp-b +│ udp 53/);
    // A disable/enable round keeps the binding (the replacement carries it).
    assert.equal((await sh("rules", "disable", "ssh")).code, 0);
    assert.equal((await sh("rules", "enable", "ssh")).code, 0);
    let all = await shellJson<{ forwards: Forward[]; openPorts: OpenPorts[] }>(io, "rules", "list");
    const ssh = all.forwards.find((f) => f.name === "ssh")!;
    assert.deepEqual([ssh.uplink, ssh.wanAddress, ssh.enabled], ["isp-a", "198.51.100.2", true]);
    assert.equal(all.forwards.find((f) => f.name === "web")!.uplink, "all");

    const bind = await sh("rules", "bind", "dns", "isp-a", "198.51.100.1");
    assert.equal(bind.code, 0, bind.err);
    assert.match(bind.out, /Rule dns listens on isp-a 198\.51\.100\.1\./);
    assert.equal((await sh("rules", "bind", "ssh", "all")).code, 0);
    all = await shellJson(io, "rules", "list");
    const dns = all.openPorts.find((o) => o.name === "dns")!;
    assert.deepEqual([dns.uplink, dns.wanAddress], ["isp-a", "198.51.100.1"]);
    const back = all.forwards.find((f) => f.name === "ssh")!;
    assert.deepEqual([back.uplink, back.wanAddress], ["all", "all"]);
    assert.match(
      (await sh("rules", "list")).out,
      /│ dns +│ open +│ yes +│ isp-a 198\.51\.100\.1 +│/,
    );

    // Not a dotted quad: the API's message naming the field.
    const bad = await sh("rules", "bind", "dns", "isp-a", "wan0");
    assert.equal(bad.code, 1);
    assert.match(bad.err, /WAN address "wan0" is not "all" or an IPv4 or IPv6 address/);
    assert.match(bad.err, /wanAddress/);
  }, twoUplinkConfig());
});

Deno.test("shell: uplinks lists each uplink with its health and the masquerade in use", async () => {
  await withWorld(async ({ sh, api, io }) => {
    const unknown = await sh("uplinks");
    assert.equal(unknown.code, 0, unknown.err);
    assert.match(
      unknown.out,
      /│ isp-a +│ wan0 +│ 198\.51\.100\.1\/26, 198\.51\.100\.2\/26 +│ 198\.51\.100\.62 +│ unknown/,
    );
    api.datapath.uplinkTable = twoUplinkStatus();
    const r = await sh("uplinks");
    assert.equal(r.code, 0, r.err);
    for (
      const h of ["Uplink", "Interface", "Addresses", "Gateway", "State", "Probes", "Masquerade"]
    ) {
      assert.ok(r.out.includes(h), `header ${h} in\n${r.out}`);
    }
    assert.match(r.out, /│ isp-a +│ wan0 +│ .* +│ down +│ 9\/12 answered +│ yes +│ choice 2 +│/);
    assert.match(
      r.out,
      /│ isp-b +│ wan1 +│ 198\.51\.100\.65\/26 +│ 198\.51\.100\.126 +│ up +│ 12\/12 answered +│ no +│ in use +│/,
    );
    const body = await shellJson<{ uplinks: { name: string; status: { up: boolean } }[] }>(
      io,
      "uplinks",
    );
    assert.deepEqual(body.uplinks.map((u) => [u.name, u.status.up]), [["isp-a", false], [
      "isp-b",
      true,
    ]]);
  }, twoUplinkConfig());
});

Deno.test("shell: uplinks shows each IPv6 gateway, its probe and the LAN's IPv6 egress", async () => {
  await withWorld(async ({ sh, api }) => {
    api.datapath.uplinkTable = dualStackTwoUplinkStatus(false);
    const r = await sh("uplinks");
    assert.equal(r.code, 0, r.err);
    assert.ok(r.out.includes("IPv6 gateway"), r.out);
    assert.match(r.out, /│ isp-a +│ .* +│ fe80::1 down 6\/10 answered +│/);
    assert.match(r.out, /│ isp-b +│ .* +│ 2001:db8:b::fe up 10\/10 answered, LAN egress +│/);
  }, dualStackTwoUplinkConfig());
});

Deno.test("shell: unlock revoke ends the unlock; a second revoke is the API's 404", async () => {
  await withWorld(async ({ sh, api }) => {
    const r = await sh("unlock", "revoke", UNLOCKED_IP);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `Revoked the unlock of ${UNLOCKED_IP} (user alice).`);
    assert.equal(api.datapath.unlockTable.size, 0);
    assert.equal((await sh("exec", "portknock")).out, "No IP has passed the knock.");
    const again = await sh("unlock", "revoke", UNLOCKED_IP);
    assert.equal(again.code, 1);
    assert.match(again.err, /203\.0\.113\.10 is not unlocked/);
    assert.equal((await sh("unlock", "revoke", "not-an-ip")).code, 2);
  });
});

Deno.test("shell: --json output of status, users, rules, settings parses", async () => {
  await withWorld(async ({ io, sh }) => {
    const status = await shellJson<{ unlocks: number; counters: { stats: object } }>(io, "status");
    assert.equal(status.unlocks, 1);
    assert.ok("rx_packets" in status.counters.stats);
    const users = await shellJson<{ users: User[] }>(io, "users", "list");
    assert.deepEqual(users.users.map((u) => u.name).sort(), ["admin", "alice"]);
    const rules = await shellJson<{ forwards: Forward[] }>(io, "rules", "list");
    assert.equal(rules.forwards.length, 4);
    const settings = await shellJson<Settings>(io, "settings", "show");
    assert.equal(typeof settings.idleTimeoutSeconds, "number");
    assert.equal(settings.network.lanAddress, "192.0.2.1");
    // Global options go before or after the command.
    const front = await sh("--json", "whoami");
    assert.equal(JSON.parse(front.out).user.name, "admin");
    const text = await sh("status");
    assert.match(text.out, /Unlocked IPs +│ 1/);
    assert.match(text.out, /Clock +│ synchronised \(test\)/);
  });
});

Deno.test("shell: settings set changes one key; a bad key or value is a usage error", async () => {
  await withWorld(async ({ io, sh }) => {
    const r = await sh("settings", "set", "knock.penaltySeconds", "120");
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "Set knock.penaltySeconds = 120.");
    const s = await shellJson<Settings>(io, "settings", "show");
    assert.equal(s.knock.penaltySeconds, 120);
    const c = await sh("settings", "set", "syslog.collectors", "192.0.2.5,192.0.2.6:1514/rfc3164");
    assert.equal(c.code, 0, c.err);
    assert.match(
      (await sh("settings", "show")).out,
      /192\.0\.2\.5:514\/rfc5424, 192\.0\.2\.6:1514\/rfc3164/,
    );
    assert.equal((await sh("settings", "set", "knock.nope", "1")).code, 2);
    assert.equal((await sh("settings", "set", "idleTimeoutSeconds", "soon")).code, 2);
    // Out of the store's range: the API's 400.
    const range = await sh("settings", "set", "idleTimeoutSeconds", "-5");
    assert.equal(range.code, 1);
    assert.match(range.err, /idleTimeoutSeconds/);
  });
});

Deno.test({
  name: "shell: log tail prints recent events and -f follows the stream until Ctrl-C",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withWorld(async ({ api, io, sh }) => {
      api.logger.record("knock-success", {
        ip: UNLOCKED_IP,
        user: "alice",
        drift: 0,
        step: 1,
        wan: "198.51.100.1",
      });
      const tail = await sh("log", "tail", "-n", "5");
      assert.equal(tail.code, 0, tail.err);
      assert.match(tail.out, /knock-success ip=203\.0\.113\.10 user=alice drift=0 step=1/);

      io.stdout.length = 0;
      const following = sh("log", "tail", "-n", "1", "-f", "--json");
      const seen = async (re: RegExp) => {
        for (let i = 0; i < 100 && !io.stdout.some((l) => re.test(l)); i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        return io.stdout.some((l) => re.test(l));
      };
      // Events logged while following arrive on the stream (retried until connected).
      let arrived = false;
      for (let i = 0; i < 20 && !arrived; i++) {
        api.logger.record("knock-failure", { ip: "203.0.113.20", reason: `wrong-port-${i}` });
        arrived = await seen(/"type":"knock-failure"/);
      }
      assert.ok(arrived, `no streamed event in ${io.stdout.join("\n")}`);
      io.interrupt();
      const r = await following;
      assert.equal(r.code, 0, r.err);
      for (const line of r.out.split("\n")) assert.equal(typeof JSON.parse(line).seq, "number");
    });
  },
});

Deno.test("shell: exit codes for usage, network and authentication failures", async () => {
  await withWorld(async ({ anon, dir, sh }) => {
    const bogus = await sh("bogus");
    assert.equal(bogus.code, 2);
    assert.match(bogus.err, /unknown command 'bogus'/);
    assert.match(bogus.err, /Usage: knockgate/);
    assert.equal((await sh("users")).code, 2);
    assert.equal((await sh("users", "show")).code, 2);
    assert.equal((await sh("flows", "-n", "zero")).code, 2);
    const help = await sh("help");
    assert.equal(help.code, 0);
    assert.match(help.out, /exec +router-style show commands/);
    const noAuth = await shell(anon, "users", "list");
    assert.equal(noAuth.code, 1);
    assert.match(noAuth.err, /Sign in \(POST \/api\/v1\/auth\/login\)/);
    const noUrl = await shell(testIo({ XDG_CONFIG_HOME: dir }), "status");
    assert.equal(noUrl.code, 2);
    assert.match(noUrl.err, /No appliance URL/);
    const badUrl = await sh("--url", "ftp://x", "status");
    assert.equal(badUrl.code, 2);
    const down = await sh("--url", "127.0.0.1:1", "status");
    assert.equal(down.code, 1);
    assert.match(down.err, /Cannot reach https:\/\/127\.0\.0\.1:1/);
    // `deno task shell -- ...` passes the `--` on.
    assert.equal((await sh("--", "whoami")).code, 0);
  });
});

Deno.test("shell: the interactive loop on piped input survives a bad command", async () => {
  await withWorld(async ({ api, dir }) => {
    const token = await api.adminToken();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        `${ROOT}src/cli/shell.ts`,
        "--url",
        api.url,
        "--token",
        token,
      ],
      env: { XDG_CONFIG_HOME: dir, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("bogus\nexec portknock\n'unclosed\nexit\nstatus\n"));
    await w.close();
    const timer = setTimeout(() => child.kill(), 20_000);
    const out = await child.output();
    clearTimeout(timer);
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stderr, /unknown command 'bogus'/);
    assert.match(stderr, /a quote is not closed/);
    assert.ok(stdout.includes(UNLOCKED_IP), stdout);
    // `exit` ended the loop: `status` after it never ran.
    assert.ok(!stdout.includes("Uptime"), stdout);
    const history = await Deno.readTextFile(`${dir}/knockgate/shell_history`);
    assert.equal(history, "bogus\nexec portknock\n'unclosed\nexit\n");
  });
});

Deno.test("shell: IPv6 rules, unlocks and flows are shown; unlock revoke takes an IPv6 prefix or address", async () => {
  await withWorld(async ({ sh, api }) => {
    const nat66 = await sh(
      "rules",
      "add-forward",
      "web6",
      "--public",
      "443",
      "--to",
      "[2001:db8:192::12]:8443",
    );
    assert.equal(nat66.code, 0, nat66.err);
    assert.match(
      nat66.out,
      /│ web6 +│ nat66 +│ yes +│ all +│ tcp 443 +│ \[2001:db8:192::12\]:8443 +│/,
    );
    const hole = await sh("rules", "add-open", "ssh6", "--to", "2001:db8:192::12", "--ports", "22");
    assert.equal(hole.code, 0, hole.err);
    assert.match(hole.out, /│ ssh6 +│ pinhole +│ yes +│ all +│ tcp 22 +│ 2001:db8:192::12 +│/);
    const clash = await sh(
      "rules",
      "add-open",
      "bad6",
      "--to",
      "2001:db8:192::12",
      "--ports",
      "23",
      "--uplink",
      "wan",
      "--wan-address",
      "2001:db8:198::1",
    );
    assert.equal(clash.code, 1);
    assert.match(clash.err, /so wanAddress must be "all"/);
    assert.match(clash.err, /Invalid request body: wanAddress: /);

    const at = api.clock.now() - 30_000;
    api.datapath.unlockTable.set("2001:db8:1:2::/64", {
      ip: "2001:db8:1:2::/64",
      user: "alice",
      unlockedAt: at,
      lastSeen: at,
      expiresAt: at + 3_600_000,
      drift: 0,
      flows: 1,
      bytes: 64,
      wanAddress: "2001:db8:198::1",
    });
    const list = await sh("exec", "portknock");
    assert.match(list.out, /│ 2001:db8:1:2::\/64 +│ 2001:db8:198::1 +│ alice +│/);
    api.datapath.flowTable = [{
      proto: 58,
      state: "ESTABLISHED",
      origSrc: "2001:db8:1:2::99",
      origSrcPort: 7,
      origDst: "2001:db8:198::1",
      origDstPort: 7,
      replySrc: "2001:db8:192::12",
      replySrcPort: 7,
      replyDst: "2001:db8:1:2::99",
      replyDstPort: 7,
      packets: 2,
      bytes: 208,
      expiresInSec: 30,
      rule: "web6",
      assured: false,
    }];
    const flows = await sh("flows");
    assert.match(
      flows.out,
      /│ icmpv6 +│ ESTABLISHED +│ \[2001:db8:1:2::99\]:7 +│ \[2001:db8:198::1\]:7 +│ \[2001:db8:192::12\]:7 +│/,
    );
    const uplinks = await sh("uplinks");
    assert.match(uplinks.out, /198\.51\.100\.1\/24, 2001:db8:198::1\/64/);

    const r = await sh("unlock", "revoke", "2001:db8:1:2:aaaa::1");
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "Revoked the unlock of 2001:db8:1:2::/64 (user alice).");
    const again = await sh("unlock", "revoke", "2001:db8:1:2::/64");
    assert.equal(again.code, 1);
    assert.match(again.err, /2001:db8:1:2::\/64 is not unlocked/);
    const bad = await sh("unlock", "revoke", "2001:db8::/200");
    assert.equal(bad.code, 2);
    assert.match(bad.err, /not an IPv4 address, an IPv6 address or an IPv6 prefix/);
  }, dualStackConfig());
});
