/**
 * Lab test of the IPv6 packet layer against the Linux kernel (no appliance):
 * seeded UDP packets with random extension-header chains go from one
 * namespace to another over a veth pair, sent byte for byte through a raw
 * IPv6 socket; the kernel's verdict (delivered to the UDP socket or dropped)
 * must equal `Ipv6Packet.check()`'s, except where the appliance is
 * deliberately stricter or leaves the decision to the end host:
 * - we refuse a type 0 routing header with segments left 0, which Linux
 *   ignores as RFC 5095 allows (RFC 9288 §3.4 tells firewalls to drop it);
 * - we refuse a second routing header, which Linux processes (RFC 8200 §4.1);
 * - we skip an authentication header, which Linux drops for want of a
 *   security association: the end host's IPsec decides, not the firewall.
 * CALIPSO labels (option 7), which Linux validates down to their CRC, are
 * left out of the generator: no such network is behind a port-knocking gate.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { labDown, nsRun, runSuffix, waitFor } from "../../scripts/lab/topology.ts";
import {
  authHeader,
  buildIpv6Udp,
  destOptionsHeader,
  fragmentHeader,
  hopByHopHeader,
  type Ipv6ExtHeader,
  Ipv6Packet,
  parseErrorName,
  routingHeader,
} from "../../src/packet/mod.ts";
import { labSupported } from "./_helpers.ts";

const A = "2001:db8:6::1", B = "2001:db8:6::2", PORT = 9999, COUNT = 600;

type Ext =
  | { k: "hbh" | "dst"; o: { type: number; len: number; fill: number }[] }
  | { k: "rt"; type: number; sl: number }
  | { k: "frag" | "ah" };

const option = fc.record({
  type: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(0x1e, 0x3e, 0x05, 0x3f) },
    fc.constantFrom(0xc2, 0x00, 0x01, 0x5e, 0x9e, 0xde),
  ),
  len: fc.nat({ max: 12 }),
  fill: fc.constantFrom(0, 0xa5),
});
const ext: fc.Arbitrary<Ext> = fc.oneof(
  fc.record({
    k: fc.constantFrom("hbh" as const, "dst" as const),
    o: fc.array(option, { maxLength: 10 }),
  }),
  fc.record({
    k: fc.constant("rt" as const),
    type: fc.constantFrom(0, 2, 3, 4, 200),
    sl: fc.constantFrom(0, 0, 1),
  }),
  fc.record({ k: fc.constantFrom("frag" as const, "ah" as const) }),
);

function toHeader(e: Ext, i: number): Ipv6ExtHeader {
  if (e.k === "hbh" || e.k === "dst") {
    const tlv = e.o.flatMap((o) =>
      o.type === 0 ? [0] : [o.type, o.len, ...new Array(o.len).fill(o.fill)]
    );
    return (e.k === "hbh" ? hopByHopHeader : destOptionsHeader)(new Uint8Array(tlv));
  }
  if (e.k === "rt") return routingHeader(e.type, e.sl, [B]);
  return e.k === "frag" ? fragmentHeader(0, false, i) : authHeader(1, 1); // atomic fragments only
}

/**
 * True where the appliance and the kernel are meant to differ (see the module
 * comment); a third destination options header is refused as repeated too.
 */
function deliberate(chain: Ext[], ours: string): boolean {
  if (ours === "none") return chain.some((e) => e.k === "ah");
  if (ours === "ipv6-routing-type") return chain.some((e) => e.k === "rt" && e.type === 0);
  return ours === "ipv6-ext-repeated";
}

const SEND = `
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
for line in sys.stdin:
    s.sendto(bytes.fromhex(line.strip()), ("${B}", 0))
    time.sleep(0.001)
print("sent")
`;
const RECV = `
import select, socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("${B}", ${PORT}))
print("listening", flush=True)
idle, end = time.time() + 15, time.time() + 40
while time.time() < min(idle, end):
    if select.select([s], [], [], 0.2)[0]:
        print(s.recv(64).decode(), flush=True)
        idle = time.time() + 2
`;

Deno.test({
  name: "lab: the IPv6 extension-header walk agrees with the Linux kernel on random chains",
  ignore: !labSupported(),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const suffix = runSuffix();
    const ns = { a: `kg6a-${suffix}`, b: `kg6b-${suffix}` };
    try {
      for (const n of Object.values(ns)) await run(["ip", "netns", "add", n]);
      await nsRun(ns.a, [
        "ip",
        "link",
        "add",
        "v0",
        "type",
        "veth",
        "peer",
        "name",
        "v1",
        "netns",
        ns.b,
      ]);
      await nsRun(ns.a, ["ip", "-6", "addr", "add", `${A}/64`, "dev", "v0", "nodad"]);
      await nsRun(ns.b, ["ip", "-6", "addr", "add", `${B}/64`, "dev", "v1", "nodad"]);
      for (const [n, dev] of [[ns.a, "v0"], [ns.b, "v1"]]) {
        await nsRun(n, ["ip", "link", "set", dev, "up"]);
        await nsRun(n, ["ip", "link", "set", "lo", "up"]);
      }

      // The link is up and the neighbour known before the first raw packet goes out.
      const reachable = await waitFor(
        () => nsRun(ns.a, ["ping", "-6", "-n", "-c", "1", "-W", "1", B]).then(() => true),
        10_000,
        200,
      );
      assert.ok(reachable, `${B} does not answer ping`);

      const chains = fc.sample(fc.array(ext, { maxLength: 5 }), { numRuns: COUNT, seed: 0x6b6736 });
      const ip = new Ipv6Packet();
      const ours: string[] = [];
      const hex: string[] = [];
      chains.forEach((chain, i) => {
        const pkt = buildIpv6Udp({
          src: A,
          dst: B,
          srcPort: 40000,
          dstPort: PORT,
          ext: chain.map(toHeader),
          payload: new TextEncoder().encode(`t${i}`),
        });
        ours.push(parseErrorName(ip.bind(pkt).check()));
        hex.push(Array.from(pkt, (x) => x.toString(16).padStart(2, "0")).join(""));
      });
      assert.ok(ours.filter((v) => v === "none").length > COUNT / 5, "too few valid chains");
      assert.ok(ours.filter((v) => v !== "none").length > COUNT / 5, "too few refusals");

      const recv = new Deno.Command("ip", {
        args: ["netns", "exec", ns.b, "timeout", "45", "python3", "-c", RECV],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const lines = recv.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!out.includes("listening")) {
        const r = await lines.read();
        if (r.done) break;
        out += r.value;
      }
      const send = new Deno.Command("ip", {
        args: ["netns", "exec", ns.a, "timeout", "30", "python3", "-c", SEND],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = send.stdin.getWriter();
      await w.write(new TextEncoder().encode(hex.join("\n") + "\n"));
      await w.close();
      const sent = await send.output();
      assert.match(
        new TextDecoder().decode(sent.stdout),
        /sent/,
        new TextDecoder().decode(sent.stderr),
      );
      for (;;) {
        const r = await lines.read();
        if (r.done) break;
        out += r.value;
      }
      await recv.status;
      await recv.stderr.cancel();
      const delivered = new Set(
        out.split("\n").filter((l) => l.startsWith("t")).map((l) => Number(l.slice(1))),
      );

      const agree: number[] = [], differ: string[] = [];
      for (let i = 0; i < COUNT; i++) {
        const kernel = delivered.has(i);
        if ((ours[i] === "none") === kernel) agree.push(i);
        else if (!deliberate(chains[i], ours[i])) {
          differ.push(
            `#${i} ours=${ours[i]} kernel=${kernel ? "delivered" : "dropped"} ${
              JSON.stringify(chains[i])
            }`,
          );
        }
      }
      assert.deepEqual(differ, []);
      assert.ok(agree.length > COUNT * 0.7, `only ${agree.length} of ${COUNT} agree`);
      console.log(
        `IPv6 walk vs kernel: ${agree.length}/${COUNT} agree, ${delivered.size} delivered, ` +
          `${COUNT - agree.length} deliberate differences`,
      );
    } finally {
      await labDown(ns);
    }
  },
});

async function run(argv: string[]): Promise<void> {
  const r = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "null",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`${argv.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}
