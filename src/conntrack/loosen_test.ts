import assert from "node:assert/strict";
import {
  ConnTable,
  FlowSpec,
  PROTO_TCP,
  PROTO_UDP,
  TCP_ACK,
  TCP_SYN,
  TcpSegment,
  TRACK_ACCEPT,
  TRACK_OUT_OF_WINDOW,
} from "./mod.ts";

const T0 = 1_700_000_000;
const C1 = 0xcb007101, WAN1 = 0xc6336402, SRV = 0xc000020a; // 203.0.113.1, 198.51.100.2, 192.0.2.10
const SEG = new TcpSegment();

function dnat(proto: number, port: number): FlowSpec {
  return new FlowSpec().original(proto, C1, port, WAN1, 52201).reply(SRV, 8080, C1, port);
}

/** A TCP flow through its handshake (client ISN 100, server 500). */
function established(t: ConnTable, port: number): number {
  const f = t.create(dnat(PROTO_TCP, port), T0);
  assert.equal(t.track(2 * f, 60, T0, SEG.set(TCP_SYN, 100, 0, 65535)), TRACK_ACCEPT);
  assert.equal(
    t.track(2 * f + 1, 60, T0, SEG.set(TCP_SYN | TCP_ACK, 500, 101, 65535)),
    TRACK_ACCEPT,
  );
  assert.equal(t.track(2 * f, 52, T0, SEG.set(TCP_ACK, 101, 501, 65535)), TRACK_ACCEPT);
  return f;
}

Deno.test("loosenTcp: every TCP flow of a shared table, by its owner; a tracker loosens none", () => {
  const owner = new ConnTable({ capacity: 16, workers: 2, hashKey: [3, 4] });
  const tracker = new ConnTable({ buffer: owner.buffer, worker: 1, role: "tracker" });
  for (const t of [owner, tracker]) t.quiescent();
  const flows = [established(owner, 40000), established(owner, 40001)];
  owner.create(dnat(PROTO_UDP, 40002), T0);
  owner.create(dnat(PROTO_TCP, 40003), T0); // no segment yet: nothing to loosen
  const far = 20_000_000;
  const ahead = () => SEG.set(TCP_ACK, 101 + far, 501 + far, 65535, 1000);
  assert.equal(tracker.track(2 * flows[0], 1052, T0, ahead()), TRACK_OUT_OF_WINDOW);
  assert.equal(tracker.loosenTcp(), 0);
  assert.equal(owner.loosenTcp(), 2);
  // The tracker sees the loosened windows (one shared table): the segment far ahead passes.
  assert.equal(tracker.track(2 * flows[0], 1052, T0, ahead()), TRACK_ACCEPT);
  assert.equal(owner.track(2 * flows[1], 1052, T0, ahead()), TRACK_ACCEPT);
});
