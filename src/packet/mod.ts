/**
 * The packet layer: zero-copy reusable views over IPv4/IPv6/TCP/UDP/ICMP/ICMPv6
 * bytes (the IPv6 view walks the extension headers), parsed representations,
 * the Internet checksum and its incremental update (IPv6 pseudo header and
 * 128-bit addresses included), IPv4 and IPv6 addresses and prefixes, parse
 * errors as values, and builders for tests.
 *
 * ```ts
 * const ip = new Ipv4Packet();
 * if (ip.bind(buf, off, len).check() === ParseError.None && ip.verifyChecksum()) {
 *   // ip.src(), ip.protocol(), ip.payloadOffset() ...
 * }
 * const ip6 = new Ipv6Packet();
 * if (ip6.bind(buf, off, len).check() === ParseError.None && !ip6.isFragment()) {
 *   // ip6.upperProtocol() and ip6.upperOffset() are past the extension headers;
 *   // tcp.bind(buf, ip6.upperOffset(), ip6.upperLen()).verifyChecksum6(ip6.pseudoHeaderSum())
 * }
 * ```
 */

export * from "./address.ts";
export * from "./build.ts";
export * from "./bytes.ts";
export * from "./checksum.ts";
export * from "./icmpv4.ts";
export * from "./icmpv6.ts";
export * from "./ipv4.ts";
export * from "./ipv6.ts";
export * from "./ipv6_address.ts";
export * from "./ipv6_build.ts";
export * from "./nptv6.ts";
export * from "./parse_error.ts";
export * from "./repr.ts";
export * from "./tcp.ts";
export * from "./udp.ts";
