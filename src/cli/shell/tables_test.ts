import assert from "node:assert/strict";
import type { Flow, OpenPorts } from "./api_types.ts";
import { flowsTable, rulesTable } from "./tables.ts";

const FLOW: Flow = {
  proto: 6,
  state: "established",
  origSrc: "192.0.2.12",
  origSrcPort: 40000,
  origDst: "203.0.113.10",
  origDstPort: 443,
  replySrc: "203.0.113.10",
  replySrcPort: 443,
  replyDst: "198.51.100.1",
  replyDstPort: 61000,
  packets: 2,
  bytes: 100,
  expiresInSec: 30,
  rule: null,
  assured: true,
};

Deno.test("tables: Translated to shows a forward's destination, or what masquerade made the source", () => {
  assert.match(flowsTable([FLOW]), /from 198\.51\.100\.1:61000/);
  const forward = {
    ...FLOW,
    origSrc: "203.0.113.10",
    origSrcPort: 5000,
    origDst: "198.51.100.1",
    origDstPort: 443,
    replySrc: "192.0.2.12",
    replySrcPort: 8443,
    replyDst: "203.0.113.10",
    replyDstPort: 5000,
  };
  const row = flowsTable([forward]).split("\n").find((l) => l.includes("203.0.113.10:5000"))!;
  assert.match(row, /192\.0\.2\.12:8443/);
  assert.doesNotMatch(row, /from/);
  const plain = { ...FLOW, replyDst: "192.0.2.12", replyDstPort: 40000 };
  assert.match(flowsTable([plain]).split("\n").find((l) => l.includes("192.0.2.12:40000"))!, / - /);
});

Deno.test("tables: a pinhole's row names its NPTv6 outside addresses", () => {
  const hole = {
    name: "ssh6",
    uplink: "all",
    wanAddress: "all",
    enabled: true,
    privateAddress: "2001:db8:192::12",
    ports: [{ protocol: "tcp", ports: { start: 22, end: 22 } }],
    enforceKnock: true,
    users: [],
    outsideAddresses: [{ uplink: "isp", address: "2001:db8:199:0:fff8::12" }],
    createdAt: 0,
    updatedAt: 0,
    version: 1,
  } as unknown as OpenPorts;
  const text = rulesTable([], [hole]);
  assert.match(text, /pinhole/);
  assert.match(text, /2001:db8:199:0:fff8::12 \(isp\)/);
});
