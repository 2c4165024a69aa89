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
  /** IP version is not 4. */
  BadVersion: 2,
  /** IPv4 IHL below 5 or past the end of the buffer. */
  BadHeaderLen: 3,
  /** IPv4 total length below the header length or past the end of the buffer. */
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
} as const;

/** A parse error code. */
export type ParseError = typeof ParseError[keyof typeof ParseError];

/** Number of parse error codes, `None` included; codes are 0..count-1. */
export const PARSE_ERROR_COUNT = 10;

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
];

/** The kebab-case name of a parse error code, such as `bad-checksum`. */
export function parseErrorName(code: number): string {
  return NAMES[code] ?? `unknown-${code}`;
}
