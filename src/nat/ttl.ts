/**
 * The hop the TUN costs. A forwarded packet crosses the kernel's forward path
 * twice (into the TUN, and out of it to the other side), and each crossing
 * decrements its TTL; the appliance is one router, so it gives one back.
 * Hot path: no allocation, no throw.
 */
import { checksumAdjust16, IPV4_CHECKSUM, IPV4_TTL, read16, write16 } from "../packet/mod.ts";

/**
 * Adds 1 to the TTL of the IPv4 header at `off` and updates its checksum
 * incrementally (RFC 1624 eqn 3; TTL is the high byte of the word it shares
 * with the protocol). A TTL of 255 stays: the kernel never hands us one it
 * decremented to 255. Only the IP header changes: TTL is outside the L4
 * pseudo header.
 */
export function incrementTtl(buf: Uint8Array, off: number): void {
  const ttl = buf[off + IPV4_TTL];
  if (ttl === 255) return;
  const oldWord = read16(buf, off + IPV4_TTL);
  buf[off + IPV4_TTL] = ttl + 1;
  const sum = read16(buf, off + IPV4_CHECKSUM);
  write16(buf, off + IPV4_CHECKSUM, checksumAdjust16(sum, oldWord, oldWord + 0x100));
}
