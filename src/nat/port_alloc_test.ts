import assert from "node:assert/strict";
import { ConnTable, FlowSpec, PROTO_ICMP, PROTO_TCP } from "../conntrack/mod.ts";
import { parseIpv4 } from "../packet/address.ts";
import { PortAllocator, portKeyFromSecret } from "./port_alloc.ts";

const SERVER = parseIpv4("192.0.2.10")!, WAN = parseIpv4("198.51.100.2")!;
const LAN_CLIENT = parseIpv4("192.0.2.20")!, INET = parseIpv4("203.0.113.99")!;
const T0 = 1_700_000_000;

function setup() {
  const t = new ConnTable({ capacity: 64, hashKey: [1, 2] });
  return { t, ports: new PortAllocator(t, { seed: 7 }) };
}

Deno.test("the preferred port is kept while its reply tuple is free, then another is probed", () => {
  const { t, ports } = setup();
  const port = ports.pick(PROTO_TCP, SERVER, 8080, WAN, 1024, 65535, 43000);
  assert.equal(port, 43000);
  t.create(
    new FlowSpec().original(PROTO_TCP, LAN_CLIENT, 43000, WAN, 52201).reply(
      SERVER,
      8080,
      WAN,
      port,
    ),
    T0,
  );
  const other = ports.pick(PROTO_TCP, SERVER, 8080, WAN, 1024, 65535, 43000);
  assert.ok(other >= 1024 && other !== 43000);
  // Another peer port makes 43000 free again.
  assert.equal(ports.pick(PROTO_TCP, SERVER, 8081, WAN, 1024, 65535, 43000), 43000);
});

Deno.test("a range without room gives -1; a preferred port outside the range is ignored", () => {
  const { t, ports } = setup();
  t.create(
    new FlowSpec().original(PROTO_TCP, LAN_CLIENT, 43000, WAN, 52201).reply(
      SERVER,
      8080,
      WAN,
      43000,
    ),
    T0,
  );
  assert.equal(ports.pick(PROTO_TCP, SERVER, 8080, WAN, 43000, 43000, 43000), -1);
  assert.equal(ports.pick(PROTO_TCP, SERVER, 8080, WAN, 43000, 43001), 43001);
  assert.equal(ports.pick(PROTO_TCP, SERVER, 8080, WAN, 2000, 1000), -1);
  const p = ports.pick(PROTO_TCP, SERVER, 8080, WAN, 5000, 5009, 80);
  assert.ok(p >= 5000 && p <= 5009);
});

Deno.test("ICMP echo: the identifier stands for both ports of the reply tuple", () => {
  const { t, ports } = setup();
  assert.equal(ports.pick(PROTO_ICMP, INET, 0, WAN, 1, 65535, 777), 777);
  t.create(
    new FlowSpec().original(PROTO_ICMP, SERVER, 777, INET, 777).reply(INET, 777, WAN, 777),
    T0,
  );
  assert.equal(ports.pick(PROTO_ICMP, INET, 0, WAN, 777, 777, 777), -1);
  const other = ports.pick(PROTO_ICMP, INET, 0, WAN, 1, 65535, 777);
  assert.ok(other >= 1 && other !== 777);
});

Deno.test("probes give up after maxTries taken ports", () => {
  const t = new ConnTable({ capacity: 64, hashKey: [1, 2] });
  const ports = new PortAllocator(t, { seed: 7, maxTries: 4 });
  for (let p = 40000; p < 40010; p++) {
    t.create(
      new FlowSpec().original(PROTO_TCP, LAN_CLIENT, p, WAN, 52201).reply(SERVER, 8080, WAN, p),
      T0,
    );
  }
  assert.equal(ports.pick(PROTO_TCP, SERVER, 8080, WAN, 40000, 40009), -1);
  // With tries enough for the whole range, the one free port is found wherever the probe starts.
  const patient = new PortAllocator(t, { seed: 7, maxTries: 11 });
  assert.equal(patient.pick(PROTO_TCP, SERVER, 8080, WAN, 40000, 40010), 40010);
});

// ---- deterministic choice (an HA pair) -----------------------------------------

const KEY = [0x01234567, 0x89abcdef] as const;
const LAN_CLIENT2 = parseIpv4("192.0.2.21")!, LAN_CLIENT3 = parseIpv4("192.0.2.22")!;
const MASQ = parseIpv4("198.51.100.1")!;
const SNAT_LO = 32768, SNAT_HI = 60999;

/** Masquerades LAN `client`:`port` to INET:443 on `t` with `ports`, as admission does; the port. */
function masquerade(t: ConnTable, ports: PortAllocator, client: number, port: number): number {
  const np = ports.pick(PROTO_TCP, INET, 443, MASQ, SNAT_LO, SNAT_HI, port, client);
  assert.ok(np >= 0);
  const id = t.create(
    new FlowSpec().original(PROTO_TCP, client, port, INET, 443).reply(INET, 443, MASQ, np),
    T0,
  );
  assert.ok(id >= 0);
  return np;
}

function node(seed: number) {
  const t = new ConnTable({ capacity: 64, hashKey: [seed, seed + 1] });
  return { t, ports: new PortAllocator(t, { seed, key: KEY }) };
}

Deno.test("with a key, two nodes remap a clashing LAN port to the same port", () => {
  const a = node(3), b = node(11);
  assert.ok(a.ports.deterministic && !new PortAllocator(a.t).deterministic);
  // Two LAN hosts use source port 40000 to the same peer: the second is remapped on A.
  assert.equal(masquerade(a.t, a.ports, LAN_CLIENT, 40000), 40000);
  const remapped = masquerade(a.t, a.ports, LAN_CLIENT2, 40000);
  assert.notEqual(remapped, 40000);
  // B takes the flows over in the same order (different table key, different random seed).
  assert.equal(masquerade(b.t, b.ports, LAN_CLIENT, 40000), 40000);
  assert.equal(masquerade(b.t, b.ports, LAN_CLIENT2, 40000), remapped);
  // A third host with the same port has a probe start of its own: not the second's port.
  const third = masquerade(a.t, a.ports, LAN_CLIENT3, 40000);
  assert.ok(third !== 40000 && third !== remapped);
  assert.equal(masquerade(b.t, b.ports, LAN_CLIENT3, 40000), third);
});

Deno.test("with a key, the remapped port depends on the key and the flow, and spreads", () => {
  const a = node(3);
  const other = new PortAllocator(a.t, { key: [KEY[0], KEY[1] ^ 1] });
  masquerade(a.t, a.ports, LAN_CLIENT, 40000); // holds 40000 for every host below
  const seen = new Set<number>();
  let differ = 0;
  for (let i = 0; i < 200; i++) {
    const host = LAN_CLIENT + 100 + i;
    const p = a.ports.pick(PROTO_TCP, INET, 443, MASQ, SNAT_LO, SNAT_HI, 40000, host);
    assert.ok(p >= SNAT_LO && p <= SNAT_HI && p !== 40000);
    // The same question asked again gets the same answer: nothing random is left.
    assert.equal(a.ports.pick(PROTO_TCP, INET, 443, MASQ, SNAT_LO, SNAT_HI, 40000, host), p);
    if (other.pick(PROTO_TCP, INET, 443, MASQ, SNAT_LO, SNAT_HI, 40000, host) !== p) differ++;
    seen.add(p);
  }
  // 200 draws from 28,232 ports: a handful of birthday collisions at most.
  assert.ok(seen.size >= 190, `only ${seen.size} distinct ports`);
  assert.ok(differ >= 195, `another key gave the same port ${200 - differ} times`);
});

Deno.test("with a key, a node whose table disagrees probes past the port it holds", () => {
  const a = node(3), b = node(11);
  masquerade(a.t, a.ports, LAN_CLIENT, 40000);
  const remapped = masquerade(a.t, a.ports, LAN_CLIENT2, 40000);
  // On B another flow already holds that port toward the peer: B moves on (the flow is lost).
  masquerade(b.t, b.ports, LAN_CLIENT, 40000);
  b.t.create(
    new FlowSpec().original(PROTO_TCP, LAN_CLIENT3, 1234, INET, 443).reply(
      INET,
      443,
      MASQ,
      remapped,
    ),
    T0,
  );
  const p = masquerade(b.t, b.ports, LAN_CLIENT2, 40000);
  assert.equal(p, remapped === SNAT_HI ? SNAT_LO : remapped + 1);
});

Deno.test("portKeyFromSecret: one key per secret, the same on every node", async () => {
  const s1 = new TextEncoder().encode("a secret both nodes hold");
  const k1 = await portKeyFromSecret(s1);
  assert.deepEqual(await portKeyFromSecret(s1.slice()), k1);
  assert.notDeepEqual(await portKeyFromSecret(new TextEncoder().encode("another")), k1);
  for (const w of k1) assert.ok(Number.isInteger(w) && w >= 0 && w <= 0xffffffff);
});
