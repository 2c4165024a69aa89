/**
 * The device layer: the {@linkcode Device} contract, a TUN over libc FFI,
 * an in-memory device for tests, pcap tracing, the raw ICMP and ICMPv6 sockets of the
 * uplink health probe, and the eventfd doorbell that wakes a sleeping Worker.
 */

export { CSUM_NONE, CSUM_PARTIAL, CSUM_VALID, type Device, type PacketMeta } from "./device.ts";
export { sumTunStats, TunDevice, type TunOptions, TunQueue, type TunStats } from "./tun.ts";
export { MemoryDevice, type MemoryDeviceOptions } from "./memory.ts";
export { LINKTYPE_RAW, type PcapSink, PcapWriter, TraceDevice, type TraceOptions } from "./pcap.ts";
export { adviseHugePages, bufferAddress, copyBytes, ErrnoError, setThreadNice } from "./libc.ts";
export { IcmpSocket } from "./icmp_socket.ts";
export { Icmp6Socket } from "./icmp6_socket.ts";
export { Doorbell } from "./doorbell.ts";
