import assert from "node:assert/strict";
import { ConnTable, FlowSpec, PROTO_ICMP, PROTO_TCP } from "../conntrack/mod.ts";
import { parseIpv4 } from "../packet/address.ts";
import { PortAllocator } from "./port_alloc.ts";

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
