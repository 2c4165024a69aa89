/**
 * The virtio-net header (`struct virtio_net_hdr`, linux/virtio_net.h) a TUN
 * with `IFF_VNET_HDR` puts before every packet. Used only inside src/device.
 *
 * Layout, 10 bytes, little-endian on x86 (the TUN's native order):
 * flags u8, gso_type u8, hdr_len u16, gso_size u16, csum_start u16, csum_offset u16.
 */

/** Size of the header (`TUNSETVNETHDRSZ` is set to this). */
export const VIRTIO_NET_HDR_LEN = 10;
/** Flag: the L4 checksum is partial; complete it from csum_start/csum_offset. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 0x01;
/** Flag: the checksum was already validated. */
export const VIRTIO_NET_HDR_F_DATA_VALID = 0x02;
/** gso_type: not a GSO frame. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
/** gso_type: IPv4 TCP segmentation (TSO). */
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
/** gso_type: IPv4 UDP fragmentation (UFO). */
export const VIRTIO_NET_HDR_GSO_UDP = 3;
/** gso_type: IPv6 TCP segmentation. */
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
/**
 * gso_type: UDP segmentation (USO, Linux 6.2): one IPv4+UDP header, then
 * `gso_size` payload bytes per datagram (the last may be shorter). The UDP
 * length and the pseudo-header sum in the checksum field cover the whole
 * super packet; the kernel fixes both per datagram when it segments.
 */
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
/** gso_type bit: the TCP stream uses ECN. */
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** `flags` of the header at `buf[at]`. */
export function vnetFlags(buf: Uint8Array, at: number): number {
  return buf[at];
}

/** `gso_type` of the header at `buf[at]`. */
export function vnetGsoType(buf: Uint8Array, at: number): number {
  return buf[at + 1];
}

/** `hdr_len` (bytes of headers before the GSO payload) of the header at `buf[at]`. */
export function vnetHdrLen(buf: Uint8Array, at: number): number {
  return buf[at + 2] | (buf[at + 3] << 8);
}

/** `gso_size` (payload bytes per segment) of the header at `buf[at]`. */
export function vnetGsoSize(buf: Uint8Array, at: number): number {
  return buf[at + 4] | (buf[at + 5] << 8);
}

/** `csum_start` (offset of the L4 header from the packet start) of the header at `buf[at]`. */
export function vnetCsumStart(buf: Uint8Array, at: number): number {
  return buf[at + 6] | (buf[at + 7] << 8);
}

/** `csum_offset` (checksum field offset from csum_start) of the header at `buf[at]`. */
export function vnetCsumOffset(buf: Uint8Array, at: number): number {
  return buf[at + 8] | (buf[at + 9] << 8);
}
