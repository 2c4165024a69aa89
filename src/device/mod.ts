/**
 * The device layer: the {@linkcode Device} contract, a TUN over libc FFI,
 * an in-memory device for tests, and pcap tracing.
 */

export { CSUM_NONE, CSUM_PARTIAL, CSUM_VALID, type Device, type PacketMeta } from "./device.ts";
export { TunDevice, type TunOptions, TunQueue, type TunStats } from "./tun.ts";
export { MemoryDevice, type MemoryDeviceOptions } from "./memory.ts";
export { LINKTYPE_RAW, type PcapSink, PcapWriter, TraceDevice, type TraceOptions } from "./pcap.ts";
export { ErrnoError, setThreadNice } from "./libc.ts";
