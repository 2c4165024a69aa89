import assert from "node:assert/strict";

const root = Deno.uid() === 0;

/** Runs `argv` and returns its exit code and output. */
async function sh(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The counters of /proc/net/snmp6 by name. */
function snmp6(text: string): Record<string, number> {
  return Object.fromEntries(
    text.split("\n").filter(Boolean).map((l) => l.trim().split(/\s+/)).map(([k, v]) => [
      k,
      Number(v),
    ]),
  );
}

// Runs in the uplink-side namespace: three echoes to the gateway's link-local address and one to
// its global one, their replies read back (the kernel wrote the checksums), a ping from the
// gateway to us that the filter keeps out of the queue, then the failures as values.
const CHILD = `
import { Icmp6Socket } from "${new URL("./icmp6_socket.ts", import.meta.url).href}";
import { parseIpv6, writeIpv6 } from "${new URL("../packet/mod.ts", import.meta.url).href}";
const bytes = (s) => { const b = new Uint8Array(16); writeIpv6(b, 0, parseIpv6(s)); return b; };
const echo = (seq) => {
  const m = new Uint8Array(16);
  m[0] = 128; m[4] = 0x4b; m[5] = 0x47; m[7] = seq; m.set([1, 2, 3, 4, 5, 6, 7, 8], 8);
  return m;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const drain = async (s, want) => {
  const got = [], buf = new Uint8Array(256);
  for (let i = 0; i < 100 && got.length < want; i++) {
    const n = s.receive(buf);
    if (n > 0) got.push({ msg: [...buf.subarray(0, n)], at: s.receivedAt() });
    else await sleep(20);
  }
  return got;
};
const ll = Icmp6Socket.open(bytes("2001:db8:a::1"), bytes("fe80::1"), "up0");
if (!(ll instanceof Icmp6Socket)) throw ll;
const t0 = Date.now();
const sent = [1, 2, 3].map((seq) => ll.send(echo(seq), 16));
const replies = await drain(ll, 3);
const global = Icmp6Socket.open(bytes("2001:db8:a::1"), bytes("2001:db8:a::fe"), "up0");
if (!(global instanceof Icmp6Socket)) throw global;
global.send(echo(9), 16);
const globalReplies = await drain(global, 1);
// The gateway pings us: the kernel answers, the sockets queue nothing (echo replies only).
const ping = new Deno.Command("ip", { args: ["netns", "exec", Deno.args[0], "ping", "-6", "-c", "2",
  "-i", "0.2", "-W", "1", "2001:db8:a::1"] }).outputSync().code;
await sleep(100);
const after = [ll.receive(new Uint8Array(256)), global.receive(new Uint8Array(256))];
ll.close(); global.close();
const noDev = Icmp6Socket.open(bytes("2001:db8:a::1"), bytes("fe80::1"), "nosuch0");
console.log(JSON.stringify({
  sent,
  replies: replies.map((r) => r.msg),
  stampsOk: replies.every((r) => r.at >= t0 - 1000 && r.at <= Date.now() + 1000),
  globalReplies: globalReplies.map((r) => r.msg),
  ping, after, closedSend: ll.send(echo(4), 16),
  noDev: noDev instanceof Icmp6Socket ? "opened" : noDev.code,
}));
`;

Deno.test({
  name: "a raw ICMPv6 socket pings a link-local or global target and reads only its echo replies",
  ignore: !root,
  fn: async () => {
    const tag = `${Deno.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    const a = `kg6ia-${tag}`, b = `kg6ib-${tag}`;
    assert.equal((await sh(["ip", "netns", "add", a])).code, 0);
    try {
      assert.equal((await sh(["ip", "netns", "add", b])).code, 0);
      const setup = await sh([
        "sh",
        "-ec",
        `
        ip -n ${a} link add up0 type veth peer name gw0 netns ${b}
        ip -n ${a} link set lo up; ip -n ${b} link set lo up
        ip -n ${a} -6 addr add 2001:db8:a::1/64 dev up0 nodad; ip -n ${a} link set up0 up
        ip -n ${b} -6 addr add 2001:db8:a::fe/64 dev gw0 nodad
        ip -n ${b} -6 addr add fe80::1/64 dev gw0 nodad; ip -n ${b} link set gw0 up`,
      ]);
      assert.equal(setup.code, 0, setup.stderr);
      const peer = () => sh(["ip", "netns", "exec", b, "cat", "/proc/net/snmp6"]);
      const before = snmp6((await peer()).stdout);
      const child = await sh(["ip", "netns", "exec", a, Deno.execPath(), "eval", CHILD, b]);
      assert.equal(child.code, 0, child.stderr);
      const r = JSON.parse(child.stdout.trim().split("\n").pop()!);
      assert.deepEqual(r.sent, [16, 16, 16]);
      const reply = (seq: number) => [129, 0, 0x4b, 0x47, seq, [1, 2, 3, 4, 5, 6, 7, 8]];
      const shape = (m: number[]) => [m[0], m[1], m[4], m[5], m[7], m.slice(8)];
      assert.deepEqual(r.replies.map(shape), [1, 2, 3].map(reply), "the echoes came back");
      assert.ok(r.stampsOk, "the kernel's receive stamps are on the wall clock");
      assert.deepEqual(r.globalReplies.map(shape), [reply(9)]);
      assert.equal(r.ping, 0, "the kernel still answers the gateway's ping");
      assert.deepEqual(r.after, [-11, -11], "the ping and its replies were not queued");
      assert.equal(r.closedSend, -9);
      assert.equal(r.noDev, "ENODEV");
      const after = snmp6((await peer()).stdout);
      assert.equal(after.Icmp6InEchos - before.Icmp6InEchos, 4);
      assert.equal(
        after.Icmp6InCsumErrors - before.Icmp6InCsumErrors,
        0,
        "checksums by the kernel",
      );
    } finally {
      await sh(["ip", "netns", "del", b]);
      await sh(["ip", "netns", "del", a]);
    }
  },
});
