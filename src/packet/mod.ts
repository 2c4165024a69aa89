/**
 * The packet layer: zero-copy reusable views over IPv4/TCP/UDP/ICMP bytes,
 * parsed representations, the Internet checksum and its incremental update,
 * addresses and CIDRs, parse errors as values, and builders for tests.
 *
 * ```ts
 * const ip = new Ipv4Packet();
 * if (ip.bind(buf, off, len).check() === ParseError.None && ip.verifyChecksum()) {
 *   // ip.src(), ip.protocol(), ip.payloadOffset() ...
 * }
 * ```
 */

export * from "./address.ts";
export * from "./build.ts";
export * from "./bytes.ts";
export * from "./checksum.ts";
export * from "./icmpv4.ts";
export * from "./ipv4.ts";
export * from "./parse_error.ts";
export * from "./repr.ts";
export * from "./tcp.ts";
export * from "./udp.ts";
