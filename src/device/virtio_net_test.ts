import assert from "node:assert/strict";
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  vnetCsumOffset,
  vnetCsumStart,
  vnetFlags,
  vnetGsoSize,
  vnetGsoType,
  vnetHdrLen,
} from "./virtio_net.ts";

Deno.test("virtio-net header getters read little-endian fields at an offset", () => {
  // A TSO header as a TUN hands it over: NEEDS_CSUM, TCPV4, 52-byte headers, MSS 1448, csum at 20+16.
  const buf = new Uint8Array([0xff, 0xff, 1, 1, 52, 0, 0xa8, 0x05, 20, 0, 16, 0]);
  assert.equal(vnetFlags(buf, 2), VIRTIO_NET_HDR_F_NEEDS_CSUM);
  assert.equal(vnetGsoType(buf, 2), VIRTIO_NET_HDR_GSO_TCPV4);
  assert.equal(vnetHdrLen(buf, 2), 52);
  assert.equal(vnetGsoSize(buf, 2), 1448);
  assert.equal(vnetCsumStart(buf, 2), 20);
  assert.equal(vnetCsumOffset(buf, 2), 16);
});
