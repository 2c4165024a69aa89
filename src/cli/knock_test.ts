import assert from "node:assert/strict";
import dgram from "node:dgram";
import { loadVectors } from "../knock/_vectors.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import {
  ExitCode,
  type KnockIo,
  type KnockTarget,
  literalTarget,
  main,
  pickTargets,
  resolveTargets,
} from "./knock.ts";

const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

function io(env: Record<string, string> = {}): KnockIo & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return {
    lines,
    errors,
    out: (l) => lines.push(l),
    err: (l) => errors.push(l),
    env: { get: (k) => env[k] },
  };
}

Deno.test("--print-sequence --time prints every vector's sequence", async () => {
  for (const v of await loadVectors()) {
    const t = io();
    const code = await main([
      "--print-sequence",
      "--time",
      String(v.unixTime),
      "--secret",
      v.secret.toLowerCase(),
      "--first-port",
      String(v.firstPort),
      "--length",
      String(v.length),
    ], t);
    assert.equal(code, ExitCode.Ok);
    assert.deepEqual(t.lines, [v.sequence.join(" ")]);
  }
});

Deno.test("usage errors exit with 2", async () => {
  const base = ["--secret", SECRET, "--first-port", "41001"];
  const cases: string[][] = [
    base, // no host
    ["--host", "127.0.0.1", "--first-port", "41001"], // no secret
    ["--host", "127.0.0.1", "--secret", SECRET], // no first port
    [...base, "--host", "127.0.0.1", "--delay-ms", "19"],
    [...base, "--host", "127.0.0.1", "--length", "9"],
    [...base, "--host", "127.0.0.1", "--transport", "icmp"],
    [...base, "--host", "127.0.0.1", "--first-port", "0"],
    ["--host", "127.0.0.1", "--first-port", "1", "--secret", "not base32!"],
    ["--bogus"],
  ];
  for (const args of cases) {
    const t = io({ HOME: "/nonexistent" });
    assert.equal(await main(args, t), ExitCode.Usage, args.join(" "));
    assert.ok(t.errors.length > 0);
  }
  const t = io({ HOME: "/nonexistent" });
  assert.equal(await main(["--profile", "nope", "--print-sequence"], t), ExitCode.Usage);
  assert.match(t.errors[0], /Cannot load profile "nope": not found/);
  assert.equal(await main(["--help"], io()), ExitCode.Ok);
});

Deno.test("literal addresses: IPv4, IPv6 with or without brackets, normalised", () => {
  const v6 = (address: string): KnockTarget => ({ address, family: 6 });
  const cases: [string, KnockTarget | null][] = [
    ["198.51.100.1", { address: "198.51.100.1", family: 4 }],
    ["2001:db8::1", v6("2001:db8::1")],
    ["[2001:db8::1]", v6("2001:db8::1")],
    ["2001:DB8:0:0:0:0:0:1", v6("2001:db8::1")],
    ["[2001:0db8::0001]", v6("2001:db8::1")],
    ["::1", v6("::1")],
    // Mapped: the packets would be IPv4 on the wire.
    ["::ffff:198.51.100.1", { address: "198.51.100.1", family: 4 }],
    ["knock.example.net", null],
    ["localhost", null],
    ["a1.example", null],
  ];
  for (const [host, want] of cases) assert.deepEqual(literalTarget(host), want, host);
  for (const family of ["auto", "6", "both"] as const) {
    assert.deepEqual(literalTarget("[2001:db8::1]", family), v6("2001:db8::1"), family);
  }
  const refused: [string, "auto" | "4" | "6", RegExp][] = [
    ["2001:db8::1::2", "auto", /"2001:db8::1::2": not an IPv6 address$/],
    ["[198.51.100.1]", "auto", /not an IPv6 address/],
    ["[2001:db8::1", "auto", /not an IPv6 address/],
    ["2001:db8::1]", "auto", /not an IPv6 address/],
    ["fe80::1%eth0", "auto", /zones such as %eth0 are not supported/],
    ["2001:db8::10000", "auto", /not an IPv6 address/],
    ["198.51.100.256", "auto", /not an IPv4 address/],
    ["010.1.1.1", "auto", /not an IPv4 address .*no leading zeros/],
    ["198.51.100", "auto", /not an IPv4 address/],
    ["198.51.100.1:22", "auto", /without a port/],
    ["[2001:db8::1]:22", "auto", /without a port/],
    ["2001:db8::1", "4", /"2001:db8::1" over IPv4: it is an IPv6 address/],
    ["198.51.100.1", "6", /"198.51.100.1" over IPv6: it is an IPv4 address/],
  ];
  for (const [host, family, message] of refused) {
    assert.throws(() => literalTarget(host, family), message, `${host} ${family}`);
  }
});

Deno.test("the family picks from the resolver's order: auto first, 4/6 by family, both IPv4 first", () => {
  const a = { address: "198.51.100.7", family: 4 } as const;
  const a2 = { address: "198.51.100.8", family: 4 } as const;
  const aaaa = { address: "2001:db8::7", family: 6 } as const;
  const aaaa2 = { address: "2001:db8::8", family: 6 } as const;
  const v6First = [aaaa, a, aaaa2, a2];
  const v4First = [a, aaaa, a2, aaaa2];
  // auto: what a connect would use, the resolver's first address.
  assert.deepEqual(pickTargets("dual.test", "auto", v6First), [aaaa]);
  assert.deepEqual(pickTargets("dual.test", "auto", v4First), [a]);
  assert.deepEqual(pickTargets("dual.test", "4", v6First), [a]);
  assert.deepEqual(pickTargets("dual.test", "6", v4First), [aaaa]);
  // both: one address of each family, IPv4 first whatever the resolver's order.
  assert.deepEqual(pickTargets("dual.test", "both", v6First), [a, aaaa]);
  assert.deepEqual(pickTargets("dual.test", "both", v4First), [a, aaaa]);
  // both over a single-family name knocks the family it has.
  assert.deepEqual(pickTargets("v6.test", "both", [aaaa, aaaa2]), [aaaa]);
  assert.deepEqual(pickTargets("v4.test", "both", [a]), [a]);
  assert.throws(
    () => pickTargets("v6.test", "4", [aaaa, aaaa2]),
    /^Error: Cannot knock on "v6.test" over IPv4: it has no IPv4 address \(A record\), only 2001:db8::7, 2001:db8::8$/,
  );
  assert.throws(
    () => pickTargets("v4.test", "6", [a]),
    /"v4.test" over IPv6: it has no IPv6 address \(AAAA record\), only 198.51.100.7/,
  );
  assert.throws(() => pickTargets("empty.test", "auto", []), /it has no address/);
});

Deno.test("resolveTargets: literals skip the resolver, names go through getaddrinfo", async () => {
  const refuse = () => Promise.reject(new Error("the resolver was asked"));
  assert.deepEqual(await resolveTargets("[2001:db8::1]", "both", refuse), [
    { address: "2001:db8::1", family: 6 },
  ]);
  assert.deepEqual(await resolveTargets("198.51.100.1", "auto", refuse), [
    { address: "198.51.100.1", family: 4 },
  ]);
  // The system's own resolver: localhost always has a loopback address.
  const [t] = await resolveTargets("localhost", "auto");
  assert.ok(t.address === "127.0.0.1" || t.address === "::1", JSON.stringify(t));
  await assert.rejects(() => resolveTargets("localhost", "auto", () => Promise.resolve([])));
});

Deno.test("family usage errors exit with 2, a name without the family with 1", async () => {
  const base = ["--secret", SECRET, "--first-port", "41001", "--transport", "udp"];
  for (
    const args of [
      [...base, "--host", "::1", "--family", "5"],
      [...base, "--host", "::1", "--family", "4"],
      [...base, "--host", "127.0.0.1", "--family", "6"],
      [...base, "--host", "[::1", "--print-sequence"],
    ]
  ) {
    const t = io();
    assert.equal(await main(args, t), ExitCode.Usage, args.join(" "));
    assert.ok(t.errors.length > 0, args.join(" "));
  }
  const lacks = io();
  const args = [...base, "--host", "nonexistent.invalid", "--family", "6"];
  assert.equal(await main(args, lacks), ExitCode.ConnectFailed);
  assert.match(lacks.errors[0], /^Cannot knock on "nonexistent.invalid"/);
  assert.deepEqual(lacks.lines, []);
});

Deno.test("the secret may come from KNOCKGATE_SECRET", async () => {
  const t = io({ KNOCKGATE_SECRET: SECRET });
  const args = ["--print-sequence", "--time", "59", "--first-port", "41001"];
  assert.equal(await main(args, t), ExitCode.Ok);
  assert.deepEqual(t.lines, ["41001 22000 20774 23504"]);
});

Deno.test("profiles are saved with mode 0600 in the config dir and load back", async () => {
  const home = await Deno.makeTempDir();
  try {
    const envs: Record<string, string>[] = [
      { HOME: home },
      { HOME: "/nonexistent", XDG_CONFIG_HOME: `${home}/xdg` },
    ];
    for (const env of envs) {
      const dir = env.HOME === home ? `${home}/.config/knockgate` : `${home}/xdg/knockgate`;
      const save = io(env);
      const args = ["--host", "198.51.100.1", "--first-port", "41001", "--secret", SECRET];
      const code = await main([
        ...args,
        "--transport",
        "udp",
        "--save-profile",
        "home",
        "--print-sequence",
        "--time",
        "59",
      ], save);
      assert.equal(code, ExitCode.Ok);
      assert.deepEqual(save.lines, [
        `saved profile home to ${dir}/profiles.json`,
        "41001 22000 20774 23504",
      ]);
      assert.equal((await Deno.stat(`${dir}/profiles.json`)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
      const saved = JSON.parse(await Deno.readTextFile(`${dir}/profiles.json`));
      assert.deepEqual(saved.profiles.home, {
        host: "198.51.100.1",
        firstPort: 41001,
        secret: SECRET,
        length: 3,
        transport: "udp",
      });

      const load = io(env);
      assert.equal(await main(["--profile", "home", "--print-sequence", "--time", "59"], load), 0);
      assert.deepEqual(load.lines, ["41001 22000 20774 23504"]);
      const over = io(env);
      const overArgs = ["--profile", "home", "--length", "1", "--print-sequence", "--time", "59"];
      assert.equal(await main(overArgs, over), 0);
      assert.deepEqual(over.lines, ["41001 22000"]);

      // A family other than auto is saved with the profile; an IPv6 literal host too.
      const v6 = ["--host", "[2001:db8::1]", "--first-port", "41001", "--secret", SECRET];
      const both = [...v6, "--family", "both", "--save-profile", "v6", "--print-sequence"];
      assert.equal(await main(both, io(env)), 0);
      const again = JSON.parse(await Deno.readTextFile(`${dir}/profiles.json`));
      assert.equal(again.profiles.v6.family, "both");
      assert.equal(again.profiles.v6.host, "[2001:db8::1]");
      assert.equal(again.profiles.home.family, undefined);
      const mismatch = io(env);
      const v4Only = ["--profile", "v6", "--family", "4", "--print-sequence"];
      assert.equal(await main(v4Only, mismatch), ExitCode.Usage);
      assert.match(mismatch.errors[0], /over IPv4: it is an IPv6 address/);
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

/** A time whose derived ports are free on 127.0.0.1 for `bind`, and the sequence. */
async function freeSequence(
  firstPort: number,
  bind: (port: number) => Promise<() => void>,
): Promise<{ time: number; ports: number[]; closers: (() => void)[] }> {
  for (let time = 1_764_028_800;; time += 30) {
    const ports = await knockSequenceAt(SECRET, time, firstPort, 3);
    const closers: (() => void)[] = [];
    try {
      for (const p of ports.slice(1)) closers.push(await bind(p));
      return { time, ports, closers };
    } catch {
      closers.forEach((c) => c());
    }
  }
}

function bindUdp(port: number, arrivals: number[], host = "127.0.0.1"): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
    s.once("error", reject);
    s.on("message", () => arrivals.push(port));
    s.bind(port, host, () => resolve(s));
  });
}

function closeUdp(s: dgram.Socket): () => void {
  return () => s.close();
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

Deno.test("a UDP knock reaches a local listener in order on the right ports", async () => {
  const arrivals: number[] = [];
  const first = await bindUdp(0, arrivals);
  const firstPort = first.address().port;
  first.removeAllListeners("message");
  first.on("message", () => arrivals.push(firstPort));
  const { time, ports, closers } = await freeSequence(
    firstPort,
    async (p) => closeUdp(await bindUdp(p, arrivals)),
  );
  try {
    const t = io();
    const args = ["--host", "127.0.0.1", "--first-port", String(firstPort), "--secret", SECRET];
    const code = await main([
      ...args,
      "--transport",
      "udp",
      "--delay-ms",
      "20",
      "--time",
      `${time}`,
    ], t);
    assert.equal(code, ExitCode.Ok);
    await waitFor(() => arrivals.length >= ports.length, 2000);
    assert.deepEqual(arrivals, ports);
    assert.deepEqual(t.lines, ports.map((p, i) => `knock ${i + 1}/4 udp 127.0.0.1:${p} IPv4`));
  } finally {
    closers.forEach((c) => c());
    first.close();
  }
});

Deno.test("a UDP knock over IPv6 reaches a ::1 listener in order; both knocks it once", async () => {
  const arrivals: number[] = [];
  const first = await bindUdp(0, arrivals, "::1");
  const firstPort = first.address().port;
  first.removeAllListeners("message");
  first.on("message", () => arrivals.push(firstPort));
  const { time, ports, closers } = await freeSequence(
    firstPort,
    async (p) => closeUdp(await bindUdp(p, arrivals, "::1")),
  );
  try {
    for (const [host, family] of [["::1", "auto"], ["[::1]", "both"], ["[0:0::1]", "6"]]) {
      arrivals.length = 0;
      const t = io();
      const code = await main([
        ...["--host", host, "--family", family, "--first-port", String(firstPort)],
        ...["--secret", SECRET, "--transport", "udp", "--delay-ms", "20", "--time", `${time}`],
      ], t);
      assert.equal(code, ExitCode.Ok, t.errors.join("\n"));
      await waitFor(() => arrivals.length >= ports.length, 2000);
      assert.deepEqual(arrivals, ports, `${host} ${family}`);
      assert.deepEqual(t.lines, ports.map((p, i) => `knock ${i + 1}/4 udp [::1]:${p} IPv6`));
      // both over a literal knocks its one family, and says so.
      assert.deepEqual(
        t.errors,
        family === "both" ? ["[::1] has no IPv4 address: knocking over IPv6 only"] : [],
      );
    }
  } finally {
    closers.forEach((c) => c());
    first.close();
  }
});

Deno.test("a TCP knock reaches local listeners in order and leaks nothing", async () => {
  const arrivals: number[] = [];
  const accepting: Promise<void>[] = [];
  const listen = (port: number) => {
    const l = Deno.listen({ hostname: "127.0.0.1", port });
    const p = (l.addr as Deno.NetAddr).port;
    accepting.push((async () => {
      for await (const conn of l) {
        arrivals.push(p);
        conn.close();
      }
    })());
    return { port: p, close: () => l.close() };
  };
  const first = listen(0);
  const { time, ports, closers } = await freeSequence(first.port, (p) => {
    return Promise.resolve(listen(p).close);
  });
  try {
    const t = io();
    const args = ["--host", "127.0.0.1", "--first-port", String(first.port), "--secret", SECRET];
    assert.equal(await main([...args, "--delay-ms", "20", "--time", `${time}`], t), ExitCode.Ok);
    await waitFor(() => arrivals.length >= ports.length, 2000);
    assert.deepEqual(arrivals, ports);
  } finally {
    closers.forEach((c) => c());
    first.close();
    await Promise.allSettled(accepting);
  }
});

Deno.test("--then-connect reports whether the port opened", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const serving = (async () => {
    for await (const conn of listener) conn.close();
  })();
  const args = [
    "--host",
    "127.0.0.1",
    "--first-port",
    "9",
    "--secret",
    SECRET,
    "--transport",
    "udp",
  ];
  try {
    const open = io();
    assert.equal(await main([...args, "--delay-ms", "20", "--then-connect", `${port}`], open), 0);
    assert.equal(open.lines.at(-1), `connect 127.0.0.1:${port} IPv4 open`);
  } finally {
    listener.close();
    await serving;
  }
  const closed = io();
  assert.equal(await main([...args, "--delay-ms", "20", "--then-connect", `${port}`], closed), 1);
  assert.match(closed.lines.at(-1)!, new RegExp(`connect 127.0.0.1:${port} IPv4 failed`));
});

async function run(cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

async function canUseNetns(): Promise<boolean> {
  try {
    await run("nft", "--version");
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

Deno.test({
  name: "a TCP knock to a silent host is one SYN per port, abandoned without RST",
  ignore: !(await canUseNetns()),
  async fn() {
    const client = `kgt${Deno.pid}c`;
    const appliance = `kgt${Deno.pid}a`;
    try {
      await run("ip", "netns", "add", client);
      await run("ip", "netns", "add", appliance);
      await run(
        "ip",
        "link",
        "add",
        "kc0",
        "netns",
        client,
        "type",
        "veth",
        "peer",
        "name",
        "ka0",
        "netns",
        appliance,
      );
      await run("ip", "-n", client, "addr", "add", "203.0.113.2/24", "dev", "kc0");
      await run("ip", "-n", appliance, "addr", "add", "203.0.113.1/24", "dev", "ka0");
      await run("ip", "-n", client, "link", "set", "kc0", "up");
      await run("ip", "-n", appliance, "link", "set", "ka0", "up");
      // The appliance side counts and drops all TCP, as Knockgate never answers a knock.
      const nft = (...a: string[]) => run("ip", "netns", "exec", appliance, "nft", ...a);
      await nft("add", "table", "inet", "k");
      await nft("add chain inet k in { type filter hook input priority 0; policy accept; }");
      await nft("add rule inet k in tcp flags & (syn|ack|rst) == syn counter drop");
      await nft("add rule inet k in tcp flags rst counter drop");
      await nft("add rule inet k in meta l4proto tcp counter drop");
      const secret = ["--secret", SECRET, "--first-port", "41001", "--delay-ms", "20"];
      const out = await run(
        "ip",
        "netns",
        "exec",
        client,
        Deno.execPath(),
        "run",
        "-A",
        new URL("./knock.ts", import.meta.url).pathname,
        "--host",
        "203.0.113.1",
        ...secret,
      );
      assert.equal(out.trim().split("\n").length, 4);
      await new Promise((r) => setTimeout(r, 1200)); // past the first SYN retransmission time
      const rules = await nft("-a", "list", "chain", "inet", "k", "in");
      const counts = [...rules.matchAll(/packets (\d+)/g)].map((m) => Number(m[1]));
      assert.deepEqual(counts, [4, 0, 0], rules); // 4 SYNs, no RST, nothing else
    } finally {
      await run("ip", "netns", "del", client).catch(() => {});
      await run("ip", "netns", "del", appliance).catch(() => {});
    }
  },
});
