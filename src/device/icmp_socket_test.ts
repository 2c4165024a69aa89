import assert from "node:assert/strict";

const root = Deno.uid() === 0;

/** Runs `argv` and returns its exit code and output. */
async function sh(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The `Icmp:` counters of /proc/net/snmp by name. */
function icmpCounters(snmp: string): Record<string, number> {
  const [names, values] = snmp.split("\n").filter((l) => l.startsWith("Icmp:"));
  const v = values.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.split(/\s+/).slice(1).map((n, i) => [n, v[i]]));
}

// Runs in the appliance-side namespace: three echoes to the peer, then (the replies counted by
// the namespace's stack) the socket's receive queue from /proc/net/raw, then two failures.
const CHILD = `
import { IcmpSocket } from "${new URL("./icmp_socket.ts", import.meta.url).href}";
import { internetChecksum, write16 } from "${new URL("../packet/mod.ts", import.meta.url).href}";
const u32 = (s) => s.split(".").reduce((n, o) => n * 256 + Number(o), 0);
const reps = () => {
  const [n, v] = Deno.readTextFileSync("/proc/net/snmp").split("\\n").filter((l) => l.startsWith("Icmp:"));
  return Number(v.split(/\\s+/)[n.split(/\\s+/).indexOf("InEchoReps")]);
};
const before = reps();
const s = IcmpSocket.open(u32("198.51.100.1"));
if (!(s instanceof IcmpSocket)) throw s;
const msg = new Uint8Array(16);
const sent = [];
for (let seq = 1; seq <= 3; seq++) {
  msg.fill(0); msg[0] = 8; write16(msg, 4, 0x4b47); write16(msg, 6, seq);
  msg.set([1, 2, 3, 4, 5, 6, 7, 8], 8);
  write16(msg, 2, internetChecksum(msg, 0, 16));
  sent.push(s.send(msg, 16, u32("198.51.100.62")));
}
for (let i = 0; i < 100 && reps() - before < 3; i++) await new Promise((r) => setTimeout(r, 20));
const raw = Deno.readTextFileSync("/proc/net/raw").split("\\n").slice(1).filter(Boolean)
  .map((l) => l.trim().split(/\\s+/));
const rxQueue = raw.map((f) => parseInt(f[4].split(":")[1], 16));
const unrouted = s.send(msg, 16, u32("203.0.113.1"));
s.close();
const unbound = IcmpSocket.open(u32("198.51.100.9"));
console.log(JSON.stringify({ sent, replies: reps() - before, rxQueue, unrouted,
  unbound: unbound instanceof IcmpSocket ? "opened" : unbound.code }));
`;

Deno.test({
  name: "a raw ICMP socket sends well-formed echoes from its address; it queues no reply",
  ignore: !root,
  fn: async () => {
    const tag = `${Deno.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    const a = `kgia-${tag}`, b = `kgib-${tag}`;
    assert.equal((await sh(["ip", "netns", "add", a])).code, 0);
    try {
      assert.equal((await sh(["ip", "netns", "add", b])).code, 0);
      const setup = await sh([
        "sh",
        "-ec",
        `
        ip -n ${a} link add up0 type veth peer name gw0 netns ${b}
        ip -n ${a} link set lo up; ip -n ${b} link set lo up
        ip -n ${a} addr add 198.51.100.1/26 dev up0; ip -n ${a} link set up0 up
        ip -n ${b} addr add 198.51.100.62/26 dev gw0; ip -n ${b} link set gw0 up`,
      ]);
      assert.equal(setup.code, 0, setup.stderr);
      const peerBefore = icmpCounters(
        (await sh(["ip", "netns", "exec", b, "cat", "/proc/net/snmp"])).stdout,
      );
      const child = await sh(["ip", "netns", "exec", a, Deno.execPath(), "eval", CHILD]);
      assert.equal(child.code, 0, child.stderr);
      const r = JSON.parse(child.stdout.trim().split("\n").pop()!);
      assert.deepEqual(r.sent, [16, 16, 16]);
      assert.equal(r.replies, 3, "the peer answered every echo");
      assert.ok(r.rxQueue.every((n: number) => n === 0), `receive queue ${r.rxQueue}`);
      assert.equal(r.unrouted, -101, "ENETUNREACH as a value");
      assert.equal(r.unbound, "EADDRNOTAVAIL");
      const peer = icmpCounters(
        (await sh(["ip", "netns", "exec", b, "cat", "/proc/net/snmp"])).stdout,
      );
      assert.equal(peer.InEchos - peerBefore.InEchos, 3);
      assert.equal(peer.OutEchoReps - peerBefore.OutEchoReps, 3);
      assert.equal(peer.InCsumErrors - peerBefore.InCsumErrors, 0);
      assert.equal(peer.InErrors - peerBefore.InErrors, 0);
    } finally {
      await sh(["ip", "netns", "del", b]);
      await sh(["ip", "netns", "del", a]);
    }
  },
});
