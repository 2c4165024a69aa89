/**
 * Parse errors as values: every view's `check()` returns one of these codes,
 * 0 meaning the packet is well formed. The data path counts drops by code.
 */

/** Numeric parse error codes; `ParseError.None` (0) means OK. */
export const ParseError = {
  /** Well formed. */
  None: 0,
  /** Shorter than the fixed header. */
  Truncated: 1,
  /** IP version is not the view's (4 for `Ipv4Packet`, 6 for `Ipv6Packet`). */
  BadVersion: 2,
  /** IPv4 IHL below 5 or past the end of the buffer. */
  BadHeaderLen: 3,
  /**
   * IPv4 total length below the header length or past the end of the buffer;
   * IPv6 payload length past the end of the buffer.
   */
  BadTotalLen: 4,
  /** IPv4 header checksum does not verify (`Ipv4Packet.verifyChecksum()` is separate). */
  BadChecksum: 5,
  /** IPv4 header carries options (IHL > 5); the appliance drops these. */
  Ipv4Options: 6,
  /** TCP data offset below 5 or past the end of the segment. */
  BadL4HeaderLen: 7,
  /** UDP length below 8 or past the end of the IP payload. */
  BadL4Len: 8,
  /** TCP, UDP or ICMP checksum does not verify. */
  BadL4Checksum: 9,
  /** An IPv6 extension header runs past the payload, or the chain ends before its upper layer. */
  Ipv6ExtTruncated: 10,
  /** A hop-by-hop options header anywhere but right after the fixed header (RFC 8200 §4.1). */
  Ipv6HopByHopNotFirst: 11,
  /** A routing, fragment or AH header twice, or destination options a third time (RFC 8200 §4.1). */
  Ipv6ExtRepeated: 12,
  /** More bytes of extension headers than a legitimate chain carries (`IPV6_MAX_EXT_BYTES`). */
  Ipv6ExtChainTooLong: 13,
  /**
   * A malformed option TLV in hop-by-hop or destination options, an unknown
   * option whose type says to discard the packet, or a jumbo payload (RFC 2675).
   */
  Ipv6BadOption: 14,
  /**
   * A routing header of a type no packet may carry across a border: 0 (RFC
   * 5095, an amplification and firewall-bypass tool), 1 (Nimrod, never used),
   * 3 (RPL, kept inside its domain, RFC 6554) or 4 (segment routing, kept
   * inside its domain, RFC 8754).
   */
  Ipv6RoutingType: 15,
  /** A routing header with segments left: the destination field is not the final destination. */
  Ipv6RoutingSegmentsLeft: 16,
  /**
   * A fragment that is not a multiple of 8 bytes while more follow, that ends
   * past 65535 bytes, or a first fragment without the whole header chain (RFC 8200 §4.5, RFC 7112).
   */
  Ipv6BadFragment: 17,
  /** UDP over IPv6 with checksum 0, which RFC 8200 §8.1 forbids. */
  Ipv6UdpZeroChecksum: 18,
} as const;

/** A parse error code. */
export type ParseError = typeof ParseError[keyof typeof ParseError];

/** Number of parse error codes, `None` included; codes are 0..count-1. */
export const PARSE_ERROR_COUNT = 19;

const NAMES: readonly string[] = [
  "none",
  "truncated",
  "bad-version",
  "bad-header-len",
  "bad-total-len",
  "bad-checksum",
  "ipv4-options",
  "bad-l4-header-len",
  "bad-l4-len",
  "bad-l4-checksum",
  "ipv6-ext-truncated",
  "ipv6-hop-by-hop-not-first",
  "ipv6-ext-repeated",
  "ipv6-ext-chain-too-long",
  "ipv6-bad-option",
  "ipv6-routing-type",
  "ipv6-routing-segments-left",
  "ipv6-bad-fragment",
  "ipv6-udp-zero-checksum",
];

/** The kebab-case name of a parse error code, such as `bad-checksum`. */
export function parseErrorName(code: number): string {
  return NAMES[code] ?? `unknown-${code}`;
}
