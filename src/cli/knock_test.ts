import assert from "node:assert/strict";
import dgram from "node:dgram";
import { loadVectors } from "../knock/_vectors.ts";
import { knockSequenceAt } from "../knock/sequence.ts";
import { ExitCode, type KnockIo, main } from "./knock.ts";

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

function bindUdp(port: number, arrivals: number[]): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket("udp4");
    s.once("error", reject);
    s.on("message", () => arrivals.push(port));
    s.bind(port, "127.0.0.1", () => resolve(s));
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
    assert.deepEqual(t.lines, ports.map((p, i) => `knock ${i + 1}/4 udp 127.0.0.1:${p}`));
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
    assert.equal(open.lines.at(-1), `connect 127.0.0.1:${port} open`);
  } finally {
    listener.close();
    await serving;
  }
  const closed = io();
  assert.equal(await main([...args, "--delay-ms", "20", "--then-connect", `${port}`], closed), 1);
  assert.match(closed.lines.at(-1)!, new RegExp(`connect 127.0.0.1:${port} failed`));
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
